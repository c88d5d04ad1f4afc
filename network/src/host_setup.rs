//! Node-side setup done once at start-up (and safe to repeat): the bridge with the pods'
//! gateway address, IPv4 forwarding, unreachable routes for the cluster and service CIDRs, and
//! the pod-network part of nftables table `k1s`. It acts on the network namespace k1s runs in.

use std::{fs, path::Path};

use ipnet::Ipv4Net;
use tracing::{debug, info};

use crate::{
    error::{Error, Result},
    nftables::base_ruleset,
    PodNetwork,
};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

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
        info!(bridge = %cfg.bridge_name, %gateway, "pod network ready");
        Ok(())
    }
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
