//! Pod workers: one long-running task per pod UID. The watch of pods bound to this node feeds
//! each worker the latest version of its pod (latest update wins); the worker syncs the pod
//! (sandbox, init containers in order, containers, restarts with backoff), writes the status,
//! and on deletion terminates the containers gracefully and confirms the deletion. A watch of
//! ConfigMaps and Secrets tells the workers whose volumes project a changed one to rewrite them
//! (`volumes::refresh`), so updates reach running pods without polling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cri::{next_exit, Cri};
use crate::eviction::WorkerRequest;
use crate::sync_pod::PodState;
use crate::volumes::{self, Kind};
use crate::KubeletConfig;

/// The channels to one pod's worker: its latest pod, and volume sources that changed.
struct Handle {
    pod: watch::Sender<Option<Pod>>,
    refresh: mpsc::UnboundedSender<(Kind, String)>,
    evict: mpsc::UnboundedSender<(String, oneshot::Sender<bool>)>,
}

pub struct Workers {
    client: Client,
    cri: Arc<dyn Cri>,
    cfg: Arc<KubeletConfig>,
    workers: HashMap<String, Handle>,
    tracker: TaskTracker,
    pressure: watch::Receiver<crate::eviction::Pressure>,
    cancel: CancellationToken,
}

impl Workers {
    pub fn new(
        client: Client,
        cri: Arc<dyn Cri>,
        cfg: Arc<KubeletConfig>,
        pressure: watch::Receiver<crate::eviction::Pressure>,
        cancel: CancellationToken,
    ) -> Self {
        Workers {
            pressure,
            client,
            cri,
            cfg,
            workers: HashMap::new(),
            tracker: TaskTracker::new(),
            cancel,
        }
    }

    /// Watch pods on this node and dispatch them until cancelled; answer the eviction
    /// manager's `requests`.
    pub async fn run(mut self, mut requests: mpsc::Receiver<WorkerRequest>) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let wc =
            watcher::Config::default().fields(&format!("spec.nodeName={}", self.cfg.node_name));
        let mut stream = watcher(pods, wc).boxed();
        let cms: Api<ConfigMap> = Api::all(self.client.clone());
        let secrets: Api<Secret> = Api::all(self.client.clone());
        let mut sources = futures::stream::select(
            watcher(cms, watcher::Config::default())
                .map(|e| source_change(e, Kind::ConfigMap, |o: &ConfigMap| &o.metadata))
                .boxed(),
            watcher(secrets, watcher::Config::default())
                .map(|e| source_change(e, Kind::Secret, |o: &Secret| &o.metadata))
                .boxed(),
        );
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
                            if let Some(h) = self.workers.get(&uid) {
                                let _ = h.pod.send(None);
                            }
                        }
                    }
                    Some(Ok(watcher::Event::Init)) => init_batch.clear(),
                    Some(Ok(watcher::Event::InitDone)) => {
                        // Pods that vanished while we were not watching: tell their workers.
                        let live: std::collections::HashSet<String> = init_batch.drain(..).collect();
                        for (uid, h) in &self.workers {
                            if !live.contains(uid) {
                                let _ = h.pod.send(None);
                            }
                        }
                        self.cleanup_orphans(&live).await;
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "pod watch error; retrying"),
                    None => break,
                },
                Some(change) = sources.next() => {
                    if let Some((kind, ns, name)) = change {
                        self.notify_source_change(kind, &ns, &name);
                    }
                }
                Some(req) = requests.recv() => self.answer(req),
            }
            self.workers.retain(|_, h| !h.pod.is_closed());
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn dispatch(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if let Some(h) = self.workers.get(&uid) {
            if !h.pod.is_closed() {
                let _ = h.pod.send(Some(pod));
                return;
            }
        }
        tracing::debug!(pod = %crate::sync_pod::pod_ref(&pod), "new pod worker");
        let (tx, rx) = watch::channel(Some(pod));
        let (refresh, refresh_rx) = mpsc::unbounded_channel();
        let (evict, evict_rx) = mpsc::unbounded_channel();
        self.workers.insert(
            uid.clone(),
            Handle {
                pod: tx,
                refresh,
                evict,
            },
        );
        let state = PodState::new(
            self.client.clone(),
            self.cri.clone(),
            self.cfg.clone(),
            uid,
            self.pressure.clone(),
        );
        let cancel = self.cancel.child_token();
        self.tracker
            .spawn(worker(state, rx, refresh_rx, evict_rx, cancel));
    }

    fn answer(&self, req: WorkerRequest) {
        match req {
            WorkerRequest::Pods(tx) => {
                let pods = self
                    .workers
                    .values()
                    .filter(|h| !h.pod.is_closed())
                    .filter_map(|h| h.pod.borrow().clone())
                    .collect();
                let _ = tx.send(pods);
            }
            WorkerRequest::Evict { uid, message, done } => match self.workers.get(&uid) {
                Some(h) => {
                    if let Err(mpsc::error::SendError((_, done))) = h.evict.send((message, done)) {
                        let _ = done.send(false);
                    }
                }
                None => {
                    let _ = done.send(false);
                }
            },
        }
    }

    /// Tell the workers whose pod projects ConfigMap or Secret `ns/name` into a volume.
    fn notify_source_change(&self, kind: Kind, ns: &str, name: &str) {
        for h in self.workers.values() {
            let uses = h.pod.borrow().as_ref().is_some_and(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && p.spec
                        .as_ref()
                        .and_then(|s| s.volumes.as_ref())
                        .is_some_and(|vs| vs.iter().any(|v| volumes::references(v, kind, name)))
            });
            if uses {
                let _ = h.refresh.send((kind, name.to_string()));
            }
        }
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

