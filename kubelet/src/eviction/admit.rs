//! Admission of new pods under node pressure, as upstream's eviction manager `Admit`: under
//! DiskPressure no pod starts, under MemoryPressure only BestEffort pods are turned away
//! (unless they tolerate the memory-pressure taint); critical pods always start. A rejected
//! pod fails at once with reason Evicted, before anything of it runs.

use k8s_openapi::api::core::v1::Pod;

use super::{rank, Pressure};
use crate::node::MEMORY_PRESSURE_TAINT;

fn tolerates_memory_pressure(pod: &Pod) -> bool {
    let tols = pod.spec.as_ref().and_then(|s| s.tolerations.as_ref());
    tols.into_iter().flatten().any(|t| {
        let key_ok = match t.key.as_deref() {
            None | Some("") => t.operator.as_deref() == Some("Exists"),
            Some(k) => k == MEMORY_PRESSURE_TAINT,
        };
        let value_ok =
            t.operator.as_deref() == Some("Exists") || t.value.as_deref().unwrap_or("").is_empty();
        let effect_ok = matches!(t.effect.as_deref(), None | Some("") | Some("NoSchedule"));
        key_ok && value_ok && effect_ok
    })
}

/// Ok to start the pod, or upstream's rejection message.
pub fn admit(pod: &Pod, p: Pressure) -> Result<(), String> {
    if !p.memory && !p.disk || rank::is_critical(pod) {
        return Ok(());
    }
    if !p.disk && (crate::qos::pod_qos(pod) != "BestEffort" || tolerates_memory_pressure(pod)) {
        return Ok(());
    }
    let mut conditions = Vec::new();
    if p.memory {
        conditions.push("MemoryPressure");
    }
    if p.disk {
        conditions.push("DiskPressure");
    }
    Err(format!(
        "The node had condition: [{}]. ",
        conditions.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn upstream_admission_rules() {
        let be = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        let burstable = pod(json!({"spec": {"containers": [{"name": "a",
            "resources": {"requests": {"memory": "1Mi"}}}]}}));
        let tolerant = pod(
            json!({"spec": {"containers": [{"name": "a"}], "tolerations": [
            {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        let critical =
            pod(json!({"spec": {"priority": 2000001000, "containers": [{"name": "a"}]}}));
        let none = Pressure::default();
        let memory = Pressure {
            memory: true,
            disk: false,
        };
        let disk = Pressure {
            memory: false,
            disk: true,
        };
        let both = Pressure {
            memory: true,
            disk: true,
        };
        assert!(admit(&be, none).is_ok());
        assert_eq!(
            admit(&be, memory),
            Err("The node had condition: [MemoryPressure]. ".into())
        );
        assert!(admit(&burstable, memory).is_ok());
        assert!(admit(&tolerant, memory).is_ok());
        assert_eq!(
            admit(&burstable, disk),
            Err("The node had condition: [DiskPressure]. ".into())
        );
        assert_eq!(
            admit(&tolerant, both),
            Err("The node had condition: [MemoryPressure DiskPressure]. ".into())
        );
        assert!(admit(&critical, both).is_ok());
    }
}
