//! Evicting one pod, in its worker: the pod fails for good (phase Failed, reason Evicted,
//! a DisruptionTarget condition with reason TerminationByKubelet), an `Evicted` event is
//! recorded and every container is killed with the eviction grace period. The worker's next
//! sync writes the status and starts nothing again.

use k8s_openapi::api::core::v1::Pod;

use crate::sync_pod::PodState;

impl PodState {
    /// Returns false when the pod already finished (nothing to evict).
    pub(crate) async fn evict(&mut self, pod: &Pod, message: &str) -> bool {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if self.failed.is_some() || matches!(phase, Some("Succeeded" | "Failed")) {
            return false;
        }
        self.failed = Some(("Evicted".into(), message.to_string()));
        self.disruption = Some(message.to_string());
        self.recorder(pod)
            .event("Warning", "Evicted", message)
            .await;
        self.kill_all(pod, super::EVICTION_GRACE_SECONDS).await;
        true
    }
}
