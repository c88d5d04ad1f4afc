//! Quality of service as the kubelet applies it (upstream `pkg/kubelet/qos`): the pod's QoS
//! class, each container's `oom_score_adj`, and the one for k1s itself. The kernel's OOM
//! killer then picks BestEffort containers first and k1s (-999) last.
//!
//! Does not own cgroup limits (`container_config`) nor eviction ranking (`eviction`).

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::container_config::parse_quantity;

/// The k1s server (API server and kubelet in one process), like upstream's kubelet.
pub const KUBELET_OOM_SCORE_ADJ: i32 = -999;
const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
const BESTEFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// Sets this process's oom_score_adj (children, such as the shims, inherit it).
pub fn protect_self() -> std::io::Result<()> {
    std::fs::write(
        "/proc/self/oom_score_adj",
        KUBELET_OOM_SCORE_ADJ.to_string(),
    )
}

/// The lowest oom_score_adj a container can get here: without CAP_SYS_RESOURCE (k1s in an
/// unprivileged container) a process cannot go below its own score, so containers are
/// clamped to it (like containerd's `restrict_oom_score_adj`) instead of failing to start.
pub fn oom_score_adj_floor() -> i32 {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let has_cap = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0);
    if has_cap {
        return -1000;
    }
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The pod's QoS class: `status.qosClass` (set by the API server at creation), else computed.
pub fn pod_qos(pod: &Pod) -> &'static str {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some("Guaranteed") => "Guaranteed",
        Some("Burstable") => "Burstable",
        Some("BestEffort") => "BestEffort",
        _ => compute_qos(pod),
    }
}

fn quantity(c: &Container, limits: bool, resource: &str) -> Option<f64> {
    let r = c.resources.as_ref()?;
    let m = if limits { &r.limits } else { &r.requests };
    m.as_ref()?.get(resource).and_then(|q| parse_quantity(&q.0))
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    })
}

/// Upstream's rule: no requests or limits anywhere is BestEffort; cpu and memory limits
/// on every container with requests equal to them (or unset) is Guaranteed.
fn compute_qos(pod: &Pod) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in all_containers(pod) {
        for r in ["cpu", "memory"] {
            let (req, lim) = (quantity(c, false, r), quantity(c, true, r));
            any |= req.is_some_and(|v| v != 0.0) || lim.is_some_and(|v| v != 0.0);
            match (req, lim) {
                (Some(a), Some(b)) if a == b => {}
                (None, Some(_)) => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// System-node-critical pods are protected like Guaranteed ones.
fn node_critical(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.priority_class_name.as_deref())
        == Some("system-node-critical")
}

fn memory_request(c: &Container) -> i64 {
    quantity(c, false, "memory").unwrap_or(0.0) as i64
}

/// `oom_score_adj` for container `c` of `pod` on a node with `memory_capacity` bytes, as
/// upstream's `GetContainerOOMScoreAdjust`: Guaranteed -997, BestEffort 1000, Burstable
/// `1000 - 1000*request/capacity` kept within [3, 999] (a sidecar never above the
/// regular container with the smallest request).
pub fn container_oom_score_adj(pod: &Pod, c: &Container, memory_capacity: u64) -> i32 {
    if node_critical(pod) {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match pod_qos(pod) {
        "Guaranteed" => return GUARANTEED_OOM_SCORE_ADJ,
        "BestEffort" => return BESTEFFORT_OOM_SCORE_ADJ,
        _ => {}
    }
    let cap = memory_capacity.max(1) as i64;
    let formula = |req: i64| 1000 - (1000 * req) / cap;
    let mut adj = formula(memory_request(c));
    let spec = pod.spec.as_ref();
    let sidecar = c.restart_policy.as_deref() == Some("Always")
        && spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|ics| ics.iter().any(|i| i.name == c.name));
    if sidecar {
        let min_regular = spec
            .and_then(|s| s.containers.iter().map(memory_request).min())
            .unwrap_or(0);
        adj = adj.min(formula(min_regular));
    }
    let floor = (1000 + GUARANTEED_OOM_SCORE_ADJ) as i64;
    if adj < floor {
        return floor as i32;
    }
    if adj == BESTEFFORT_OOM_SCORE_ADJ as i64 {
        return BESTEFFORT_OOM_SCORE_ADJ - 1;
    }
    adj as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("valid pod")
    }

    const GI: u64 = 1 << 30;

    /// The score of the pod's first container on a 1Gi node.
    fn first(p: &Pod) -> i32 {
        let c = &p.spec.as_ref().expect("spec").containers[0];
        container_oom_score_adj(p, c, GI)
    }

    #[test]
    fn oom_score_adj_per_qos_class() {
        let be = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(pod_qos(&be), "BestEffort");
        assert_eq!(first(&be), 1000);
        let g = pod(json!({"spec": {"containers": [{"name": "a", "resources": {
            "limits": {"cpu": "100m", "memory": "64Mi"}}}]}}));
        assert_eq!(pod_qos(&g), "Guaranteed");
        assert_eq!(first(&g), -997);
        // 256Mi of 1Gi requested: 1000 - 250.
        let b = pod(json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"memory": "256Mi"}}}]}}));
        assert_eq!(pod_qos(&b), "Burstable");
        assert_eq!(first(&b), 750);
        // Clamped: a tiny request gives 999, not BestEffort's 1000; a huge one 3.
        let tiny = pod(json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"cpu": "10m"}}}]}}));
        assert_eq!(first(&tiny), 999);
        let huge = pod(json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"memory": "2Gi"}}}]}}));
        assert_eq!(first(&huge), 3);
    }

    #[test]
    fn sidecar_not_above_the_smallest_regular_container() {
        let p = pod(json!({"spec": {
            "initContainers": [{"name": "side", "restartPolicy": "Always"}],
            "containers": [{"name": "a", "resources": {"requests": {"memory": "512Mi"}}}]}}));
        let side = &p
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .expect("init")[0];
        assert_eq!(container_oom_score_adj(&p, side, GI), 500);
    }

    #[test]
    fn status_qos_class_wins() {
        let p = pod(json!({"spec": {"containers": [{"name": "a"}]},
            "status": {"qosClass": "Burstable"}}));
        assert_eq!(pod_qos(&p), "Burstable");
        let n = pod(json!({"spec": {"priorityClassName": "system-node-critical",
            "containers": [{"name": "a"}]}}));
        assert_eq!(first(&n), -997);
    }
}
