//! Pod workers: one long-running task per pod UID. The watch of pods bound to this node feeds
//! each worker the latest version of its pod (latest update wins); the worker syncs the pod
//! (sandbox, init containers in order, containers, restarts with backoff), writes the status,
//! and on deletion terminates the containers gracefully and confirms the deletion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cri::Cri;
use crate::sync_pod::PodState;
use crate::KubeletConfig;

pub struct Workers {
    client: Client,
    cri: Arc<dyn Cri>,
    cfg: Arc<KubeletConfig>,
    workers: HashMap<String, watch::Sender<Option<Pod>>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Workers {
    pub fn new(
        client: Client,
        cri: Arc<dyn Cri>,
        cfg: Arc<KubeletConfig>,
        cancel: CancellationToken,
    ) -> Self {
        Workers {
            client,
            cri,
            cfg,
            workers: HashMap::new(),
            tracker: TaskTracker::new(),
            cancel,
        }
    }

    /// Watch pods on this node and dispatch them until cancelled.
    pub async fn run(mut self) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let wc =
            watcher::Config::default().fields(&format!("spec.nodeName={}", self.cfg.node_name));
        let mut stream = watcher(pods, wc).boxed();
        let mut known: HashMap<String, ()> = HashMap::new();
        let mut init_batch: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                ev = stream.next() => match ev {
                    Some(Ok(watcher::Event::Apply(p))) | Some(Ok(watcher::Event::InitApply(p))) => {
                        if let Some(uid) = p.metadata.uid.clone() {
                            init_batch.push(uid.clone());
                            known.insert(uid, ());
                            self.dispatch(p);
                        }
                    }
                    Some(Ok(watcher::Event::Delete(p))) => {
                        if let Some(uid) = p.metadata.uid.clone() {
                            known.remove(&uid);
                            if let Some(tx) = self.workers.get(&uid) {
                                let _ = tx.send(None);
                            }
                        }
                    }
                    Some(Ok(watcher::Event::Init)) => init_batch.clear(),
                    Some(Ok(watcher::Event::InitDone)) => {
                        // Pods that vanished while we were not watching: tell their workers.
                        let live: std::collections::HashSet<String> = init_batch.drain(..).collect();
                        for (uid, tx) in &self.workers {
                            if !live.contains(uid) {
                                let _ = tx.send(None);
                            }
                        }
                        self.cleanup_orphans(&live).await;
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "pod watch error; retrying"),
                    None => break,
                }
            }
            self.workers.retain(|_, tx| !tx.is_closed());
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn dispatch(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if let Some(tx) = self.workers.get(&uid) {
            if !tx.is_closed() {
                let _ = tx.send(Some(pod));
                return;
            }
        }
        let (tx, rx) = watch::channel(Some(pod));
        self.workers.insert(uid.clone(), tx);
        let state = PodState::new(self.client.clone(), self.cri.clone(), self.cfg.clone(), uid);
        let cancel = self.cancel.child_token();
        self.tracker.spawn(worker(state, rx, cancel));
    }

    /// Sandboxes whose pod no longer exists (deleted while k1s was down) are removed.
    async fn cleanup_orphans(&self, live: &std::collections::HashSet<String>) {
        let Ok(sandboxes) = self.cri.list_sandboxes().await else {
            return;
        };
        for sb in sandboxes {
            if !live.contains(&sb.pod_uid) && !self.workers.contains_key(&sb.pod_uid) {
                tracing::info!(sandbox = %sb.id, pod_uid = %sb.pod_uid, "removing the sandbox of a pod that no longer exists");
                if let Ok(cs) = self.cri.list_containers(&sb.id).await {
                    for c in cs {
                        let _ = self.cri.stop_container(&c.id, 0).await;
                    }
                }
                let _ = self.cri.stop_sandbox(&sb.id).await;
                let _ = self.cri.remove_sandbox(&sb.id).await;
            }
        }
    }
}

async fn worker(
    mut state: PodState,
    mut rx: watch::Receiver<Option<Pod>>,
    cancel: CancellationToken,
) {
    let mut changes = state.cri.subscribe();
    loop {
        let pod = rx.borrow_and_update().clone();
        let next = match pod {
            None => {
                state.terminate(None).await;
                return;
            }
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                state.terminate(Some(&p)).await;
                confirm_deletion(&state.client, &p).await;
                return;
            }
            Some(p) => state.sync(&p).await,
        };
        let wait = next.unwrap_or(Duration::from_secs(10));
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.changed() => if r.is_err() {
                state.terminate(None).await;
                return;
            },
            _ = changes.changed() => {}
            _ = state.probe_changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// After termination, delete the pod object for good (grace 0, same UID).
async fn confirm_deletion(client: &Client, pod: &Pod) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => {
            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "failed to confirm pod deletion")
        }
    }
}
