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
pub fn exec_main(sandbox_dir: &Path, cid: &str, console: Option<&Path>, argv: &[String]) -> i32 {
    let _ = nix::sys::prctl::set_dumpable(false);
    let cdir = sandbox_dir.join("containers").join(cid);
    let read = |f: &str| std::fs::read(cdir.join(f)).map_err(|e| format!("read {f}: {e}"));
    let spec: ContainerSpec = match read("config.json")
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let state: ContainerState = match read("state.json")
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let ContainerState::Running { pid, .. } = state else {
        return fail(&format!("container {cid} is not running"));
    };
    // Connect to the console socket while its path is still visible (host mount ns).
    let console = match console.map(connect_console).transpose() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    // Open every namespace before entering any: after the mount namespace, /proc is theirs.
    let mut fds = Vec::new();
    for (name, flag) in NAMESPACES {
        let p = format!("/proc/{pid}/ns/{name}");
        match nix::fcntl::open(
            p.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fds.push((fd, flag)),
            Err(e) => return fail(&format!("open {p}: {e}")),
        }
    }
    // Single-threaded: the cheap self-move (see `Cgroups::self_move_files`).
    if let Err(e) = Cgroups::detect().add_self(&spec.cgroup) {
        return fail(&e.to_string());
    }
    for (fd, flag) in &fds {
        if let Err(e) = setns(fd, *flag) {
            return fail(&format!("setns {flag:?}: {e}"));
        }
    }
    drop(fds);
    // With a tty: a pty of the container's own devpts instance (so `tty` inside works), its
    // master handed to the daemon over the console socket, as runc does.
    let slave = match console {
        Some(sock) => match container_pty(&sock) {
            Ok(slave) => Some(slave),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    // SAFETY: this helper process is single-threaded (exec'd for this purpose), so the child
    // may run arbitrary code; setns(CLONE_NEWPID) only takes effect for children.
    let mut slave = slave;
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            reset_signals();
            if let Some(slave) = &slave {
                if let Err(e) = controlling_tty(slave) {
                    eprintln!("k1s exec: {e}");
                    std::process::exit(126);
                }
            }
            let msg = finish_and_exec(&spec, argv);
            eprintln!("{msg}");
            std::process::exit(
                if msg.contains("not found") || msg.contains("no such file") {
                    127
                } else {
                    126
                },
            );
        }
        Ok(ForkResult::Parent { child }) => loop {
            drop(slave.take());
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

fn connect_console(path: &Path) -> Result<std::os::unix::net::UnixStream, String> {
    let (_dir, addr) = crate::layout::socket_addr(path)
        .map_err(|e| format!("console socket {}: {e}", path.display()))?;
    std::os::unix::net::UnixStream::connect(&addr)
        .map_err(|e| format!("connect console socket {}: {e}", path.display()))
}

/// Opens a pty in the (already entered) container mount namespace, sends the master over
/// `sock` and returns the slave.
fn container_pty(sock: &std::os::unix::net::UnixStream) -> Result<std::os::fd::OwnedFd, String> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("open /dev/ptmx: {e}"))?;
    grantpt(&master)
        .and_then(|_| unlockpt(&master))
        .map_err(|e| format!("unlock pty: {e}"))?;
    let name = ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open {name}: {e}"))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"pty")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("send pty master: {e}"))?;
    // Wait until the daemon has sized the terminal, so the command never sees 0x0.
    let mut go = [0u8; 1];
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let _ = std::io::Read::read(&mut &*sock, &mut go);
    Ok(slave)
}

/// New session with `slave` as stdio and controlling terminal.
#[allow(unsafe_code)]
fn controlling_tty(slave: &std::os::fd::OwnedFd) -> Result<(), String> {
    nix::unistd::dup2_stdin(slave)
        .and_then(|_| nix::unistd::dup2_stdout(slave))
        .and_then(|_| nix::unistd::dup2_stderr(slave))
        .map_err(|e| format!("dup2 pty: {e}"))?;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and touches no memory.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(format!(
            "set controlling tty: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
