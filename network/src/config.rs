//! `NetworkConfig`: the node's address plan (cluster, node pod and service CIDRs), the bridge
//! name, MTU and where state lives. It validates the plan and derives the gateway; it does not
//! touch the system.

use std::{net::Ipv4Addr, path::PathBuf};

use ipnet::Ipv4Net;

use crate::error::{Error, Result};

/// How the node's pod network is laid out. Defaults follow k3s: cluster CIDR 10.42.0.0/16 with
/// this node's 10.42.0.0/24, services in 10.43.0.0/16, bridge `k1s0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Name of the Linux bridge the pods' veths are attached to.
    pub bridge_name: String,
    /// The whole pod range of the cluster; anything in it that is not on this node is
    /// unreachable (never sent to a default route).
    pub cluster_cidr: Ipv4Net,
    /// This node's share of `cluster_cidr`; IPAM hands out addresses from it and the bridge
    /// holds its first host address as the pods' gateway.
    pub pod_cidr: Ipv4Net,
    /// ClusterIP range; unreachable unless the service proxy DNATs it.
    pub service_cidr: Ipv4Net,
    /// MTU of the bridge and of both ends of every veth.
    pub mtu: u32,
    /// k1s state directory; IPAM lives in `<data_dir>/network/ipam/`.
    pub data_dir: PathBuf,
}

impl NetworkConfig {
    /// The default plan with state under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            bridge_name: "k1s0".to_owned(),
            cluster_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 42, 0, 0), 16),
            pod_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 42, 0, 0), 24),
            service_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 43, 0, 0), 16),
            mtu: 1500,
            data_dir: data_dir.into(),
        }
    }

    /// The pods' default gateway: the first host address of `pod_cidr`, held by the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        let base = u32::from(self.pod_cidr.network());
        Ipv4Addr::from(base.saturating_add(1))
    }

    /// Where the host-local IPAM keeps one file per allocated address.
    pub fn ipam_dir(&self) -> PathBuf {
        self.data_dir.join("network").join("ipam")
    }

    /// Checks that the plan is usable: names fit the kernel, ranges nest and do not overlap.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidConfig { reason });
        if self.bridge_name.is_empty() || self.bridge_name.len() > 15 {
            return invalid(format!(
                "bridge name {:?} must be 1-15 bytes",
                self.bridge_name
            ));
        }
        if self.pod_cidr.prefix_len() > 30 {
            return invalid(format!(
                "pod cidr {} leaves no room for pods",
                self.pod_cidr
            ));
        }
        if self.pod_cidr.network() != self.pod_cidr.addr() {
            return invalid(format!("pod cidr {} has host bits set", self.pod_cidr));
        }
        if !self.cluster_cidr.contains(&self.pod_cidr) {
            return invalid(format!(
                "pod cidr {} is not inside cluster cidr {}",
                self.pod_cidr, self.cluster_cidr
            ));
        }
        if self.cluster_cidr.contains(&self.service_cidr.network())
            || self.service_cidr.contains(&self.cluster_cidr.network())
        {
            return invalid(format!(
                "service cidr {} overlaps cluster cidr {}",
                self.service_cidr, self.cluster_cidr
            ));
        }
        if !(68..=65535).contains(&self.mtu) {
            return invalid(format!("mtu {} is out of range 68-65535", self.mtu));
        }
        Ok(())
    }
}
