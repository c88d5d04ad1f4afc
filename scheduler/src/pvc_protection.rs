//! Upstream's pvc-protection controller: a PersistentVolumeClaim being deleted keeps its
//! `kubernetes.io/pvc-protection` finalizer (added at creation by the API server's admission)
//! while a pod that is not terminal uses it, and loses it once none does, so the claim goes
//! away and its volume is released. Pod changes bring back the claims they name.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub const FINALIZER: &str = "kubernetes.io/pvc-protection";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {what} for claim {claim}: {source}")]
    Api {
        what: &'static str,
        claim: String,
        source: kube::Error,
    },
}

/// Run until `cancel` fires.
pub async fn run(client: Client, cancel: CancellationToken) {
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    Controller::new(claims, watcher::Config::default())
        .watches(pods, watcher::Config::default(), |pod| {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            crate::volume_binding::claim_names(&pod)
                .into_iter()
                .map(move |c| ObjectRef::new(&c).within(&ns))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(cancel.cancelled_owned())
        .run(reconcile, error_policy, Arc::new(client))
        .for_each(|_| async {})
        .await;
}

fn error_policy(_pvc: Arc<PersistentVolumeClaim>, e: &Error, _client: Arc<Client>) -> Action {
    tracing::warn!(error = %e, "pvc-protection: retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(pvc: Arc<PersistentVolumeClaim>, client: Arc<Client>) -> Result<Action, Error> {
    let finalizers = pvc.metadata.finalizers.clone().unwrap_or_default();
    if pvc.metadata.deletion_timestamp.is_none() || !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
    let name = pvc.metadata.name.clone().unwrap_or_default();
    let claim = format!("{ns}/{name}");
    let pods: Api<Pod> = Api::namespaced((*client).clone(), &ns);
    let list = pods
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Api {
            what: "list pods",
            claim: claim.clone(),
            source,
        })?;
    let in_use = list.items.iter().any(|p| {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        !matches!(phase, Some("Succeeded") | Some("Failed"))
            && crate::volume_binding::claim_names(p).contains(&name)
    });
    if in_use {
        tracing::debug!(claim = %claim, "claim being deleted is still in use");
        return Ok(Action::await_change());
    }
    let rest: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": rest,
                                    "resourceVersion": pvc.metadata.resource_version}});
    let api: Api<PersistentVolumeClaim> = Api::namespaced((*client).clone(), &ns);
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(source) => {
            return Err(Error::Api {
                what: "remove the pvc-protection finalizer",
                claim,
                source,
            })
        }
    }
    tracing::info!(claim = %claim, "removed the pvc-protection finalizer of an unused claim");
    Ok(Action::await_change())
}
