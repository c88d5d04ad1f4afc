//! Node-side setup done once at start-up (and safe to repeat): the bridge with the pods'
//! gateway address, IPv4 forwarding, unreachable routes for the cluster and service CIDRs, and
//! the pod-network part of nftables table `k1s`. It acts on the network namespace k1s runs in.
//! A veth pair with one end on the bridge (`k1s0-hold`/`k1s0-holdp`) keeps the bridge's
//! carrier on while no pod is attached; see [`PodNetwork::wait_for_bridge_carrier`] for why.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use ipnet::Ipv4Net;
use tracing::{debug, info, warn};

use crate::{
    error::{Error, Result},
    nftables::base_ruleset,
    PodNetwork,
};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// How long host setup waits for the bridge's carrier before going on anyway.
const CARRIER_WAIT: Duration = Duration::from_secs(2);

impl PodNetwork {
    /// Makes the node ready for `setup_pod`; idempotent. Called by the kubelet before it starts
    /// any pod (and on every start, which also repairs what was removed by hand).
    pub async fn ensure_host_setup(&self) -> Result<()> {
        let cfg = &self.config;
        let mac = crate::pod_mac(cfg.gateway());
        let bridge = self
            .netlink
            .ensure_bridge(&cfg.bridge_name, cfg.mtu, mac)
            .await?;
        let (holder, holder_peer) = holder_names(&cfg.bridge_name);
        self.netlink
            .ensure_bridge_holder(&holder, &holder_peer, bridge, cfg.mtu)
            .await?;
        let gateway = Ipv4Net::new_assert(cfg.gateway(), cfg.pod_cidr.prefix_len());
        self.netlink
            .replace_address(&cfg.bridge_name, bridge, gateway)
            .await?;
        enable_forwarding(Path::new(IP_FORWARD))?;
        // The node's /24 on the bridge is more specific and wins over these.
        self.netlink
            .replace_unreachable_route(cfg.cluster_cidr)
            .await?;
        self.netlink
            .replace_unreachable_route(cfg.service_cidr)
            .await?;
        self.nft.apply(&base_ruleset(cfg)).await?;
        self.wait_for_bridge_carrier().await?;
        info!(bridge = %cfg.bridge_name, %gateway, "pod network ready");
        Ok(())
    }
}

impl PodNetwork {
    /// Waits until the bridge is operationally up. Until the kernel's link watcher has handled
    /// the bridge's carrier-on event (batched, up to a second later) the bridge drops what the
    /// node sends through it: the first ARP reply to the first pod would be lost and that pod's
    /// first packet delayed by a second. The holder port keeps the carrier on afterwards.
    async fn wait_for_bridge_carrier(&self) -> Result<()> {
        let bridge = &self.config.bridge_name;
        let deadline = Instant::now() + CARRIER_WAIT;
        while self.netlink.is_oper_up(bridge).await? == Some(false) {
            if Instant::now() >= deadline {
                warn!(bridge = %bridge, "bridge still has no carrier after {CARRIER_WAIT:?}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

/// Names of the veth pair that keeps the bridge's carrier on: `<bridge>-hold` (the bridge
/// port) and `<bridge>-holdp`, shortening the bridge part to fit the kernel's 15 bytes.
fn holder_names(bridge: &str) -> (String, String) {
    let stem: String = bridge.chars().take(9).collect();
    (format!("{stem}-hold"), format!("{stem}-holdp"))
}

fn enable_forwarding(path: &Path) -> Result<()> {
    let err = |source| Error::EnableForwarding {
        path: path.to_owned(),
        source,
    };
    if fs::read_to_string(path).map_err(err)?.trim() == "1" {
        return Ok(());
    }
    debug!(path = %path.display(), "enabling ip forwarding");
    fs::write(path, "1").map_err(err)
}
