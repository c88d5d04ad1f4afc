//! `k1s shim`: the per-pod monitor, a re-exec of the k1s binary (never a fork of the daemon).
//!
//! `shim start <data_dir> <sandbox_id>` daemonises (fork, setsid) so it outlives the daemon,
//! creates and holds the pod's network/IPC/UTS namespaces (bind-mounted under
//! `sandboxes/<id>/ns/`), becomes the child subreaper, and serves `shim.sock` from a
//! single-threaded poll loop: it clones container processes, writes their CRI logs, reaps
//! them and records exits (with OOM kills) on disk. `shim exec <sandbox_dir> <cid> -- argv`
//! is the helper behind `exec_sync`: it joins a running container and execs there.
//! `shim spare <data_dir> <spare_id>` is a shim started ahead of need, in fresh namespaces,
//! that becomes the shim of the sandbox it is told to adopt (see `start::spare`).

pub mod proto;

mod create;
mod exec;
pub mod log;
mod oci;
mod server;
mod start;
pub use start::{prefork, spare_dir, Preforked};

/// Puts the (single-threaded) process `pid` (0: this one) under `SCHED_OTHER`: spare shims
/// start under `SCHED_IDLE`, and a pod's shim and containers must not.
#[allow(unsafe_code)]
pub(crate) fn normal_policy(pid: i32) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall with a valid sched_param.
    if unsafe { libc::sched_setscheduler(pid, libc::SCHED_OTHER, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Undoes what a shim pinned under its sandbox dir: the network namespace's bind mount (the
/// only one `serve_sandbox` makes), the socket and the pid file.
pub(crate) fn unpin(paths: &crate::layout::SandboxPaths) {
    let p = paths.ns("net");
    let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(paths.socket());
    let _ = std::fs::remove_file(paths.pid_file());
}

/// `unpin` for a shim whose sandbox dir may have been moved: the pin is unmounted through
/// `pin`, a descriptor of it; the files go if they are still where they were.
pub(crate) fn unpin_by_fd(pin: std::os::fd::OwnedFd, paths: &crate::layout::SandboxPaths) {
    use std::os::fd::AsRawFd;
    let through = format!("/proc/self/fd/{}", pin.as_raw_fd());
    let _ = nix::mount::umount2(through.as_str(), nix::mount::MntFlags::MNT_DETACH);
    drop(pin);
    unpin(paths);
}

/// Entry point for the `shim` subcommand; `args` excludes the program name and `shim`.
/// Returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("start") if args.len() == 3 => start::start(std::path::Path::new(&args[1]), &args[2]),
        Some("spare") if args.len() == 3 => start::spare(std::path::Path::new(&args[1]), &args[2]),
        Some("exec") if args.len() >= 5 && args[3] == "--" => {
            exec::exec_main(std::path::Path::new(&args[1]), &args[2], None, &args[4..])
        }
        Some("exec") if args.len() >= 7 && args[3] == "--tty" && args[5] == "--" => {
            let console = std::path::Path::new(&args[4]);
            exec::exec_main(
                std::path::Path::new(&args[1]),
                &args[2],
                Some(console),
                &args[6..],
            )
        }
        _ => {
            eprintln!("usage: shim start|spare <data_dir> <sandbox_id|spare_id> | shim exec <sandbox_dir> <container_id> [--tty <console_socket>] -- <argv>...");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn mounted_under(dir: &Path) -> bool {
        // This thread's mount namespace (the test's own, see below).
        std::fs::read_to_string("/proc/thread-self/mountinfo")
            .expect("read mountinfo")
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| Path::new(m).starts_with(dir))
    }

    #[test]
    fn a_pin_is_unmounted_through_its_descriptor_after_its_directory_moved() {
        if !crate::test_support::root_in_private_mount_ns() {
            return;
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonicalize");
        let paths = crate::layout::SandboxPaths {
            dir: root.join("sandbox"),
        };
        std::fs::create_dir_all(paths.ns_dir()).expect("create ns dir");
        let pin = paths.ns("net");
        std::fs::write(&pin, "").expect("create the pin");
        nix::mount::mount(
            Some("/proc/self/ns/net"),
            &pin,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind the net namespace");
        let fd = nix::fcntl::open(
            &pin,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .expect("open the pin");
        // The caller moves the directory (into its trash) before the shim unpins.
        std::fs::rename(&paths.dir, root.join("trashed")).expect("move the directory");
        assert!(mounted_under(&root));
        unpin_by_fd(fd, &paths);
        assert!(!mounted_under(&root), "the pin is still mounted");
        std::fs::remove_dir_all(root.join("trashed")).expect("remove");
    }
}
