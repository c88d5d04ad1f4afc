//! `shim start`: daemonise, create and pin the pod namespaces, open the socket, then hand
//! over to the serve loop. The first process only waits for "ready" from its forked child and
//! exits, so the daemon's `Command` returns quickly and the shim is nobody's child but init's
//! (or an outer subreaper's): killing the daemon, even with SIGKILL, leaves it running.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, unshare, CloneFlags, CpuSet};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use crate::cri::NetMode;
use crate::layout::{SandboxPaths, SandboxRecord};
use crate::shim::proto::{Request, Response};
use crate::shim::server::Shim;

/// `shim start <data_dir> <sandbox_id>`: a shim for a sandbox whose record is written.
pub fn start(data_dir: &Path, sandbox_id: &str) -> i32 {
    let paths = SandboxPaths::new(data_dir, sandbox_id);
    let record = match read_record(&paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    daemonize(|mut ready| {
        let own_net = record.config.net == NetMode::Pod;
        let shim = isolate(&paths.shim_log(), own_net)
            .and_then(|sigfd| serve_sandbox(&paths, sandbox_id, &record, sigfd));
        match shim {
            Ok(shim) => run_shim(shim, ready),
            Err(e) => {
                let _ = ready.write_all(e.as_bytes());
                1
            }
        }
    })
}

/// `shim spare <data_dir> <spare_id>`: a shim started ahead of need, with fresh network, IPC
/// and UTS namespaces, that waits under `spares/<spare_id>/` for one `Adopt` of a sandbox
/// whose record is written (pod network only), then becomes that sandbox's shim. The daemon
/// keeps one ready so that a new pod skips the start of a process (exec of the binary,
/// dynamic loading, namespace creation: 5-7 ms, most of a sandbox's start).
pub fn spare(data_dir: &Path, spare_id: &str) -> i32 {
    let dir = spare_dir(data_dir, spare_id);
    daemonize(|mut ready| {
        let setup = isolate(&dir.join("shim.log"), true).and_then(|sigfd| {
            let listener = listen(&dir.join("shim.sock"))?;
            std::fs::write(dir.join("shim.pid"), std::process::id().to_string())
                .map_err(|e| format!("write pid file: {e}"))?;
            Ok((sigfd, listener))
        });
        let (sigfd, listener) = match setup {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.write_all(e.as_bytes());
                let _ = std::fs::remove_dir_all(&dir);
                return 1;
            }
        };
        let _ = ready.write_all(format!("OK {}", std::process::id()).as_bytes());
        drop(ready);
        wait_for_adoption(data_dir, &dir, listener, sigfd)
    })
}

/// A spare shim forked by a single-threaded command ahead of need (`prefork`), reached through
/// one end of a socket pair rather than a socket on disk.
#[derive(Debug)]
pub struct Preforked {
    pub conn: UnixStream,
    /// The middle process of the double fork, exited or about to: reaped by `reap`.
    middle: nix::unistd::Pid,
}

impl Preforked {
    /// Reaps the middle process of the double fork (gone long before the shim is needed).
    pub(crate) fn reap(&self) {
        let _ = nix::sys::wait::waitpid(self.middle, None);
    }
}

/// For a command that is about to run one sandbox (`k1s runtime run`): forks a spare shim now,
/// while the caller has no thread yet, so that the shim is prepared (new session, namespaces)
/// while the caller starts up, and no second exec of the binary is needed. The shim is
/// detached (a grandchild, reparented at once) and waits on the returned connection for one
/// `Adopt` (which names the runtime's data directory: the caller may fork before it has read
/// its command line) or `Shutdown`; it exits when the connection closes unused. None when the
/// fork failed (the caller starts a shim the usual way).
///
/// Must be called before the process starts any thread.
#[allow(unsafe_code)]
pub fn prefork() -> Option<Preforked> {
    let (ours, theirs) = UnixStream::pair().ok()?;
    let others = OtherCpus::new();
    // SAFETY: the caller guarantees this process has a single thread, so the child may run
    // arbitrary code after fork.
    match unsafe { fork() } {
        // The caller goes on at once: the shim's pid comes with its answer to `Adopt`, and the
        // middle process is reaped then. Waiting here for the middle's exit and the shim's
        // pid cost the caller 0.2-0.3 ms.
        Ok(ForkResult::Parent { child }) => {
            // The middle process, and so the shim it forks, start on another CPU.
            if let Some(o) = &others {
                o.send(child);
            }
            drop(theirs);
            Some(Preforked {
                conn: ours,
                middle: child,
            })
        }
        Ok(ForkResult::Child) => {
            drop(ours);
            // SAFETY: still single-threaded. The middle process exits at once, so the shim is
            // reparented and never becomes a zombie of the caller.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    if let Some(o) = &others {
                        o.restore();
                    }
                    std::process::exit(preforked_main(theirs))
                }
                // SAFETY: _exit skips the caller's exit handlers and buffered output.
                _ => unsafe { libc::_exit(0) },
            }
        }
        Err(_) => None,
    }
}

