//! `teardown_pod`: disconnects a sandbox from the pod network: frees its IP and deletes its veth
//! pair unless its namespace is already going away with it. Idempotent and quiet about things
//! that are already gone.

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
    /// the sandbox goes, usually after it stopped: when `netns_path` no longer names a
    /// namespace, the kernel is destroying it and the pair with it, so only the IP is
    /// released. With the namespace still pinned (or `None`: a stray found by
    /// `remove_stale`) the host end is deleted, and the pod end if the host end was already
    /// gone. Succeeds when there is nothing left to remove.
    pub async fn teardown_pod(&self, sandbox_id: &str, netns_path: Option<&Path>) -> Result<()> {
        let started = Instant::now();
        let host_name = host_veth_name(sandbox_id);
        // A namespace that is no longer pinned (its sandbox stopped, its shim gone) is being
        // destroyed by the kernel, in the background, and the pair with it. Deleting the host
        // end now would only wait for that under the RTNL lock: 16-68 ms here.
        let dying = netns_path.is_some_and(|p| !netns::is_pinned(p));
        let deleted = !dying && self.netlink.delete_link(&host_name).await?;
        if !deleted && !dying {
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
        debug!(sandbox = sandbox_id, veth = %host_name, deleted, dying, ?released, elapsed = ?started.elapsed(), "pod network torn down");
        Ok(())
    }
}
