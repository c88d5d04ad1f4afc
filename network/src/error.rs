//! The crate's one error type. Each variant names the operation that failed and carries its
//! inputs, so a log line alone says what k1s tried to do to which object.

use std::{io, net::Ipv4Addr, path::PathBuf};

use ipnet::Ipv4Net;

/// A netlink failure, boxed because rtnetlink's error can hold a whole netlink message.
pub type NetlinkError = Box<rtnetlink::Error>;

/// Everything that can go wrong while wiring pods to the node network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid network config: {reason}")]
    InvalidConfig { reason: String },

    #[error("failed to open a netlink socket")]
    NetlinkSocket { source: io::Error },

    #[error("failed to look up link {name}")]
    LookupLink { name: String, source: NetlinkError },

    #[error("link {name} does not exist (did ensure_host_setup run?)")]
    LinkMissing { name: String },

    #[error("failed to create bridge {name}")]
    CreateBridge { name: String, source: NetlinkError },

    #[error("failed to configure link {name}")]
    ConfigureLink { name: String, source: NetlinkError },

    #[error("failed to add address {addr} to {iface}")]
    AddAddress {
        iface: String,
        addr: Ipv4Net,
        source: NetlinkError,
    },

    #[error("failed to add route to {dest}")]
    AddRoute { dest: Ipv4Net, source: NetlinkError },

    #[error("failed to set the neighbour entry for {ip} on {iface}")]
    AddNeighbour {
        iface: String,
        ip: Ipv4Addr,
        source: NetlinkError,
    },

    #[error("failed to create veth {name} with peer {peer} in {netns}")]
    CreateVeth {
        name: String,
        peer: String,
        netns: PathBuf,
        source: NetlinkError,
    },

    #[error("failed to delete link {name}")]
    DeleteLink { name: String, source: NetlinkError },

    #[error("failed to enable ip forwarding via {path}")]
    EnableForwarding { path: PathBuf, source: io::Error },

    #[error("failed to open network namespace {path}")]
    OpenNetns { path: PathBuf, source: io::Error },

    #[error("failed to enter network namespace {path}")]
    EnterNetns { path: PathBuf, source: nix::Error },

    #[error("failed to start a thread for network namespace {path}")]
    NetnsThread { path: PathBuf, source: io::Error },

    #[error("the thread working in network namespace {path} died")]
    NetnsThreadDied { path: PathBuf },

    #[error("failed to prepare ipam directory {path}")]
    IpamDir { path: PathBuf, source: io::Error },

    #[error("failed to record ip {ip} for {owner} in {path}")]
    IpamRecord {
        ip: Ipv4Addr,
        owner: String,
        path: PathBuf,
        source: io::Error,
    },

    #[error("failed to release ip {ip} in {path}")]
    IpamRelease {
        ip: Ipv4Addr,
        path: PathBuf,
        source: io::Error,
    },

    #[error("no free ip left in {cidr} for {owner}")]
    IpamExhausted { cidr: Ipv4Net, owner: String },

    #[error(
        "invalid sandbox id {id:?}: must be non-empty, at most 253 bytes, no '/', NUL or newline"
    )]
    InvalidSandboxId { id: String },

    #[error("failed to run {binary}")]
    RunNft { binary: PathBuf, source: io::Error },

    #[error("nft rejected the ruleset ({status}): {stderr}")]
    Nft {
        status: String,
        stderr: String,
        script: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The errno carried by a netlink error, if the kernel answered with one.
pub(crate) fn errno(err: &rtnetlink::Error) -> Option<nix::errno::Errno> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => {
            Some(nix::errno::Errno::from_raw(msg.raw_code().abs()))
        }
        _ => None,
    }
}
