//! Stopping a pod's containers on purpose: `kill_all` (every container at once, each through
//! `lifecycle::Hook::kill`: Killing event, preStop, SIGTERM, grace period, SIGKILL) and
//! `terminate` (pod deleted or gone: stop probes, kill with the pod's grace period, remove the
//! sandbox and the pod's directory). Syncing a live pod is `sync_pod`.

use k8s_openapi::api::core::v1::{Container as KContainer, Pod};

use crate::container_config;
use crate::cri::RunState;
use crate::lifecycle::Hook;
use crate::sync_pod::{pod_ref, PodState};

impl PodState {
    /// Kill every container of the pod (Killing event, preStop, SIGTERM, grace, SIGKILL), all
    /// at once.
    pub(crate) async fn kill_all(&mut self, pod: &Pod, grace: i64) {
        let Some(sb) = self.sandbox.clone() else {
            return;
        };
        let cs = self.cri.list_containers(&sb.id).await.unwrap_or_default();
        let rec = self.recorder(pod).clone();
        let spec = pod.spec.clone().unwrap_or_default();
        let (pod_ip, pod_ref) = (self.pod_ip(pod, &sb), pod_ref(pod));
        let specs: Vec<(&KContainer, String)> = spec
            .containers
            .iter()
            .map(|c| (c, format!("spec.containers{{{}}}", c.name)))
            .chain(
                spec.init_containers
                    .iter()
                    .flatten()
                    .map(|c| (c, format!("spec.initContainers{{{}}}", c.name))),
            )
            .collect();
        let cri = self.cri.as_ref();
        let stops = cs.iter().map(|c| {
            let (rec, pod_ip, pod_ref) = (&rec, &pod_ip, &pod_ref);
            let found = specs.iter().find(|(k, _)| k.name == c.name);
            async move {
                match (&c.state, found) {
                    (RunState::Running { .. }, Some((k, field))) => {
                        let hook = Hook {
                            cri,
                            container: k,
                            container_id: &c.id,
                            pod_ip,
                            pod_ref,
                            events: rec,
                            field,
                        };
                        hook.kill(grace, &format!("Stopping container {}", c.name))
                            .await;
                    }
                    (RunState::Running { .. } | RunState::Created, _) => {
                        if let Err(e) = cri.stop_container(&c.id, grace).await {
                            tracing::warn!(error = %e, "failed to stop a container");
                        }
                    }
                    _ => {}
                }
            }
        });
        futures::future::join_all(stops).await;
    }

    /// Stop everything with the pod's grace period and remove the sandbox.
    pub async fn terminate(&mut self, pod: Option<&Pod>) {
        self.probes.stop_all();
        if self.sandbox.is_none() {
            if let Ok(list) = self.cri.list_sandboxes().await {
                self.sandbox = list.into_iter().find(|s| s.pod_uid == self.uid);
            }
        }
        let Some(sb) = self.sandbox.clone() else {
            return;
        };
        let grace = pod
            .and_then(|p| p.metadata.deletion_grace_period_seconds)
            .or_else(|| {
                pod.and_then(|p| p.spec.as_ref())
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        if let Some(p) = pod {
            self.kill_all(p, grace).await;
        } else {
            for c in self.cri.list_containers(&sb.id).await.unwrap_or_default() {
                let _ = self.cri.stop_container(&c.id, grace).await;
            }
        }
        let _ = self.cri.stop_sandbox(&sb.id).await;
        if let Err(e) = self.cri.remove_sandbox(&sb.id).await {
            tracing::warn!(sandbox = %sb.id, error = %e, "failed to remove sandbox");
        }
        container_config::remove_pod_dir(&self.cfg, &self.uid);
        self.sandbox = None;
    }
}
