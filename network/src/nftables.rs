//! The `k1s` nftables table as far as pod networking owns it: the masquerade chain and the
//! hostPort map with its DNAT chains. Rules are fed as text to `nft -f -`. Every script here is
//! idempotent: base chains are created with `add` (a no-op when present) and our chains are
//! flushed and refilled, while the hostPort map keeps its elements across restarts, so a
//! restarted k1s keeps serving running pods' host ports. Other chains of the table (the service
//! proxy's) are left alone.
//!
//! Shelling out costs a process per update; a netlink implementation can replace [`Nft::apply`]
//! without changing the scripts' meaning (no GPL-free nftables netlink crate exists yet).

use std::{path::PathBuf, process::Stdio};

use tokio::{io::AsyncWriteExt, process::Command};
use tracing::debug;

use crate::{
    config::NetworkConfig,
    error::{Error, Result},
};

/// The table every k1s rule lives in.
pub const TABLE: &str = "k1s";
/// The map from `protocol . host port` to `pod ip . container port`.
pub const HOSTPORT_MAP: &str = "hostports";

/// Runs rulesets through the `nft` binary.
#[derive(Debug, Clone)]
pub(crate) struct Nft {
    binary: PathBuf,
}

impl Nft {
    /// Finds `nft`; daemons often run with a PATH that lacks the sbin directories.
    pub(crate) fn locate() -> Self {
        let binary = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("nft"));
        Self { binary }
    }

    /// Applies `script` as one atomic transaction.
    pub(crate) async fn apply(&self, script: &str) -> Result<()> {
        debug!(script, "nft -f -");
        let run_err = |source| Error::RunNft {
            binary: self.binary.clone(),
            source,
        };
        let mut child = Command::new(&self.binary)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(run_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await.map_err(run_err)?;
        }
        let output = child.wait_with_output().await.map_err(run_err)?;
        if output.status.success() {
            return Ok(());
        }
        Err(Error::Nft {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            script: script.to_owned(),
        })
    }
}

/// The pod-network part of table `k1s`: masquerade and the hostPort map and chains.
pub(crate) fn base_ruleset(config: &NetworkConfig) -> String {
    let pods = config.pod_cidr;
    let cluster = config.cluster_cidr;
    format!(
        "add table ip {TABLE}
add map ip {TABLE} {HOSTPORT_MAP} {{ type inet_proto . inet_service : ipv4_addr . inet_service ; }}
add chain ip {TABLE} hostport_prerouting {{ type nat hook prerouting priority dstnat ; policy accept ; }}
add chain ip {TABLE} hostport_output {{ type nat hook output priority -100 ; policy accept ; }}
add chain ip {TABLE} pod_postrouting {{ type nat hook postrouting priority srcnat ; policy accept ; }}
flush chain ip {TABLE} hostport_prerouting
flush chain ip {TABLE} hostport_output
flush chain ip {TABLE} pod_postrouting
add rule ip {TABLE} hostport_prerouting fib daddr type local dnat ip to meta l4proto . th dport map @{HOSTPORT_MAP}
add rule ip {TABLE} hostport_output fib daddr type local dnat ip to meta l4proto . th dport map @{HOSTPORT_MAP}
add rule ip {TABLE} pod_postrouting ip saddr {pods} ip daddr != {cluster} masquerade
add rule ip {TABLE} pod_postrouting ip saddr {pods} ip daddr {pods} ct status dnat masquerade
"
    )
}

/// What nftables' netlink interface (NETLINK_NETFILTER) says about this network namespace,
/// asked directly: a query costs a few microseconds where `nft` costs a process.
pub mod query {
    use std::io;

    use nix::libc;

    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    const NFT_MSG_GETTABLE: u16 = 1;
    const NFT_MSG_GETGEN: u16 = 16;
    const NFTA_TABLE_NAME: u16 = 1;
    const NFTA_GEN_ID: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const NFPROTO_IPV4: u8 = 2;
    const HDR: usize = 16;
    const NFGENMSG: usize = 4;

    /// The ruleset generation: the kernel counts every committed nftables transaction (of any
    /// table) in the namespace, so an unchanged number means an unchanged ruleset.
    pub fn generation() -> io::Result<u32> {
        let reply = request(NFT_MSG_GETGEN, libc::AF_UNSPEC as u8, &[])?;
        attr(&reply, NFTA_GEN_ID)
            .and_then(|v| v.get(..4))
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| io::Error::other("no generation in the kernel's answer"))
    }

    /// Whether table `name` of family `ip` exists.
    pub(crate) fn ip_table_exists(name: &str) -> io::Result<bool> {
        let mut value = name.as_bytes().to_vec();
        value.push(0);
        let mut attrs = Vec::new();
        push_attr(&mut attrs, NFTA_TABLE_NAME, &value);
        match request(NFT_MSG_GETTABLE, NFPROTO_IPV4, &attrs) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    /// The value of attribute `kind` in the payload after the nfgenmsg of message `msg`.
    fn attr(msg: &[u8], kind: u16) -> Option<&[u8]> {
        let mut rest = msg.get(HDR + NFGENMSG..)?;
        while rest.len() >= 4 {
            let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
            let k = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
            if len < 4 || len > rest.len() {
                return None;
            }
            if k == kind {
                return Some(&rest[4..len]);
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        None
    }

    /// Sends one get request and returns the kernel's answer (an error answer as its errno).
    fn request(msg: u16, family: u8, attrs: &[u8]) -> io::Result<Vec<u8>> {
        use nix::sys::socket::{
            recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
            SockFlag, SockProtocol, SockType,
        };
        use std::os::fd::AsRawFd;
        let sock = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        // The kernel answers get requests at once; the timeout only guards against one that
        // never does.
        setsockopt(
            &sock,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(1, 0),
        )?;
        let len = HDR + NFGENMSG + attrs.len();
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&(len as u32).to_ne_bytes());
        buf.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | msg).to_ne_bytes());
        buf.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel assigns it
        buf.extend_from_slice(&[family, 0, 0, 0]); // nfgenmsg: family, version 0, res_id 0
        buf.extend_from_slice(attrs);
        sendto(
            sock.as_raw_fd(),
            &buf,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut reply = vec![0u8; 8192];
        let n = recv(sock.as_raw_fd(), &mut reply, MsgFlags::empty())?;
        reply.truncate(n);
        if reply.len() < HDR {
            return Err(io::Error::other("short netlink answer"));
        }
        if u16::from_ne_bytes([reply[4], reply[5]]) == NLMSG_ERROR {
            let code = reply
                .get(HDR..HDR + 4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(-libc::EIO);
            return Err(io::Error::from_raw_os_error(-code));
        }
        Ok(reply)
    }
}
