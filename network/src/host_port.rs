//! hostPort mappings: `protocol . host port -> pod ip . container port` elements of the
//! `hostports` map in table `k1s`, used by DNAT rules for traffic to any local address of the
//! node (from outside, from pods via the gateway, and from the node itself). Adding the same
//! mapping twice or removing a missing one succeeds; mapping a host port that already points
//! elsewhere fails (the scheduler keeps host ports unique per node).

use std::{fmt, net::Ipv4Addr};

use crate::{
    error::Result,
    nftables::{HOSTPORT_MAP, TABLE},
    PodNetwork,
};

/// The transport protocol of a port mapping (Kubernetes' `protocol` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

impl PodNetwork {
    /// Maps `host_port` on every node address to `pod_ip:container_port`. Called by the kubelet
    /// after `setup_pod` for each container port with a `hostPort`.
    pub async fn add_host_port(
        &self,
        proto: Protocol,
        host_port: u16,
        pod_ip: Ipv4Addr,
        container_port: u16,
    ) -> Result<()> {
        let element = element(proto, host_port, pod_ip, container_port);
        self.nft
            .apply(&format!(
                "add element ip {TABLE} {HOSTPORT_MAP} {{ {element} }}\n"
            ))
            .await
    }

    /// Removes the mapping added by [`PodNetwork::add_host_port`] with the same arguments;
    /// succeeds when it is already gone. Called by the kubelet before `teardown_pod`.
    pub async fn remove_host_port(
        &self,
        proto: Protocol,
        host_port: u16,
        pod_ip: Ipv4Addr,
        container_port: u16,
    ) -> Result<()> {
        // Adding the element first makes the delete succeed when it is already gone.
        let element = element(proto, host_port, pod_ip, container_port);
        let script = format!(
            "add element ip {TABLE} {HOSTPORT_MAP} {{ {element} }}
delete element ip {TABLE} {HOSTPORT_MAP} {{ {proto} . {host_port} }}
"
        );
        self.nft.apply(&script).await
    }
}

fn element(proto: Protocol, host_port: u16, pod_ip: Ipv4Addr, container_port: u16) -> String {
    format!("{proto} . {host_port} : {pod_ip} . {container_port}")
}
