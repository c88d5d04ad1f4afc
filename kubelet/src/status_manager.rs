//! Writes pod status to the API through the `status` subresource. Callers drop duplicate
//! writes (see `sync_pod`); this only sends and logs.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;

pub async fn patch(client: &Client, pod: &Pod, body: &serde_json::Value) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let t0 = std::time::Instant::now();
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(_) => {
            tracing::debug!(pod = %format!("{ns}/{name}"), ms = t0.elapsed().as_secs_f64() * 1e3, "status written")
        }
        Err(e) => {
            tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "status update failed; the next sync retries")
        }
    }
}
