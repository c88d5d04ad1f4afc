//! `k1s runtime rm|rmp`, and the removal of a sandbox (stop, network, sandbox with its
//! containers) that `run --rm` shares.

use std::path::Path;
use std::process::ExitCode;

use runtime::cri::{ContainerRuntime, SandboxId};

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
        remove_sandbox(rt, data_dir, &sid, NetOf::Lookup).await?;
        println!("{sid}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Removed directories wait in the runtime's trash (a CLI command starts no thread to delete
/// them), with the cgroups of removed sandboxes: their deletion is left to this process's
/// exit helper, after the exit (`Runtime::trash_after_exit`), so that the user does not wait
/// for the disk.
pub fn hand_over_trash(rt: &runtime::Runtime) {
    rt.trash_after_exit();
}

/// The pod network of `data_dir`, if any sandbox was ever attached to it.
async fn network_of(data_dir: &Path) -> anyhow::Result<Option<network::PodNetwork>> {
    let cfg = network::NetworkConfig::new(data_dir);
    if !cfg.ipam_dir().is_dir() {
        return Ok(None);
    }
    Ok(Some(network::PodNetwork::new(cfg).await?))
}

/// The pod network of a sandbox to remove.
pub enum NetOf<'a> {
    /// Known to the caller, which attached the sandbox to this network or to none.
    Known(Option<&'a network::PodNetwork>),
    /// The data dir's network, if the sandbox holds an address there.
    Lookup,
}

/// Stops the sandbox (its containers killed), detaches it from its pod network (`net`) and
/// removes it, its containers with it: their records, writable layers and cgroups are the
/// sandbox's (one request to the shim instead of one more per container, whose cgroups the
/// command's exit helper removes with the pod's).
pub async fn remove_sandbox(
    rt: &dyn ContainerRuntime,
    data_dir: &Path,
    sid: &SandboxId,
    net: NetOf<'_>,
) -> anyhow::Result<()> {
    let netns = match net {
        NetOf::Known(None) => None,
        _ => rt
            .pod_sandbox_status(sid)
            .await
            .ok()
            .and_then(|s| s.netns_path),
    };
    rt.stop_pod_sandbox(sid).await?;
    let opened;
    let net = match net {
        NetOf::Known(n) => n,
        // Only here: opening the data dir's network, once a sandbox ever had one, cost up to
        // 0.1 ms of a `run --rm` that made none.
        NetOf::Lookup => {
            opened = network_of(data_dir).await?;
            opened
                .as_ref()
                .filter(|n| n.ipam().lookup(&sid.0).ok().flatten().is_some())
        }
    };
    if let Some(net) = net {
        // The stopped sandbox's shim may not have unmounted its network namespace's pin yet
        // (it is told to go without waiting for its answer once every container has exited):
        // unpinned here, the namespace is seen dying and the teardown leaves the veth pair to
        // the kernel, where deleting it would wait 16-68 ms for the RTNL lock.
        if let Some(pin) = &netns {
            let _ = nix::mount::umount2(pin, nix::mount::MntFlags::MNT_DETACH);
        }
        net.teardown_pod(&sid.0, netns.as_deref()).await?;
    }
    rt.remove_pod_sandbox(sid).await?;
    Ok(())
}
