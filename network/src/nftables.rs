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
