//! Container probes (startup, liveness, readiness) for one pod, as upstream's prober manager:
//! a worker task per probe of each running container instance, results kept by container ID,
//! and a change counter the pod worker waits on so a new result reaches the status at once.
//! The pod worker owns a `Manager`: `sync` after each pod sync starts workers for new
//! container instances and stops those of instances no longer running; `started` and `ready`
//! feed the container statuses. Lifecycle hooks are not here.

mod grpc;
pub mod handlers;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Container as KContainer, Pod, Probe};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cri::Cri;
use crate::events::Recorder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    /// As upstream names it in events ("Liveness probe failed: ...").
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    fn of(self, c: &KContainer) -> Option<&Probe> {
        match self {
            Kind::Startup => c.startup_probe.as_ref(),
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
        }
    }
}

/// (container ID, probe) -> last settled result (true = success).
type Results = Arc<Mutex<HashMap<(String, Kind), bool>>>;

/// A running container instance the manager should probe.
pub struct Running<'a> {
    pub spec: &'a KContainer,
    pub id: &'a str,
    pub started_at: Timestamp,
    /// Whether it is started again after a kill (restartPolicy, or a sidecar).
    pub restart: bool,
    /// `spec.containers{name}` or `spec.initContainers{name}`.
    pub field: String,
}

/// What the workers of one pod share.
pub struct PodContext<'a> {
    pub cri: &'a Arc<dyn Cri>,
    pub events: &'a Recorder,
    pub pod: &'a Pod,
    pub pod_ip: &'a str,
    /// `name_namespace(uid)`, for hook messages.
    pub pod_ref: &'a str,
}

pub struct Manager {
    results: Results,
    /// Container ID -> the token of its workers.
    workers: HashMap<String, CancellationToken>,
    notify: Arc<watch::Sender<u64>>,
    changes: watch::Receiver<u64>,
}

impl Default for Manager {
    fn default() -> Self {
        let (tx, rx) = watch::channel(0);
        Manager {
            results: Arc::default(),
            workers: HashMap::new(),
            notify: Arc::new(tx),
            changes: rx,
        }
    }
}

impl Manager {
    /// Resolves when a probe result changed (or a probe killed a container).
    pub async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Probe exactly the container instances in `running`.
    pub fn sync(&mut self, ctx: &PodContext<'_>, running: &[Running<'_>]) {
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|id| !running.iter().any(|r| r.id == id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(t) = self.workers.remove(&id) {
                t.cancel();
            }
            if let Ok(mut m) = self.results.lock() {
                m.retain(|(cid, _), _| *cid != id);
            }
        }
        let pod_grace = ctx
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        for r in running {
            if self.workers.contains_key(r.id) {
                continue;
            }
            let token = CancellationToken::new();
            let meta = &ctx.pod.metadata;
            let pod = Arc::new((
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
                meta.uid.clone().unwrap_or_default(),
            ));
            for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
                let Some(probe) = kind.of(r.spec) else {
                    continue;
                };
                let w = worker::Worker {
                    kind,
                    probe: probe.clone(),
                    cri: ctx.cri.clone(),
                    events: ctx.events.clone(),
                    container: r.spec.clone(),
                    container_id: r.id.to_string(),
                    field: r.field.clone(),
                    pod_ip: ctx.pod_ip.to_string(),
                    started_at: r.started_at,
                    results: self.results.clone(),
                    notify: self.notify.clone(),
                    kill: worker::KillPolicy {
                        pod_grace,
                        restart: r.restart,
                        pod_ref: ctx.pod_ref.to_string(),
                    },
                    pod: pod.clone(),
                    cancel: token.clone(),
                };
                tokio::spawn(w.run());
            }
            self.workers.insert(r.id.to_string(), token);
        }
    }

    fn result(&self, id: &str, kind: Kind) -> Option<bool> {
        self.results
            .lock()
            .ok()
            .and_then(|m| m.get(&(id.to_string(), kind)).copied())
    }

    /// `started`: true without a startup probe, else once it succeeded.
    pub fn started(&self, c: &KContainer, id: &str) -> bool {
        c.startup_probe.is_none() || self.result(id, Kind::Startup) == Some(true)
    }

    /// Readiness alone: true without a readiness probe, else its last settled result
    /// (false until the first success).
    pub fn ready(&self, c: &KContainer, id: &str) -> bool {
        c.readiness_probe.is_none() || self.result(id, Kind::Readiness) == Some(true)
    }

    /// Stop every worker (the pod is terminating or gone).
    pub fn stop_all(&mut self) {
        for (_, t) in self.workers.drain() {
            t.cancel();
        }
        if let Ok(mut m) = self.results.lock() {
            m.clear();
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop_all();
    }
}
