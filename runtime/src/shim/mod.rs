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
