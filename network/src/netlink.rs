//! A thin rtnetlink client for the few link, address and route operations k1s needs, each one
//! idempotent where the caller needs it and each failure mapped to a named [`Error`] variant.
//! A [`Netlink`] talks to the network namespace its socket was opened in; to act inside a pod,
//! open one on a thread that entered the pod's namespace (see [`crate::netns`]).

use std::{net::Ipv4Addr, os::fd::AsRawFd, path::Path};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use nix::errno::Errno;
use rtnetlink::{
    packet_route::{
        link::{
            BridgePortState, InfoBridgePort, InfoData, InfoPortData, InfoVeth, LinkAttribute,
            LinkInfo, LinkMessage, State,
        },
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage},
        route::RouteType,
        AddressFamily,
    },
    Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use tracing::debug;

use crate::error::{errno, Error, Result};

/// The kernel gives loopback this index in every network namespace.
pub(crate) const LOOPBACK_IFINDEX: u32 = 1;

/// A route netlink connection; its driver task runs on the runtime that created it.
#[derive(Debug, Clone)]
pub(crate) struct Netlink {
    handle: Handle,
}

/// Everything the kernel needs to create one pod's veth pair in one request.
pub(crate) struct VethSpec<'a, F: AsRawFd> {
    pub host_name: &'a str,
    pub bridge_index: u32,
    pub peer_name: &'a str,
    pub peer_netns: &'a F,
    pub peer_netns_path: &'a Path,
    pub peer_mac: [u8; 6],
    pub mtu: u32,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace and spawns its driver on the
    /// current Tokio runtime.
    pub(crate) fn connect() -> Result<Self> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|source| Error::NetlinkSocket { source })?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// The index of link `name`, or `None` if there is no such link.
    pub(crate) async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(err) if errno(&err) == Some(Errno::ENODEV) => Ok(None),
            Err(err) => Err(Error::LookupLink {
                name: name.to_owned(),
                source: Box::new(err),
            }),
        }
    }

    /// Creates bridge `name` if missing, then sets its MTU and brings it up. Returns its index.
    /// The bridge gets the fixed `mac`; otherwise it takes the lowest MAC of its ports and
    /// changes it as pods come and go, leaving stale gateway entries in the pods' ARP caches.
    pub(crate) async fn ensure_bridge(&self, name: &str, mtu: u32, mac: [u8; 6]) -> Result<u32> {
        if self.link_index(name).await?.is_none() {
            debug!(bridge = name, "creating bridge");
            let msg = LinkBridge::new(name).mtu(mtu).address(mac.to_vec()).build();
            match self.handle.link().add(msg).execute().await {
                Ok(()) => {}
                Err(err) if errno(&err) == Some(Errno::EEXIST) => {}
                Err(err) => {
                    return Err(Error::CreateBridge {
                        name: name.to_owned(),
                        source: Box::new(err),
                    })
                }
            }
        }
        let index = self
            .link_index(name)
            .await?
            .ok_or_else(|| Error::LinkMissing {
                name: name.to_owned(),
            })?;
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).up().build();
        self.set_link(name, msg).await?;
        Ok(index)
    }

    /// Brings link `index` up; `name` is only for the error.
    pub(crate) async fn set_up(&self, name: &str, index: u32) -> Result<()> {
        self.set_link(name, LinkUnspec::new_with_index(index).up().build())
            .await
    }

    async fn set_link(&self, name: &str, msg: LinkMessage) -> Result<()> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|err| Error::ConfigureLink {
                name: name.to_owned(),
                source: Box::new(err),
            })
    }

    /// Adds (or refreshes) address `addr` on link `index`.
    pub(crate) async fn replace_address(
        &self,
        iface: &str,
        index: u32,
        addr: Ipv4Net,
    ) -> Result<()> {
        debug!(iface, %addr, "adding address");
        self.handle
            .address()
            .add(index, addr.addr().into(), addr.prefix_len())
            .replace()
            .execute()
            .await
            .map_err(|err| Error::AddAddress {
                iface: iface.to_owned(),
                addr,
                source: Box::new(err),
            })
    }

    /// Installs an `unreachable` route for `dest` in the main table (replacing any route for
    /// exactly that prefix), so its addresses fail fast instead of following a default route.
    pub(crate) async fn replace_unreachable_route(&self, dest: Ipv4Net) -> Result<()> {
        debug!(%dest, "adding unreachable route");
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest.network(), dest.prefix_len())
            .kind(RouteType::Unreachable)
            .build();
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|err| Error::AddRoute {
                dest,
                source: Box::new(err),
            })
    }

    /// Installs (or replaces) the default route via `gateway`.
    pub(crate) async fn replace_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|err| Error::AddRoute {
                dest: Ipv4Net::default(),
                source: Box::new(err),
            })
    }

    /// Creates a veth pair in one request: the host end attached to the bridge and up, the
    /// peer created directly inside the pod's namespace with its MAC and MTU. Creating the
    /// peer in place is several times faster than creating it here and moving it. The peer
    /// stays down: asking for it up in the same request fails with ENOTCONN (kernel 6.18);
    /// bring it up from inside the pod's namespace.
    pub(crate) async fn create_veth<F: AsRawFd>(&self, spec: &VethSpec<'_, F>) -> Result<()> {
        let peer = LinkUnspec::new_with_name(spec.peer_name)
            .setns_by_fd(spec.peer_netns.as_raw_fd())
            .mtu(spec.mtu)
            .address(spec.peer_mac.to_vec())
            .build();
        let msg = LinkVeth::new(spec.host_name, spec.peer_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .mtu(spec.mtu)
            .controller(spec.bridge_index)
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|err| Error::CreateVeth {
                name: spec.host_name.to_owned(),
                peer: spec.peer_name.to_owned(),
                netns: spec.peer_netns_path.to_owned(),
                source: Box::new(err),
            })
    }

    /// Whether link `name` is operationally up (carrier on, processed by the kernel's link
    /// watcher). `None` when the link does not exist.
    pub(crate) async fn is_oper_up(&self, name: &str) -> Result<Option<bool>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| {
                l.attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::OperState(State::Up)))
            })),
            Err(err) if errno(&err) == Some(Errno::ENODEV) => Ok(None),
            Err(err) => Err(Error::LookupLink {
                name: name.to_owned(),
                source: Box::new(err),
            }),
        }
    }

    /// Whether bridge port `name` is in the forwarding state. The bridge enables a port only
    /// once the kernel's link watcher has handled its carrier-on event (asynchronously); until
    /// then it drops the port's frames. `None` when the link does not exist.
    pub(crate) async fn is_forwarding_port(&self, name: &str) -> Result<Option<bool>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let link = match links.try_next().await {
            Ok(link) => link,
            Err(err) if errno(&err) == Some(Errno::ENODEV) => return Ok(None),
            Err(err) => {
                return Err(Error::LookupLink {
                    name: name.to_owned(),
                    source: Box::new(err),
                })
            }
        };
        Ok(link.map(|l| {
            l.attributes.iter().any(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().any(|i| match i {
                    LinkInfo::PortData(InfoPortData::BridgePort(port)) => port
                        .iter()
                        .any(|p| matches!(p, InfoBridgePort::State(BridgePortState::Forwarding))),
                    _ => false,
                }),
                _ => false,
            })
        }))
    }

    /// Ensures a veth pair `name`/`peer` in this namespace with `name` attached to bridge
    /// `bridge_index` and both ends up: a port that is always up keeps the bridge's carrier on.
    pub(crate) async fn ensure_bridge_holder(
        &self,
        name: &str,
        peer: &str,
        bridge_index: u32,
        mtu: u32,
    ) -> Result<()> {
        if self.link_index(name).await?.is_none() {
            debug!(veth = name, "creating bridge carrier holder");
            let msg = LinkVeth::new(name, peer)
                .mtu(mtu)
                .controller(bridge_index)
                .build();
            match self.handle.link().add(msg).execute().await {
                Ok(()) => {}
                Err(err) if errno(&err) == Some(Errno::EEXIST) => {}
                Err(err) => {
                    return Err(Error::CreateVeth {
                        name: name.to_owned(),
                        peer: peer.to_owned(),
                        netns: "/proc/self/ns/net".into(),
                        source: Box::new(err),
                    })
                }
            }
        }
        for end in [name, peer] {
            let index = self
                .link_index(end)
                .await?
                .ok_or_else(|| Error::LinkMissing {
                    name: end.to_owned(),
                })?;
            self.set_up(end, index).await?;
        }
        Ok(())
    }

    /// Installs a permanent neighbour entry `ip -> mac` on link `index`. MACs on the bridge
    /// network are derived from IPs ([`crate::pod_mac`]), so the entry is right for whoever
    /// holds `ip`, and nobody waits for an ARP exchange on a freshly created link.
    pub(crate) async fn replace_neighbour(
        &self,
        iface: &str,
        index: u32,
        ip: Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<()> {
        self.handle
            .neighbours()
            .add(index, ip.into())
            .link_layer_address(&mac)
            .replace()
            .execute()
            .await
            .map_err(|err| Error::AddNeighbour {
                iface: iface.to_owned(),
                ip,
                source: Box::new(err),
            })
    }

    /// Removes the neighbour entry for `ip` on link `index`, if any.
    pub(crate) async fn delete_neighbour(
        &self,
        iface: &str,
        index: u32,
        ip: Ipv4Addr,
    ) -> Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.ifindex = index;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        match self.handle.neighbours().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(err) if errno(&err) == Some(Errno::ENOENT) => Ok(()),
            Err(err) => Err(Error::AddNeighbour {
                iface: iface.to_owned(),
                ip,
                source: Box::new(err),
            }),
        }
    }

    /// Turns on hairpin mode on bridge port `name`, so a frame may leave through the port it
    /// came in on. Needed when bridge netfilter is active (`bridge-nf-call-iptables=1`): a
    /// pod's connection DNATed back to itself (hostPort, or a Service whose endpoint is the
    /// client) is then bridged back out of the pod's own port. Kubernetes' `hairpin-veth`.
    pub(crate) async fn set_hairpin(&self, name: &str) -> Result<()> {
        let msg = LinkBridgePort::new(0).name(name).hairpin(true).build();
        self.handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(|err| Error::ConfigureLink {
                name: name.to_owned(),
                source: Box::new(err),
            })
    }

    /// Deletes link `name`. Returns `false` when it did not exist.
    pub(crate) async fn delete_link(&self, name: &str) -> Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.handle.link().del_with_message(msg).execute().await {
            Ok(()) => Ok(true),
            Err(err) if errno(&err) == Some(Errno::ENODEV) => Ok(false),
            Err(err) => Err(Error::DeleteLink {
                name: name.to_owned(),
                source: Box::new(err),
            }),
        }
    }
}
