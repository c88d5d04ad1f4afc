//! `setup_pod`: wires one sandbox's network namespace to the bridge. Allocates the pod's IP,
//! creates the veth pair with its pod end born inside the pod namespace as `eth0`, then, on a
//! thread inside that namespace, brings loopback up and gives `eth0` its address and the
//! default route. A failure undoes what was done. Teardown lives in `pod_teardown`.

use std::{
    net::Ipv4Addr,
    path::Path,
    time::{Duration, Instant},
};

use ipnet::Ipv4Net;
use nix::errno::Errno;
use tracing::{debug, warn};

use crate::{
    error::{errno, Error, Result},
    netlink::{Netlink, VethSpec, LOOPBACK_IFINDEX},
    netns, PodNetwork, PodNetworkStatus,
};

/// How long `setup_pod` waits for the bridge to forward the pod's port.
const PORT_WAIT: Duration = Duration::from_secs(1);

/// The interface name every pod sees.
pub const POD_IFACE: &str = "eth0";

impl PodNetwork {
    /// Connects the sandbox whose network namespace is at `netns_path` to the pod network and
    /// returns its address. Called by the runtime/kubelet right after the sandbox's namespaces
    /// exist and before its containers start. Calling it again for the same sandbox returns
    /// the same IP (the veth is recreated).
    pub async fn setup_pod(&self, sandbox_id: &str, netns_path: &Path) -> Result<PodNetworkStatus> {
        let started = Instant::now();
        let ip = self.ipam.allocate(sandbox_id)?;
        match self.attach(sandbox_id, netns_path, ip).await {
            Ok(status) => {
                debug!(sandbox = sandbox_id, %ip, elapsed = ?started.elapsed(), "pod network set up");
                Ok(status)
            }
            Err(err) => {
                self.undo_attach(sandbox_id).await;
                Err(err)
            }
        }
    }

    async fn attach(
        &self,
        sandbox_id: &str,
        netns_path: &Path,
        ip: Ipv4Addr,
    ) -> Result<PodNetworkStatus> {
        let cfg = &self.config;
        let bridge = &cfg.bridge_name;
        let bridge_index =
            self.netlink
                .link_index(bridge)
                .await?
                .ok_or_else(|| Error::LinkMissing {
                    name: bridge.clone(),
                })?;
        let netns = netns::open(netns_path)?;
        let host_name = host_veth_name(sandbox_id);
        let mac = pod_mac(ip);
        let spec = VethSpec {
            host_name: &host_name,
            bridge_index,
            peer_name: POD_IFACE,
            peer_netns: &netns,
            peer_netns_path: netns_path,
            peer_mac: mac,
            mtu: cfg.mtu,
        };
        if let Err(err) = self.netlink.create_veth(&spec).await {
            if !is_exists(&err) {
                return Err(err);
            }
            // A retried setup: start over from a clean pair.
            debug!(sandbox = sandbox_id, veth = %host_name, "veth exists, recreating");
            self.netlink.delete_link(&host_name).await?;
            netns::run_async(netns_path, || async {
                Netlink::connect()?.delete_link(POD_IFACE).await.map(drop)
            })
            .await??;
            self.netlink.create_veth(&spec).await?;
        }
        self.netlink.set_hairpin(&host_name).await?;
        let addr = Ipv4Net::new_assert(ip, cfg.pod_cidr.prefix_len());
        let gateway = cfg.gateway();
        netns::run_async(netns_path, move || configure_inside(addr, gateway)).await??;
        self.netlink
            .replace_neighbour(bridge, bridge_index, ip, mac)
            .await?;
        self.wait_until_forwarding(&host_name).await?;
        Ok(PodNetworkStatus {
            ip,
            gateway,
            prefix_len: addr.prefix_len(),
            iface: POD_IFACE.to_owned(),
            mac,
            host_veth: host_name,
        })
    }

    /// Waits until the bridge forwards the pod's port, so the pod's first packet is not
    /// dropped: the port is enabled asynchronously after `eth0` comes up (usually within a
    /// millisecond). Gives up quietly after [`PORT_WAIT`].
    async fn wait_until_forwarding(&self, host_name: &str) -> Result<()> {
        let deadline = Instant::now() + PORT_WAIT;
        while self.netlink.is_forwarding_port(host_name).await? == Some(false) {
            if Instant::now() >= deadline {
                warn!(
                    veth = host_name,
                    "pod port not forwarding after {PORT_WAIT:?}, going on"
                );
                break;
            }
            // The port usually comes up within tens of microseconds: poll briefly before sleeping.
            if Instant::now() + PORT_WAIT - deadline < Duration::from_millis(2) {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok(())
    }

    /// Best-effort rollback of a failed setup.
    async fn undo_attach(&self, sandbox_id: &str) {
        let host_name = host_veth_name(sandbox_id);
        if let Err(err) = self.netlink.delete_link(&host_name).await {
            warn!(sandbox = sandbox_id, error = %err, "rollback: deleting veth failed");
        }
        if let Err(err) = self.ipam.release(sandbox_id) {
            warn!(sandbox = sandbox_id, error = %err, "rollback: releasing ip failed");
        }
    }
}

/// Runs inside the pod's namespace: loopback up, address on eth0, the gateway's MAC, default
/// route.
async fn configure_inside(addr: Ipv4Net, gateway: Ipv4Addr) -> Result<()> {
    let nl = Netlink::connect()?;
    nl.set_up("lo", LOOPBACK_IFINDEX).await?;
    let index = nl
        .link_index(POD_IFACE)
        .await?
        .ok_or_else(|| Error::LinkMissing {
            name: POD_IFACE.to_owned(),
        })?;
    nl.replace_address(POD_IFACE, index, addr).await?;
    nl.set_up(POD_IFACE, index).await?;
    nl.replace_neighbour(POD_IFACE, index, gateway, pod_mac(gateway))
        .await?;
    nl.replace_default_route(gateway).await
}

fn is_exists(err: &Error) -> bool {
    matches!(err, Error::CreateVeth { source, .. } if errno(source) == Some(Errno::EEXIST))
}

/// The host end's name: `veth` and 10 hex digits of a stable (FNV-1a) hash of the sandbox id,
/// 14 bytes, within the kernel's 15. Stable across k1s versions so teardown finds old pods.
pub fn host_veth_name(sandbox_id: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sandbox_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("veth{:010x}", hash & 0xff_ffff_ffff)
}

/// The MAC for an address on the bridge network: locally administered `0a:58` followed by the
/// IPv4 address (as OVN does), so a reused IP keeps its MAC and neighbours' ARP entries stay
/// valid. The bridge gets the gateway's.
pub fn pod_mac(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x0a, 0x58, a, b, c, d]
}
