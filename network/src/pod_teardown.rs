//! `teardown_pod`: disconnects a sandbox from the pod network: deletes its veth pair and frees
//! its IP. Idempotent and quiet about things that are already gone.

use std::{path::Path, time::Instant};

use tracing::debug;

use crate::{
    error::Result,
    netlink::Netlink,
    netns,
    pod_setup::{host_veth_name, POD_IFACE},
    PodNetwork,
};

impl PodNetwork {
    /// Removes the sandbox's veth pair and releases its IP. Called by the runtime/kubelet when
    /// the sandbox stops, before its network namespace is destroyed. `netns_path` is used only
    /// when the host end is gone but the pod end survived (the namespace may already be gone:
    /// pass `None` then). Succeeds when there is nothing left to remove.
    pub async fn teardown_pod(&self, sandbox_id: &str, netns_path: Option<&Path>) -> Result<()> {
        let started = Instant::now();
        let host_name = host_veth_name(sandbox_id);
        let deleted = self.netlink.delete_link(&host_name).await?;
        if !deleted {
            if let Some(path) = netns_path.filter(|p| p.exists()) {
                // Deleting either end removes the pair; this only finds strays.
                let _ = netns::run_async(path, || async {
                    Netlink::connect()?.delete_link(POD_IFACE).await.map(drop)
                })
                .await;
            }
        }
        let released = self.ipam.release(sandbox_id)?;
        if let Some(ip) = released {
            let bridge = &self.config.bridge_name;
            if let Some(index) = self.netlink.link_index(bridge).await? {
                self.netlink.delete_neighbour(bridge, index, ip).await?;
            }
        }
        debug!(sandbox = sandbox_id, veth = %host_name, deleted, ?released, elapsed = ?started.elapsed(), "pod network torn down");
        Ok(())
    }
}
