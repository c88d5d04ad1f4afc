//! Garbage collection of pod networking left by sandboxes that no longer exist: after a crash
//! or reboot, IPAM records and host veths can outlive their sandboxes. The kubelet calls
//! [`PodNetwork::remove_stale`] at start-up, once it knows which sandboxes are alive.

use tracing::info;

use crate::{error::Result, PodNetwork};

impl PodNetwork {
    /// Tears down the network of every sandbox that holds an IP but for which `is_live`
    /// returns false. Returns the sandbox ids it cleaned up.
    pub async fn remove_stale(&self, is_live: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (ip, owner) in self.ipam.allocations()? {
            if is_live(&owner) {
                continue;
            }
            info!(sandbox = %owner, %ip, "removing network of a sandbox that is gone");
            self.teardown_pod(&owner, None).await?;
            removed.push(owner);
        }
        Ok(removed)
    }
}
