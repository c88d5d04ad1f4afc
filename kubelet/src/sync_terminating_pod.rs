//! Stopping a pod's containers on purpose: `kill` (each through `lifecycle::Hook`: Killing
//! event, preStop, SIGTERM, grace period, SIGKILL; regular containers first, then sidecars in
//! reverse order of declaration, as upstream's termination ordering) and
//! `terminate` (pod deleted or gone: stop probes, kill with the pod's grace period, remove the
//! sandbox and the pod's directory). Syncing a live pod is `sync_pod`.

use k8s_openapi::api::core::v1::{Container as KContainer, Pod, PodSpec};
use tokio::sync::watch;

use crate::container_config;
use crate::cri::{Container, RunState};
use crate::lifecycle::Hook;
use crate::sync_pod::{pod_ref, PodState};

/// Which containers a kill stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillScope {
    /// Every container: regular ones first, then sidecars in reverse order.
    All,
    /// Only the sidecars, in reverse order (a pod whose regular containers completed).
    Sidecars,
}

/// A container of the spec with its field path and, for a sidecar, its position among them.
struct Stopping<'a> {
    spec: &'a KContainer,
    field: String,
    sidecar: Option<usize>,
}

fn stopping(spec: &PodSpec) -> Vec<Stopping<'_>> {
    let mut sidecars = 0;
    let init = spec.init_containers.iter().flatten().map(|c| {
        let sidecar = (c.restart_policy.as_deref() == Some("Always")).then(|| {
            sidecars += 1;
            sidecars - 1
        });
        Stopping {
            spec: c,
            field: format!("spec.initContainers{{{}}}", c.name),
            sidecar,
        }
    });
    let mut out: Vec<Stopping<'_>> = init.collect();
    out.extend(spec.containers.iter().map(|c| Stopping {
        spec: c,
        field: format!("spec.containers{{{}}}", c.name),
        sidecar: None,
    }));
    out
}

impl PodState {
    /// Kill the pod's running containers like upstream's `killContainersWithSyncResult`:
    /// every container gets its `Killing` event and preStop at once; regular containers get
    /// SIGTERM at once, each sidecar only after the regular containers and the sidecars
    /// declared after it have exited, all within the one grace period.
    pub(crate) async fn kill_all(&mut self, pod: &Pod, grace: i64) {
        self.kill(pod, grace, KillScope::All).await
    }

    pub(crate) async fn kill(&mut self, pod: &Pod, grace: i64, scope: KillScope) {
        let Some(sb) = self.sandbox.clone() else {
            return;
        };
        let cs = self.cri.list_containers(&sb.id).await.unwrap_or_default();
        let rec = self.recorder(pod).clone();
        let spec = pod.spec.clone().unwrap_or_default();
        let (pod_ip, pod_ref) = (self.pod_ip(pod, &sb), pod_ref(pod));
        let specs = stopping(&spec);
        let live: Vec<(&Container, Option<&Stopping<'_>>)> = cs
            .iter()
            .filter(|c| matches!(c.state, RunState::Running { .. } | RunState::Created))
            .map(|c| (c, specs.iter().find(|s| s.spec.name == c.name)))
            .filter(|(_, s)| scope == KillScope::All || s.is_some_and(|s| s.sidecar.is_some()))
            .collect();
        // One "exited" flag per container being stopped; a sidecar waits for those of the
        // regular containers and of the sidecars declared after it.
        let flags: Vec<watch::Sender<bool>> =
            live.iter().map(|_| watch::channel(false).0).collect();
        let rank = |s: Option<&Stopping<'_>>| s.and_then(|s| s.sidecar);
        let cri = self.cri.as_ref();
        let stops = live.iter().enumerate().map(|(i, (c, found))| {
            let (rec, pod_ip, pod_ref) = (&rec, &pod_ip, &pod_ref);
            let waits: Vec<watch::Receiver<bool>> = match rank(*found) {
                None => Vec::new(),
                Some(mine) => live
                    .iter()
                    .zip(&flags)
                    .filter(|((_, s), _)| rank(*s).is_none_or(|r| r > mine))
                    .map(|(_, f)| f.subscribe())
                    .collect(),
            };
            let done = &flags[i];
            async move {
                let turn = async move {
                    for mut w in waits {
                        let _ = w.wait_for(|exited| *exited).await;
                    }
                };
                match (&c.state, found) {
                    (RunState::Running { .. }, Some(s)) => {
                        let hook = Hook {
                            cri,
                            container: s.spec,
                            container_id: &c.id,
                            pod_ip,
                            pod_ref,
                            events: rec,
                            field: &s.field,
                        };
                        let msg = format!("Stopping container {}", c.name);
                        hook.kill_in_turn(grace, &msg, turn).await;
                    }
                    _ => {
                        if let Err(e) = cri.stop_container(&c.id, grace).await {
                            tracing::warn!(error = %e, "failed to stop a container");
                        }
                    }
                }
                done.send_replace(true);
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
