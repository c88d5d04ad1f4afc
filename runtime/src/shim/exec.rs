//! `shim exec <sandbox_dir> <cid> -- argv`: run a command inside a running container.
//! Spawned by the daemon per exec (so the daemon never forks); single-threaded. It becomes
//! non-dumpable before entering the container (CVE-2019-5736), joins the container's
//! cgroup and namespaces, forks into the PID namespace, drops to the container identity and
//! execs. Its own stdio is inherited by the command; it exits with the command's code.

use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use crate::cgroups::Cgroups;
use crate::container::init::{finish_and_exec, reset_signals};
use crate::container::spec::ContainerSpec;
use crate::cri::ContainerState;

const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

#[allow(unsafe_code)]
pub fn exec_main(sandbox_dir: &Path, cid: &str, argv: &[String]) -> i32 {
    let _ = nix::sys::prctl::set_dumpable(false);
    let cdir = sandbox_dir.join("containers").join(cid);
    let read = |f: &str| std::fs::read(cdir.join(f)).map_err(|e| format!("read {f}: {e}"));
    let spec: ContainerSpec = match read("config.json").and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let state: ContainerState = match read("state.json").and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let ContainerState::Running { pid, .. } = state else {
        return fail(&format!("container {cid} is not running"));
    };
    // Open every namespace before entering any: after the mount namespace, /proc is theirs.
    let mut fds = Vec::new();
    for (name, flag) in NAMESPACES {
        let p = format!("/proc/{pid}/ns/{name}");
        match nix::fcntl::open(p.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fds.push((fd, flag)),
            Err(e) => return fail(&format!("open {p}: {e}")),
        }
    }
    if let Err(e) = Cgroups::detect().add_pid(&spec.cgroup, std::process::id() as i32) {
        return fail(&e.to_string());
    }
    for (fd, flag) in &fds {
        if let Err(e) = setns(fd, *flag) {
            return fail(&format!("setns {flag:?}: {e}"));
        }
    }
    drop(fds);
    // SAFETY: this helper process is single-threaded (exec'd for this purpose), so the child
    // may run arbitrary code; setns(CLONE_NEWPID) only takes effect for children.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            reset_signals();
            let msg = finish_and_exec(&spec, argv);
            eprintln!("{msg}");
            std::process::exit(if msg.contains("not found") || msg.contains("no such file") { 127 } else { 126 });
        }
        Ok(ForkResult::Parent { child }) => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, c)) => return c,
                Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return fail(&format!("wait: {e}")),
            }
        },
        Err(e) => fail(&format!("fork: {e}")),
    }
}

fn fail(msg: &str) -> i32 {
    eprintln!("k1s exec: {msg}");
    126
}
