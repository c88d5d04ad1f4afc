//! Node-side setup done once at start-up (and safe to repeat): the bridge with the pods'
//! gateway address, IPv4 forwarding, unreachable routes for the cluster and service CIDRs, and
//! the pod-network part of nftables table `k1s`. It acts on the network namespace k1s runs in.
//! A veth pair with one end on the bridge (`k1s0-hold`/`k1s0-holdp`) keeps the bridge's
//! carrier on while no pod is attached; see [`PodNetwork::wait_for_bridge_carrier`] for why.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use ipnet::Ipv4Net;
use tracing::{debug, info, warn};

use crate::{
    error::{Error, Result},
    nftables::{base_ruleset, query, TABLE},
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
        let script = base_ruleset(cfg);
        let marker = nft_marker(cfg);
        let here = namespace_and_boot();
        if nft_unchanged(&marker, here.as_deref(), &script) {
            debug!("pod-network ruleset unchanged since this process's last apply");
        } else {
            let before = query::generation().ok();
            self.nft.apply(&script).await?;
            remember_nft(&marker, here.as_deref(), &script, before);
        }
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

/// Where the ruleset last applied is remembered, with the namespace, boot and nftables
/// generation it was applied in.
fn nft_marker(cfg: &crate::NetworkConfig) -> PathBuf {
    cfg.data_dir.join("network").join("nft-applied")
}

/// `<boot id> <netns device>:<netns inode>` of the calling thread.
fn namespace_and_boot() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = fs::metadata("/proc/thread-self/ns/net").ok()?;
    Some(format!("{} {}:{}", boot.trim(), ns.dev(), ns.ino()))
}

/// Whether `script` needs no new `nft` run: it is what was applied last in this namespace
/// during this boot, nftables has committed no transaction since (same generation: the kernel
/// counts every commit, of any table) and table `k1s` exists. Running `nft` costs a process
/// and a transaction, 7-12 ms, on every `k1s runtime run --net`.
fn nft_unchanged(marker: &Path, here: Option<&str>, script: &str) -> bool {
    let Some(here) = here else { return false };
    let Ok(saved) = fs::read_to_string(marker) else {
        return false;
    };
    let Some((head, applied)) = saved.split_once('\n') else {
        return false;
    };
    let Some((place, generation)) = head.rsplit_once(' ') else {
        return false;
    };
    place == here
        && applied == script
        && generation.parse().ok() == query::generation().ok()
        && query::ip_table_exists(TABLE).unwrap_or(false)
}

/// Records `script` as applied when the generation moved by exactly one since `before`: by
/// this transaction alone. Otherwise forgets any record, so the next start applies again.
fn remember_nft(marker: &Path, here: Option<&str>, script: &str, before: Option<u32>) {
    let after = query::generation().ok();
    let ours = matches!((before, after), (Some(b), Some(a)) if a == b.wrapping_add(1));
    let written = match (here, ours) {
        (Some(here), true) => {
            let tmp = marker.with_extension(format!("tmp{}", std::process::id()));
            let body = format!("{here} {}\n{script}", after.unwrap_or_default());
            let written = fs::write(&tmp, body).and_then(|()| fs::rename(&tmp, marker));
            if written.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            written
        }
        _ => Err(std::io::Error::other("not recorded")),
    };
    if written.is_err() {
        let _ = fs::remove_file(marker);
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