/// A change of a volume source after the initial list: (kind, namespace, name).
fn source_change<K>(
    ev: Result<watcher::Event<K>, watcher::Error>,
    kind: Kind,
    meta: fn(&K) -> &kube::api::ObjectMeta,
) -> Option<(Kind, String, String)> {
    match ev {
        Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::Delete(o)) => {
            let m = meta(&o);
            Some((kind, m.namespace.clone()?, m.name.clone()?))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(error = %e, "volume source watch error; retrying");
            None
        }
    }
}

async fn worker(
    mut state: PodState,
    mut rx: watch::Receiver<Option<Pod>>,
    mut refresh: mpsc::UnboundedReceiver<(Kind, String)>,
    mut evict: mpsc::UnboundedReceiver<(String, oneshot::Sender<bool>)>,
    cancel: CancellationToken,
) {
    let mut exits = state.cri.exits();
    loop {
        let pod = rx.borrow_and_update().clone();
        let next = match pod {
            None => {
                state.terminate(None).await;
                crate::metrics::forget_pod(&state.uid);
                return;
            }
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                state.terminate(Some(&p)).await;
                confirm_deletion(&state.client, &p).await;
                crate::metrics::forget_pod(&state.uid);
                return;
            }
            Some(p) => state.sync(&p).await,
        };
        let wait = next.unwrap_or(Duration::from_secs(10));
        let sandbox = state.sandbox.as_ref().map(|s| s.id.clone());
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.changed() => if r.is_err() {
                state.terminate(None).await;
                return;
            },
            () = next_exit(&mut exits, sandbox.as_deref()) => {}
            _ = state.probe_changed() => {}
            Some((message, done)) = evict.recv() => {
                let pod = rx.borrow().clone();
                let evicted = match pod {
                    Some(p) if p.metadata.deletion_timestamp.is_none() => state.evict(&p, &message).await,
                    _ => false,
                };
                let _ = done.send(evicted);
            }
            Some((kind, name)) = refresh.recv() => {
                let pod = rx.borrow().clone();
                if let Some(p) = pod.filter(|p| p.metadata.deletion_timestamp.is_none()) {
                    let changed = volumes::refresh(&state.client, &state.cfg, &p, kind, &name).await;
                    if !changed.is_empty() {
                        tracing::info!(pod = %crate::sync_pod::pod_ref(&p), volumes = ?changed, "updated volumes from a changed {kind:?}");
                    }
                }
            }
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