/// The other CPUs this process may run on, to start a forked child there.
///
/// A forked child is queued on its parent's CPU when no other CPU looks idle, and a KVM guest
/// reports its halted vCPUs as preempted, so they never look idle to the scheduler: the child
/// then waits until its parent blocks or uses up its slice. The pre-forked shim waited that
/// way 0.8-0.9 ms (p50) for its first instruction while `runtime run` started up (2-core VM),
/// and the sandbox then waited for the shim. Sent to another CPU, it starts within 0.3 ms.
struct OtherCpus {
    /// The mask the process had, for the child to take back at once.
    all: CpuSet,
    others: CpuSet,
}

impl OtherCpus {
    /// None when this process may run on one CPU only.
    fn new() -> Option<OtherCpus> {
        let all = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let me = sched_getcpu().ok()?;
        let mut others = CpuSet::new();
        let mut any = false;
        for cpu in (0..CpuSet::count()).filter(|c| *c != me) {
            if all.is_set(cpu).unwrap_or(false) && others.set(cpu).is_ok() {
                any = true;
            }
        }
        any.then_some(OtherCpus { all, others })
    }

    /// Moves the process `pid` (a fresh child, not run yet) off this CPU.
    fn send(&self, pid: Pid) {
        let _ = sched_setaffinity(pid, &self.others);
    }

    /// In the child: the mask the parent had, so that neither the shim nor its containers
    /// stay bound to the CPUs they started on.
    fn restore(&self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.all);
    }
}

fn preforked_main(mut conn: UnixStream) -> i32 {
    // Its command line stays the caller's (`k1s runtime run ...`); `ps -o comm` tells.
    let _ = nix::sys::prctl::set_name(c"k1s-shim");
    let sigfd = match isolate(Path::new("/dev/null"), true) {
        Ok(s) => s,
        Err(e) => {
            reply(&mut conn, &Response::err(e));
            return 1;
        }
    };
    match read_request(&conn) {
        None => 0, // closed unused
        Some(Ok(Request::Adopt {
            sandbox,
            runtime_dir: Some(data_dir),
            subscribe,
        })) => become_shim(&data_dir, &sandbox, sigfd, conn, subscribe),
        Some(Ok(Request::Shutdown { .. })) => {
            reply(&mut conn, &Response::ok());
            0
        }
        Some(other) => {
            reply(&mut conn, &not_for_a_spare(other));
            1
        }
    }
}

/// One request line from `conn`; None when it closed (or broke) before sending one.
fn read_request(conn: &UnixStream) -> Option<Result<Request, serde_json::Error>> {
    use std::io::BufRead;
    let mut line = String::new();
    let n = std::io::BufReader::new(conn.try_clone().ok()?)
        .read_line(&mut line)
        .ok()?;
    (n > 0).then(|| serde_json::from_str(&line))
}

fn reply(conn: &mut UnixStream, r: &Response) {
    if let Ok(mut out) = serde_json::to_vec(r) {
        out.push(b'\n');
        let _ = conn.write_all(&out);
    }
}

/// The answer of a spare to what it does not serve.
fn not_for_a_spare(req: Result<Request, serde_json::Error>) -> Response {
    match req {
        Ok(_) => Response::err("a spare shim serves no sandbox yet"),
        Err(e) => Response::err(format!("bad request: {e}")),
    }
}

