//! Deletes Events not written for `--event-ttl` (upstream's default: one hour), as
//! kube-apiserver does by giving each Event a lease in etcd. Events live in memory only (see
//! `storage`), so this is also what bounds their memory. Deletions go through the store, so
//! watchers see DELETED.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::handlers::Shared;
use crate::storage::StoreError;

pub fn spawn(state: Shared, ttl: Duration, cancel: CancellationToken) {
    // Check often enough that an Event outlives its TTL by at most about a tenth of it.
    let every = (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            for (key, rev) in state.store.expired_volatile(ttl) {
                match state.store.delete(&key, Some(rev)).await {
                    // Written again meanwhile, or already gone: nothing to do.
                    Ok(_) | Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "failed to delete an expired Event");
                        break;
                    }
                }
            }
        }
    });
}
