//! Namespace deletion: once a namespace is marked for deletion, delete everything in it,
//! wait until it is gone (pods leave when their kubelet confirms), then drop the `kubernetes`
//! finalizer and the namespace itself. (Upstream runs this in the controller manager.)

use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::handlers::path::Target;
use crate::handlers::{write, Shared};
use crate::storage::object_rev;

pub fn spawn(state: Shared, cancel: CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut watch) = state.store.watch("//namespaces/", None) else {
            return;
        };
        // Sweep at start, on every namespace change, and every 500 ms while a namespace is
        // still terminating (its pods leave only when their kubelet confirms); an idle server
        // does no work here.
        let mut pending = true;
        loop {
            if pending {
                pending = match sweep(&state).await {
                    Ok(left) => left,
                    Err(e) => {
                        tracing::warn!(error = %e, "namespace cleanup failed; will retry");
                        true
                    }
                };
            }
            let retry = async {
                if pending {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = retry => {}
                ev = watch.live.recv() => {
                    pending |= ev.as_ref().map_or(true, |e| e.key.starts_with("//namespaces/"));
                    if ev.is_err() {
                        match state.store.watch("//namespaces/", None) {
                            Ok(w) => watch = w,
                            Err(_) => return,
                        }
                    }
                }
            }
        }
    });
}

/// Finalize terminating namespaces; returns whether any is still terminating.
async fn sweep(state: &Shared) -> Result<bool, String> {
    let page = state
        .store
        .list("//namespaces/", None, None, |n| {
            n.pointer("/metadata/deletionTimestamp").is_some()
        })
        .map_err(|e| e.to_string())?;
    let terminating = !page.items.is_empty();
    for ns in page.items {
        let name = crate::registry::name_of(&ns).to_string();
        let remaining = delete_contents(state, &name).await?;
        if remaining > 0 {
            continue;
        }
        let key = format!("//namespaces/{name}");
        let mut next = ns.clone();
        next["spec"]["finalizers"] = json!([]);
        let finalizers_left = next
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let res = if finalizers_left {
            state
                .store
                .update(&key, next, Some(object_rev(&ns)))
                .await
                .map(|_| ())
        } else {
            state
                .store
                .delete(&key, Some(object_rev(&ns)))
                .await
                .map(|_| ())
        };
        if let Err(e) = res {
            tracing::debug!(namespace = %name, error = %e, "namespace finalize raced; retrying");
        }
    }
    Ok(terminating)
}

/// Delete every namespaced object in `ns`; returns how many still exist.
async fn delete_contents(state: &Shared, ns: &str) -> Result<usize, String> {
    let catalog = state.catalog();
    let mut remaining = 0;
    let mut seen_prefixes = std::collections::HashSet::new();
    for rt in catalog
        .types
        .iter()
        .filter(|t| t.namespaced && t.verbs().iter().any(|v| v == "delete"))
    {
        let prefix = rt.ns_prefix(Some(ns));
        if !seen_prefixes.insert(prefix.clone()) {
            continue;
        }
        let page = state
            .store
            .list(&prefix, None, None, |_| true)
            .map_err(|e| e.to_string())?;
        for obj in page.items {
            remaining += 1;
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let t = Target {
                rt: rt.clone(),
                namespace: Some(ns.to_string()),
                name: Some(crate::registry::name_of(&obj).to_string()),
                sub: None,
            };
            if let Err(e) = write::delete_for_gc(state, &t).await {
                tracing::debug!(error = %e, "delete during namespace cleanup failed");
            }
        }
    }
    Ok(remaining)
}
