//! Pod networking for k1s: a Linux bridge (`k1s0`) holding the pods' gateway, one veth pair per
//! pod sandbox, host-local IPAM persisted on disk, unreachable routes for the cluster and
//! service ranges, masquerade for egress and hostPort DNAT in nftables table `k1s`.
//!
//! The kubelet/runtime owns one [`PodNetwork`]: it calls [`PodNetwork::ensure_host_setup`] at
//! start, [`PodNetwork::setup_pod`] once a sandbox's network namespace exists,
//! [`PodNetwork::add_host_port`]/[`PodNetwork::remove_host_port`] for `hostPort`s, and
//! [`PodNetwork::teardown_pod`] when the sandbox goes. This crate knows nothing of Kubernetes
//! objects and does not create network namespaces; the service proxy is another module.
//!
//! All link, address and route changes go through netlink; the pod-side ones are made from a
//! dedicated thread inside the pod's namespace ([`netns`]), never from a runtime worker.

mod config;
mod error;
mod host_port;
mod host_setup;
pub mod ipam;
mod netlink;
pub mod netns;
mod nftables;
mod pod_gc;
mod pod_setup;
mod pod_teardown;

use std::net::Ipv4Addr;

pub use config::NetworkConfig;
pub use error::{Error, NetlinkError, Result};
pub use host_port::Protocol;
pub use ipam::Ipam;
pub use nftables::query::generation as nft_generation;
pub use nftables::{HOSTPORT_MAP, TABLE as NFT_TABLE};
pub use pod_setup::{host_veth_name, pod_mac, POD_IFACE};

/// What `setup_pod` gave the sandbox; the kubelet reports `ip` as `status.podIP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetworkStatus {
    /// The pod's address.
    pub ip: Ipv4Addr,
    /// The pod's default gateway (the bridge).
    pub gateway: Ipv4Addr,
    /// Prefix length of the pod's address (the node's pod CIDR).
    pub prefix_len: u8,
    /// The interface inside the pod, always `eth0`.
    pub iface: String,
    /// The MAC address of the pod's interface.
    pub mac: [u8; 6],
    /// The host end of the veth pair.
    pub host_veth: String,
}

/// The node's pod network: configuration, IPAM and a netlink connection in the namespace k1s
/// runs in. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct PodNetwork {
    config: NetworkConfig,
    ipam: Ipam,
    netlink: netlink::Netlink,
    nft: nftables::Nft,
}

impl PodNetwork {
    /// Validates `config`, opens the IPAM store and a netlink connection. Must run inside a
    /// Tokio runtime (the connection's driver is spawned on it). Changes nothing on the system
    /// except creating the IPAM directory.
    pub async fn new(config: NetworkConfig) -> Result<Self> {
        config.validate()?;
        let ipam = Ipam::open(config.ipam_dir(), config.pod_cidr, config.gateway())?;
        let netlink = netlink::Netlink::connect()?;
        Ok(Self {
            config,
            ipam,
            netlink,
            nft: nftables::Nft::locate(),
        })
    }

    /// The configuration this network was built with.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The IP allocator, e.g. for the kubelet's garbage collection of stale allocations.
    pub fn ipam(&self) -> &Ipam {
        &self.ipam
    }
}
