//! k1s container runtime: what the kubelet uses to run pods on this machine.
//!
//! Owns images (store, registry pulls, import, unpack), per-pod shims (namespaces, container
//! processes, logs, exit records), overlayfs rootfs setup, capabilities and cgroups. Knows
//! nothing of Kubernetes types: the kubelet translates Pods into `cri` configs.
//!
//! Layout on disk under `data_dir` (default `/var/lib/k1s/runtime`):
//! ```text
//! images/blobs/sha256/<hex>         content-addressed blobs (layers, configs, manifests)
//! images/records/<config-hex>.json  one record per image: tags, layers, config
//! images/refs.json                  normalised name -> image id
//! images/gc.lock                    flock: shared by import/pull/create, exclusive by prune
//! snapshots/<diff-id-hex>/          each layer unpacked once (overlay lowerdir)
//! mountpoints/{proc,dev,sys,etc/{hosts,hostname,resolv.conf}}  read-only layer above every
//!                                   image: what a container's set-up mounts over
//! rw/<sid>/<cid>/{upper,work}       a container's writable layer (overlayfs upper and work)
//! rw/.spare-<n>/                    empty, never used: renamed to a new sandbox's rw/<sid>
//! rw/<sid>/<name>.log               container logs of `k1s runtime run` (the kubelet's are
//!                                   in its pod directories)
//! trash/<random>/                   removed writable layers, renamed here at once and deleted
//!                                   in the background
//! state -> /run/k1s/<hash>          what does not outlive a reboot; a symlink into /run when
//!                                   /run is a tmpfs, else a directory (`layout::open_state_dir`)
//! state/sandboxes/<sid>/sandbox.json      PodSandboxConfig + creation time (daemon writes)
//! state/sandboxes/<sid>/shim.sock         the shim's JSON-lines socket (dir is 0700)
//! state/sandboxes/<sid>/shim.pid          pid of the shim holding the namespaces
//! state/sandboxes/<sid>/ns/net          the pod network namespace, bind-mounted (pod network
//!                                        only; the IPC and UTS ones via /proc/<shim>/ns)
//! state/sandboxes/<sid>/etc/{hosts,hostname,resolv.conf}
//! state/sandboxes/<sid>/containers/<cid>/config.json   resolved container spec (daemon writes)
//! state/sandboxes/<sid>/containers/<cid>/state.json    Created/Running/Exited (shim writes, atomic, no fsync)
//! state/sandboxes/<sid>/containers/<cid>/rootfs        overlayfs mount point
//! state/trash/<random>/             removed containers and sandboxes (as trash/)
//! state/spares/<id>/{shim.sock,shim.pid,shim.log}  the spare shim kept ready by `k1s server`
//! ```
//! Cgroups: `<hierarchy>/<cgroup_parent or k1s>/pod<uid>/<cid>` in each v1 controller
//! (cpu, cpuacct, memory, pids) or in the unified v2 tree. The shim runs in `pod<uid>` on v1,
//! in `pod<uid>/shim` on v2 (`Cgroups::shim_cgroup`).

pub mod cri;
pub mod error;
pub mod image;
pub mod memory;
pub mod safe_path;

pub use error::{Error, Result};
pub mod cgroups;
pub mod container;
pub mod daemon;
pub mod layout;
pub mod shim;

pub use daemon::{
    purge_trash, resize_pty, AttachSession, ExecOptions, ExecSession, Runtime, RuntimeConfig,
};

#[cfg(test)]
pub(crate) mod test_support {
    /// For a root test: puts the calling test thread (and what it forks) into a mount
    /// namespace of its own, its mounts private, so nothing the test mounts reaches the host.
    /// False (the test is skipped) without root.
    pub(crate) fn root_in_private_mount_ns() -> bool {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return false;
        }
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .expect("unshare a mount namespace");
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("make / private");
        true
    }
}