/// A spare takes the sandbox `sandbox` (the `Adopt` on `conn`), answers, and serves it until
/// it exits; or answers the error and ends. With `subscribe`, `conn` then carries its events.
fn become_shim(
    data_dir: &Path,
    sandbox: &str,
    sigfd: SignalFd,
    mut conn: UnixStream,
    subscribe: bool,
) -> i32 {
    let paths = SandboxPaths::new(data_dir, sandbox);
    match adopt(&paths, sandbox, sigfd) {
        Ok(mut shim) => {
            reply(&mut conn, &Response::ok());
            if subscribe {
                shim.add_subscriber(conn);
            }
            shim.start_leaving_daemon_cgroup();
            shim.run()
        }
        Err(e) => {
            reply(&mut conn, &Response::err(e));
            1
        }
    }
}

/// Where spare shim `id` lives.
pub fn spare_dir(data_dir: &Path, id: &str) -> std::path::PathBuf {
    crate::layout::spares_dir(data_dir).join(id)
}

/// How often an idle spare checks that its directory still exists (`K1S_SPARE_CHECK_MS`
/// overrides, for tests).
const SPARE_CHECK_MS: u16 = 60_000;

fn spare_check_ms() -> u16 {
    std::env::var("K1S_SPARE_CHECK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|ms| *ms > 0)
        .unwrap_or(SPARE_CHECK_MS)
}

/// The spare's loop: answers pings, exits on `Shutdown`, and on `Adopt` takes the sandbox and
/// runs as its shim. Its pages are dropped after a while, as an idle shim's are. A spare whose
/// directory is gone (its data dir was deleted, or a runtime removed it without reaching the
/// spare) can never be adopted: it notices within a check interval and exits.
fn wait_for_adoption(data_dir: &Path, dir: &Path, listener: UnixListener, sigfd: SignalFd) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let check_ms = spare_check_ms();
    let mut busy = true;
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::from(if busy {
            2000u16.min(check_ms)
        } else {
            check_ms
        });
        match poll(&mut fds, timeout) {
            Ok(0) => {
                if !dir.join("shim.sock").exists() {
                    eprintln!("spare directory {} is gone: exiting", dir.display());
                    return 0;
                }
                if busy {
                    crate::memory::release_idle_pages();
                    busy = false;
                }
                continue;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                eprintln!("poll: {e}");
                let _ = std::fs::remove_dir_all(dir);
                return 1;
            }
        }
        let Ok((mut conn, _)) = listener.accept() else {
            continue;
        };
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        match read_request(&conn) {
            None => {}
            Some(Ok(Request::Ping)) => reply(&mut conn, &Response::ok()),
            Some(Ok(Request::Shutdown { .. })) => {
                let _ = std::fs::remove_dir_all(dir);
                reply(&mut conn, &Response::ok());
                return 0;
            }
            Some(Ok(Request::Adopt {
                sandbox, subscribe, ..
            })) => {
                // Started under SCHED_IDLE (`daemon::spare`, which also restores the policy
                // before it asks): the pod's shim and containers get the normal policy.
                if let Err(e) = crate::shim::normal_policy(0) {
                    eprintln!("restore the scheduling policy: {e}");
                }
                // Spent either way: a failed adoption may have changed the namespaces.
                drop(listener);
                let _ = std::fs::remove_dir_all(dir);
                return become_shim(data_dir, &sandbox, sigfd, conn, subscribe);
            }
            Some(other) => reply(&mut conn, &not_for_a_spare(other)),
        }
    }
}

/// Takes over the sandbox at `paths` from a spare: its namespaces become the pod's.
fn adopt(paths: &SandboxPaths, sandbox_id: &str, sigfd: SignalFd) -> Result<Shim, String> {
    let record = read_record(paths)?;
    if record.config.net != NetMode::Pod {
        return Err("a spare shim only serves sandboxes with a pod network".to_string());
    }
    redirect_stdio(&paths.shim_log())?;
    let shim = serve_sandbox(paths, sandbox_id, &record, sigfd);
    if shim.is_err() {
        // The daemon starts a shim of its own for the sandbox: leave it a clean directory.
        crate::shim::unpin(paths);
    }
    shim
}

