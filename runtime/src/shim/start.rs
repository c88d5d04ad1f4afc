//! `shim start`: daemonise, create and pin the pod namespaces, open the socket, then hand
//! over to the serve loop. The first process only waits for "ready" from its forked child and
//! exits, so the daemon's `Command` returns quickly and the shim is nobody's child but init's
//! (or an outer subreaper's): killing the daemon, even with SIGKILL, leaves it running.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{fork, pipe2, ForkResult};

use crate::cri::NetMode;
use crate::layout::{SandboxPaths, SandboxRecord};
use crate::shim::server::Shim;

#[allow(unsafe_code)]
pub fn start(data_dir: &Path, sandbox_id: &str) -> i32 {
    let paths = SandboxPaths::new(data_dir, sandbox_id);
    let record: SandboxRecord = match std::fs::read(paths.config())
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("read sandbox record {}: {e}", paths.config().display());
            return 1;
        }
    };
    let (r, w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipe: {e}");
            return 1;
        }
    };
    // SAFETY: this process was exec'd by the daemon to run `shim start` and has started no
    // threads (the caller must dispatch `shim` before creating any runtime), so the child
    // may run arbitrary code after fork.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => {
            drop(w);
            let mut msg = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut msg);
            match msg.strip_prefix("OK ") {
                Some(pid) => {
                    println!("{pid}");
                    0
                }
                None => {
                    eprintln!(
                        "{}",
                        if msg.is_empty() {
                            "shim exited during start-up"
                        } else {
                            &msg
                        }
                    );
                    1
                }
            }
        }
        Ok(ForkResult::Child) => {
            drop(r);
            let mut ready = std::fs::File::from(w);
            match prepare(&paths, sandbox_id, &record) {
                Ok(mut shim) => {
                    let _ = ready.write_all(format!("OK {}", std::process::id()).as_bytes());
                    // Closed before the mover forks: the waiting parent reads to EOF.
                    drop(ready);
                    shim.start_leaving_daemon_cgroup();
                    std::process::exit(shim.run());
                }
                Err(e) => {
                    let _ = ready.write_all(e.as_bytes());
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("fork: {e}");
            1
        }
    }
}

fn prepare(paths: &SandboxPaths, sandbox_id: &str, record: &SandboxRecord) -> Result<Shim, String> {
    let config = &record.config;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    redirect_stdio(paths)?;
    // The shim leaves the daemon's cgroup right after (`Shim::start_leaving_daemon_cgroup`).
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("set child subreaper: {e}"))?;
    std::fs::set_permissions(&paths.dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod sandbox dir: {e}"))?;
    let own_net = config.net == NetMode::Pod;
    let mut flags = CloneFlags::CLONE_NEWIPC;
    if own_net {
        flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
    }
    unshare(flags).map_err(|e| format!("unshare pod namespaces: {e}"))?;
    let mut pinned = vec!["ipc"];
    if own_net {
        let hostname = if config.hostname.is_empty() {
            &config.name
        } else {
            &config.hostname
        };
        nix::unistd::sethostname(hostname).map_err(|e| format!("sethostname {hostname:?}: {e}"))?;
        loopback_up()?;
        pinned.extend(["net", "uts"]);
    }
    std::fs::create_dir_all(paths.ns_dir()).map_err(|e| format!("create ns dir: {e}"))?;
    for ns in pinned {
        let target = paths.ns(ns);
        std::fs::File::create(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
        let src = format!("/proc/self/ns/{ns}");
        mount(
            Some(src.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind {src} to {}: {e}", target.display()))?;
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| format!("block SIGCHLD: {e}"))?;
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let sock = paths.socket();
    let _ = std::fs::remove_file(&sock);
    let (_dir, addr) =
        crate::layout::socket_addr(&sock).map_err(|e| format!("open socket dir: {e}"))?;
    let listener =
        UnixListener::bind(&addr).map_err(|e| format!("bind {}: {e}", sock.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket nonblocking: {e}"))?;
    let _ = std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600));
    std::fs::write(paths.pid_file(), std::process::id().to_string())
        .map_err(|e| format!("write pid file: {e}"))?;
    Shim::new(
        paths.clone(),
        sandbox_id.to_string(),
        record.clone(),
        listener,
        sigfd,
    )
}

fn redirect_stdio(paths: &SandboxPaths) -> Result<(), String> {
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.shim_log())
        .map_err(|e| format!("open shim log: {e}"))?;
    let log: OwnedFd = log.into();
    nix::unistd::dup2_stdin(&null).map_err(|e| format!("dup2 stdin: {e}"))?;
    nix::unistd::dup2_stdout(&log).map_err(|e| format!("dup2 stdout: {e}"))?;
    nix::unistd::dup2_stderr(&log).map_err(|e| format!("dup2 stderr: {e}"))?;
    Ok(())
}

#[allow(unsafe_code)]
fn loopback_up() -> Result<(), String> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("socket for lo: {e}"))?;
    // SAFETY: ifreq is plain old data for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes the flags union member of `req`, a valid
    // ifreq owned by this frame; the socket fd is live.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(format!("get lo flags: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel filled ifru_flags above; we only read and set that union member.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(format!("set lo up: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
