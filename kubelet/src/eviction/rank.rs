//! Which pod goes first, as upstream's `rankMemoryPressure` / `rankDiskPressureFunc`: pods
//! using more than they requested (and pods without stats) first, then lower priority, then
//! the larger use above the request. BestEffort pods request nothing, so any use exceeds it.
//! Critical pods (system priority) are never candidates.

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::container_config::parse_quantity;

/// Upstream's `SystemCriticalPriority`: pods at or above it are never evicted.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// A pod that may be evicted, with its use of the resource being reclaimed.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub pod: Pod,
    /// None when there are no stats for the pod.
    pub usage: Option<u64>,
    pub request: u64,
    pub priority: i32,
}

/// The pod's request of `resource`: its regular containers and sidecars summed, or its
/// largest init container if that is more (upstream's effective pod request).
pub fn pod_request(pod: &Pod, resource: &str) -> u64 {
    let req = |c: &Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| parse_quantity(&q.0))
            .unwrap_or(0.0) as u64
    };
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let inits = spec.init_containers.iter().flatten();
    let sidecars: u64 = inits
        .clone()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(req)
        .sum();
    let regular: u64 = spec.containers.iter().map(req).sum::<u64>() + sidecars;
    let init_max = inits.map(req).max().unwrap_or(0);
    regular.max(init_max)
}

pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

pub fn is_critical(pod: &Pod) -> bool {
    priority(pod) >= SYSTEM_CRITICAL_PRIORITY
}

fn exceeds(c: &Candidate) -> bool {
    c.usage.is_none_or(|u| u > c.request)
}

fn above_request(c: &Candidate) -> i128 {
    c.usage.map_or(i128::MAX, |u| u as i128 - c.request as i128)
}

/// Sorts `pods` so the first is the one to evict.
pub fn rank(pods: &mut [Candidate]) {
    pods.sort_by(|a, b| {
        exceeds(b)
            .cmp(&exceeds(a))
            .then(a.priority.cmp(&b.priority))
            .then(above_request(b).cmp(&above_request(a)))
            .then_with(|| a.pod.metadata.name.cmp(&b.pod.metadata.name))
    });
}

impl Candidate {
    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cand(name: &str, usage: Option<u64>, request: u64, priority: i32) -> Candidate {
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"name": name, "uid": name}})).expect("pod");
        Candidate {
            pod,
            usage,
            request,
            priority,
        }
    }

    #[test]
    fn over_request_then_priority_then_usage() {
        let mut pods = vec![
            cand("guaranteed", Some(90), 100, 0),
            cand("burstable-over", Some(150), 100, 0),
            cand("besteffort-small", Some(10), 0, 0),
            cand("besteffort-big", Some(50), 0, 0),
            cand("besteffort-important", Some(500), 0, 1000),
            cand("no-stats", None, 100, 0),
        ];
        rank(&mut pods);
        let order: Vec<&str> = pods.iter().map(Candidate::name).collect();
        assert_eq!(
            order,
            [
                "no-stats",
                "besteffort-big",
                "burstable-over",
                "besteffort-small",
                "besteffort-important",
                "guaranteed"
            ]
        );
    }

    #[test]
    fn effective_pod_request() {
        let pod: Pod = serde_json::from_value(json!({"spec": {
            "initContainers": [
                {"name": "init", "resources": {"requests": {"memory": "300Mi"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"memory": "50Mi"}}}],
            "containers": [{"name": "a", "resources": {"requests": {"memory": "100Mi"}}},
                           {"name": "b", "resources": {"requests": {"memory": "100Mi"}}}]}}))
        .expect("pod");
        assert_eq!(pod_request(&pod, "memory"), 300 << 20);
        assert_eq!(pod_request(&pod, "ephemeral-storage"), 0);
    }
}