fn read_record(paths: &SandboxPaths) -> Result<SandboxRecord, String> {
    std::fs::read(paths.config())
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| format!("read sandbox record {}: {e}", paths.config().display()))
}

/// Forks: the child runs `child` with the write end of the ready pipe (it writes `OK <pid>`
/// or an error there) and exits with its result; this process waits for that message, prints
/// the pid and returns 0, or prints the error and returns 1.
#[allow(unsafe_code)]
fn daemonize(child: impl FnOnce(std::fs::File) -> i32) -> i32 {
    let (r, w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipe: {e}");
            return 1;
        }
    };
    // SAFETY: this process was exec'd by the daemon to run the shim and has started no
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
            std::process::exit(child(std::fs::File::from(w)))
        }
        Err(e) => {
            eprintln!("fork: {e}");
            1
        }
    }
}

/// Reports the shim ready and serves until it exits.
fn run_shim(mut shim: Shim, mut ready: std::fs::File) -> i32 {
    let _ = ready.write_all(format!("OK {}", std::process::id()).as_bytes());
    // Closed before the mover forks: the waiting parent reads to EOF.
    drop(ready);
    shim.start_leaving_daemon_cgroup();
    shim.run()
}

/// Detaches from the daemon (new session, stdio to `log`), becomes the child subreaper and
/// enters new IPC namespace (and network and UTS ones when `own_net`); returns the signalfd
/// through which SIGCHLD arrives.
fn isolate(log: &Path, own_net: bool) -> Result<SignalFd, String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    redirect_stdio(log)?;
    // The shim leaves the daemon's cgroup right after (`Shim::start_leaving_daemon_cgroup`).
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("set child subreaper: {e}"))?;
    let mut flags = CloneFlags::CLONE_NEWIPC;
    if own_net {
        flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
    }
    unshare(flags).map_err(|e| format!("unshare pod namespaces: {e}"))?;
    if own_net {
        loopback_up()?;
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| format!("block SIGCHLD: {e}"))?;
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))
}

/// Makes the namespaces this process is in the sandbox's: sets the hostname, pins the network
/// namespace under the sandbox dir (its path for the pod network, which stays valid while the
/// pod is torn down), opens the socket and writes the pid file. The IPC and UTS namespaces
/// are reached through this process (`/proc/<shim>/ns/...`) by whoever needs them while it
/// serves: pinning them too cost two bind mounts at the start of every pod and two unmounts
/// at its end, about 0.1 ms each way.
fn serve_sandbox(
    paths: &SandboxPaths,
    sandbox_id: &str,
    record: &SandboxRecord,
    sigfd: SignalFd,
) -> Result<Shim, String> {
    let config = &record.config;
    std::fs::set_permissions(&paths.dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod sandbox dir: {e}"))?;
    if config.net == NetMode::Pod {
        let hostname = if config.hostname.is_empty() {
            &config.name
        } else {
            &config.hostname
        };
        nix::unistd::sethostname(hostname).map_err(|e| format!("sethostname {hostname:?}: {e}"))?;
        std::fs::create_dir_all(paths.ns_dir()).map_err(|e| format!("create ns dir: {e}"))?;
        let target = paths.ns("net");
        std::fs::File::create(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
        let src = "/proc/self/ns/net";
        mount(
            Some(src),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind {src} to {}: {e}", target.display()))?;
    }
    let listener = listen(&paths.socket())?;
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

/// A non-blocking listener on a fresh socket at `sock`, for the owner only.
fn listen(sock: &Path) -> Result<UnixListener, String> {
    let _ = std::fs::remove_file(sock);
    let (_dir, addr) =
        crate::layout::socket_addr(sock).map_err(|e| format!("open socket dir: {e}"))?;
    let listener =
        UnixListener::bind(&addr).map_err(|e| format!("bind {}: {e}", sock.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket nonblocking: {e}"))?;
    let _ = std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600));
    Ok(listener)
}

fn redirect_stdio(log: &Path) -> Result<(), String> {
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
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
