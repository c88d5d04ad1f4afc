//! `k1s runtime rm|rmp`, and the removal of a sandbox in the kubelet's order (containers,
//! stop, network, sandbox) that `run --rm` shares.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use runtime::cri::{ContainerRuntime, ContainerState, SandboxId};

use super::{resolve_container, resolve_sandbox};

pub async fn rm(rt: &runtime::Runtime, ids: &[String]) -> anyhow::Result<ExitCode> {
    for id in ids {
        let cid = resolve_container(rt, id).await?;
        rt.remove_container(&cid).await?;
        println!("{cid}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rmp(
    rt: &runtime::Runtime,
    data_dir: &Path,
    ids: &[String],
) -> anyhow::Result<ExitCode> {
    for id in ids {
        let sid = resolve_sandbox(rt, id).await?;
        remove_sandbox(rt, data_dir, &sid, None).await?;
        println!("{sid}");
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a CLI command about to exit waits for its trash thread before it hands what is
/// left to another process.
const TRASH_WAIT: Duration = Duration::from_millis(20);

/// Removed directories are deleted by a background thread of this process (see the runtime's
/// trash), which usually finishes within a fraction of a millisecond of the removal: that is
/// waited for, up to `TRASH_WAIT`. What is left then (a slow disk, many sandboxes) goes to a
/// detached `k1s runtime purge-trash` instead of making the user wait for the disk. Starting
/// that process cost `runtime run --rm` 0.7 ms p50 more than the wait.
pub fn hand_over_trash(rt: &runtime::Runtime, data_dir: &Path) {
    if rt.wait_trash(TRASH_WAIT) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let spawned = std::process::Command::new("/proc/self/exe")
        .args(["runtime", "purge-trash", "--data-dir"])
        .arg(data_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    if spawned.is_err() {
        runtime::purge_trash(&crate::agent::runtime_dir(data_dir));
    }
}

/// The pod network of `data_dir`, if any sandbox was ever attached to it.
async fn network_of(data_dir: &Path) -> anyhow::Result<Option<network::PodNetwork>> {
    let cfg = network::NetworkConfig::new(data_dir);
    if !cfg.ipam_dir().is_dir() {
        return Ok(None);
    }
    Ok(Some(network::PodNetwork::new(cfg).await?))
}

/// Removes the sandbox's containers, stops it, detaches it from the pod network (`net`, or
/// the data dir's network when the sandbox holds an address there) and removes it.
pub async fn remove_sandbox(
    rt: &dyn ContainerRuntime,
    data_dir: &Path,
    sid: &SandboxId,
    net: Option<&network::PodNetwork>,
) -> anyhow::Result<()> {
    for c in rt.list_containers().await? {
        if c.sandbox_id == *sid {
            if matches!(c.state, ContainerState::Running { .. }) {
                rt.stop_container(&c.id, Duration::ZERO).await?;
            }
            rt.remove_container(&c.id).await?;
        }
    }
    let netns = rt
        .pod_sandbox_status(sid)
        .await
        .ok()
        .and_then(|s| s.netns_path);
    rt.stop_pod_sandbox(sid).await?;
    let opened;
    let net = match net {
        Some(n) => Some(n),
        None => {
            opened = network_of(data_dir).await?;
            opened
                .as_ref()
                .filter(|n| n.ipam().lookup(&sid.0).ok().flatten().is_some())
        }
    };
    if let Some(net) = net {
        net.teardown_pod(&sid.0, netns.as_deref()).await?;
    }
    rt.remove_pod_sandbox(sid).await?;
    Ok(())
}
