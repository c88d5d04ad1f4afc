//! The k1s scheduler: watches pods that have no node and whose `schedulerName` is
//! `default-scheduler`, filters the nodes (ready, schedulable, nodeSelector, taints,
//! resource requests that fit) and binds each pod through `pods/binding`, as upstream does.
//! k1s has one node, so scoring is trivial; filtering still decides between binding and
//! `Unschedulable`.

mod filter;
pub mod pvc_protection;
mod volume_binding;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, PersistentVolumeClaim, Pod};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to bind pod {pod} to {node}: {source}")]
    Bind {
        pod: String,
        node: String,
        source: kube::Error,
    },
    #[error("failed to look up or annotate the volume claims of {pod}: {source}")]
    Volumes { pod: String, source: kube::Error },
    #[error("failed to record the scheduling condition of {pod}: {source}")]
    Status { pod: String, source: kube::Error },
}

/// Run until `cancel` fires. Unscheduled pods are kept in a reflector; a pod is tried when it
/// appears or changes, and the pending ones again whenever a node changes (and once a minute
/// as a fallback), and when a PersistentVolumeClaim changes (it appeared, or got bound), like
/// upstream's unschedulable queue: an idle cluster costs no API calls.
pub async fn run(client: Client, cancel: CancellationToken) {
    let nodes: Api<Node> = Api::all(client.clone());
    let (node_store, node_writer) = reflector::store();
    let node_events = reflector::reflector(node_writer, watcher(nodes, watcher::Config::default()))
        .touched_objects();
    let pods: Api<Pod> = Api::all(client.clone());
    let cfg = watcher::Config::default()
        .fields("spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed");
    let (pod_store, pod_writer) = reflector::store();
    let pod_events = reflector::reflector(pod_writer, watcher(pods, cfg)).applied_objects();
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let claim_events = watcher(claims, watcher::Config::default()).touched_objects();
    let client = Arc::new(client);
    tokio::pin!(claim_events);
    tokio::pin!(node_events);
    tokio::pin!(pod_events);
    let mut fallback = tokio::time::interval(Duration::from_secs(60));
    fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            ev = node_events.next() => match ev {
                Some(Ok(_)) => retry_pending(&client, &node_store, &pod_store).await,
                Some(Err(e)) => tracing::debug!(error = %e, "node watch error; the watcher retries"),
                None => return,
            },
            _ = fallback.tick() => retry_pending(&client, &node_store, &pod_store).await,
            ev = claim_events.next() => match ev {
                Some(Ok(_)) => retry_pending(&client, &node_store, &pod_store).await,
                Some(Err(e)) => tracing::debug!(error = %e, "claim watch error; the watcher retries"),
                None => return,
            },
            item = pod_events.next() => match item {
                Some(Ok(pod)) => {
                    if let Err(e) = schedule(&client, &node_store, &pod).await {
                        tracing::warn!(error = %e, "scheduling failed; will retry");
                    }
                }
                Some(Err(e)) => tracing::debug!(error = %e, "pod watch error; the watcher retries"),
                None => return,
            }
        }
    }
}

/// Try every pod still waiting for a node.
async fn retry_pending(
    client: &Client,
    nodes: &reflector::Store<Node>,
    pending: &reflector::Store<Pod>,
) {
    for p in pending.state() {
        if let Err(e) = schedule(client, nodes, &p).await {
            tracing::warn!(error = %e, "scheduling failed; will retry");
        }
    }
}

async fn schedule(client: &Client, nodes: &reflector::Store<Node>, pod: &Pod) -> Result<(), Error> {
    let spec = match &pod.spec {
        Some(s) => s,
        None => return Ok(()),
    };
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
        || pod.metadata.deletion_timestamp.is_some()
        || spec
            .scheduler_name
            .as_deref()
            .unwrap_or("default-scheduler")
            != "default-scheduler"
    {
        return Ok(());
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let all = nodes.state();
    let volumes_err = |source| Error::Volumes {
        pod: format!("{ns}/{name}"),
        source,
    };
    let claims = match volume_binding::claims(client, pod)
        .await
        .map_err(volumes_err)?
    {
        Ok(c) => c,
        Err(why) => {
            let msg = format!("0/{} nodes are available: {why}.", all.len());
            return filter::mark_unschedulable(client, pod, &msg)
                .await
                .map_err(|source| Error::Status { pod: name, source });
        }
    };
    let mut reasons = Vec::new();
    let mut chosen = None;
    for n in all.iter() {
        let fits = filter::fits(pod, n).and_then(|()| match volume_binding::fits(&claims, n) {
            Some(why) => Err(why),
            None => Ok(()),
        });
        match fits {
            Ok(()) => {
                chosen = n.metadata.name.clone();
                break;
            }
            Err(why) => reasons.push(why),
        }
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    match chosen {
        Some(node) => {
            // Claims waiting for their first consumer are provisioned on this node first; the
            // claim watch brings the pod back once they are bound.
            if !volume_binding::pre_bind(client, &claims, &node)
                .await
                .map_err(volumes_err)?
            {
                return Ok(());
            }
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    ..Default::default()
                },
                target: ObjectReference {
                    kind: Some("Node".into()),
                    name: Some(node.clone()),
                    ..Default::default()
                },
            };
            match api
                .create_subresource::<_, serde_json::Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await
            {
                Ok(_) => {
                    tracing::debug!(pod = %format!("{ns}/{name}"), node = %node, "bound");
                    crate::filter::event(
                        client,
                        pod,
                        "Normal",
                        "Scheduled",
                        &format!("Successfully assigned {ns}/{name} to {node}"),
                    )
                    .await;
                    Ok(())
                }
                // Someone else bound it, or it was deleted: nothing to do.
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(()),
                Err(source) => Err(Error::Bind {
                    pod: name,
                    node,
                    source,
                }),
            }
        }
        None => {
            let total = all.len();
            let msg = if total == 0 {
                "no nodes available to schedule pods".to_string()
            } else {
                format!("0/{total} nodes are available: {}.", reasons.join(", "))
            };
            filter::mark_unschedulable(client, pod, &msg)
                .await
                .map_err(|source| Error::Status { pod: name, source })
        }
    }
}
