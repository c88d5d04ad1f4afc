//! The shim's single-threaded serve loop: poll over the socket, SIGCHLD (signalfd) and the
//! containers' stdout/stderr pipes. Requests are handled one at a time; container exits are
//! reaped here (the shim is their only reaper), recorded atomically in `state.json` and
//! pushed to subscribers. Container creation lives in `create`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use chrono::Utc;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::Cgroups;
use crate::container::spec::ContainerSpec;
use crate::cri::{ContainerExitEvent, ContainerId, ContainerState, PodSandboxConfig, SandboxId};
use crate::cri::{REASON_COMPLETED, REASON_ERROR, REASON_OOM_KILLED};
use crate::image::store::write_replace;
use crate::layout::SandboxPaths;
use crate::shim::log::LogStream;
use crate::shim::proto::{Request, Response};

enum Ready {
    Stream(usize),
    Attacher(usize),
}

/// Writes all of `data` to a non-blocking fd, waiting up to a second for room each time it is
/// full; false when the peer is gone or too slow.
fn write_all_fd(fd: &impl AsFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                if !matches!(poll(&mut p, PollTimeout::from(1000u16)), Ok(n) if n > 0) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// Sets a pty's window size.
#[allow(unsafe_code)]
fn set_winsize(pty: &OwnedFd, cols: u16, rows: u16) -> bool {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which points to a live local.
    unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) == 0 }
}

pub(crate) struct Stream {
    pub fd: OwnedFd,
    pub log: LogStream,
}

/// A client attached to a container's stdio (`Request::Attach`).
pub(crate) struct Attacher {
    pub conn: UnixStream,
    pub buf: Vec<u8>,
}

pub(crate) struct Ctr {
    pub spec: ContainerSpec,
    /// Where attached clients' input goes: a pipe to the container's stdin, or the pty master.
    pub input: Option<OwnedFd>,
    /// The pty master when the container has a terminal (for resizes).
    pub pty: Option<OwnedFd>,
    pub attachers: Vec<Attacher>,
    pub state: ContainerState,
    pub pid: Option<Pid>,
    pub start_w: Option<OwnedFd>,
    pub exec_err_r: Option<OwnedFd>,
    pub streams: Vec<Stream>,
    pub log: Option<File>,
    pub oom_before: u64,
    /// The container's mount namespace, held so that its init's exit does not wait for the
    /// namespace's mounts to go (they go when this is dropped: once the shim is idle, or with
    /// the container).
    pub mnt_ns: Option<OwnedFd>,
}

pub struct Shim {
    pub(crate) paths: SandboxPaths,
    pub(crate) sandbox_id: String,
    pub(crate) config: PodSandboxConfig,
    pub(crate) handler: Option<std::path::PathBuf>,
    pub(crate) cgroups: Cgroups,
    pub(crate) containers: BTreeMap<String, Ctr>,
    listener: UnixListener,
    sigfd: SignalFd,
    subscribers: Vec<UnixStream>,
    exit: Option<i32>,
    /// The network namespace's pin, unmounted after the reply to a `Shutdown` that keeps the
    /// cgroups (see `shutdown`).
    unpin_after_reply: Option<OwnedFd>,
    /// The pod's cgroup; the shim moves itself into `<pod>/shim` once.
    pod_cgroup: String,
    left_daemon_cgroup: bool,
    /// The short-lived child that moves the shim into its pod's cgroup, while it runs.
    mover: Option<Pid>,
}

impl Shim {
    pub fn new(
        paths: SandboxPaths,
        sandbox_id: String,
        record: crate::layout::SandboxRecord,
        listener: UnixListener,
        sigfd: SignalFd,
    ) -> Result<Shim, String> {
        Ok(Shim {
            paths,
            sandbox_id,
            pod_cgroup: record.cgroup.clone(),
            left_daemon_cgroup: false,
            mover: None,
            config: record.config,
            handler: record.handler_bin,
            cgroups: Cgroups::detect(),
            containers: BTreeMap::new(),
            listener,
            sigfd,
            subscribers: Vec::new(),
            exit: None,
            unpin_after_reply: None,
        })
    }

    /// Moves the shim out of the daemon's cgroup into `<pod>/shim`, once: a service manager
    /// that kills the daemon's cgroup on restart must not take the pods with it, and the shim
    /// is accounted to its pod. On cgroup v1 the single-threaded shim moves itself through
    /// `tasks`, which is quick (see `Cgroups::self_move_files`). On v2 (without
    /// `favordynmods`) the move waits for an RCU grace period after a quiet spell, 10-20 ms on
    /// a busy machine, and moves that come while one waits, or right after, share it. So there
    /// a forked child makes the move while the shim serves: the wait overlaps the daemon's
    /// preparation of the first container.
    pub(crate) fn start_leaving_daemon_cgroup(&mut self) {
        if !self.cgroups.is_v2() {
            self.leave_daemon_cgroup();
            return;
        }
        let shim = std::process::id() as i32;
        // SAFETY: the shim is single-threaded, so the child may run arbitrary code; it only
        // makes the move and leaves with _exit (no destructors, no flushing of buffers it
        // shares with the shim).
        #[allow(unsafe_code)]
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                let code = if self.join_pod_cgroup(Some(shim)) {
                    0
                } else {
                    1
                };
                // SAFETY: _exit ends this child at once, which is all it has left to do.
                unsafe { libc::_exit(code) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                self.mover = Some(child);
                self.left_daemon_cgroup = true;
            }
            // The first container's creation makes the move instead.
            Err(e) => eprintln!("fork the cgroup mover: {e}"),
        }
    }

    /// The move of `start_leaving_daemon_cgroup`, made here and now by the shim itself if
    /// that one did not start or failed.
    pub(crate) fn leave_daemon_cgroup(&mut self) {
        if !self.left_daemon_cgroup {
            self.left_daemon_cgroup = true;
            self.join_pod_cgroup(None);
        }
    }

    /// Moves the shim process `shim` (None: this single-threaded process, by the quick
    /// self-move) into its cgroup in the pod's (`Cgroups::shim_cgroup`); false if it stays
    /// where it is.
    fn join_pod_cgroup(&self, shim: Option<i32>) -> bool {
        let (own, made) = self.cgroups.shim_cgroup(&self.pod_cgroup);
        let created = match made {
            true => self.cgroups.create(&own, &Default::default()),
            false => Ok(()),
        };
        match created.and_then(|_| match shim {
            Some(pid) => self.cgroups.add_pid(&own, pid),
            None => self.cgroups.add_self(&own),
        }) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("shim stays in the daemon's cgroup: {e}");
                false
            }
        }
    }

    pub fn run(mut self) -> i32 {
        /// How long the shim waits without work before it drops its idle pages.
        const IDLE_RELEASE_MS: u16 = 2000;
        eprintln!(
            "shim {} serving sandbox {} (pod {}/{})",
            std::process::id(),
            self.sandbox_id,
            self.config.namespace,
            self.config.name
        );
        // Start-up and every burst of work leave code pages resident that the idle loop does
        // not need; they are dropped once the shim has been idle for a while.
        let mut busy = true;
        loop {
            if let Some(code) = self.exit {
                if let Some(pin) = self.unpin_after_reply.take() {
                    crate::shim::unpin_by_fd(pin, &self.paths);
                }
                return code;
            }
            let (listen_ready, sig_ready, ready_streams) = {
                let mut fds = vec![
                    PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN),
                ];
                let mut keys = Vec::new();
                for (id, c) in &self.containers {
                    for (i, s) in c.streams.iter().enumerate() {
                        fds.push(PollFd::new(s.fd.as_fd(), PollFlags::POLLIN));
                        keys.push((id.clone(), Ready::Stream(i)));
                    }
                    for (i, a) in c.attachers.iter().enumerate() {
                        fds.push(PollFd::new(a.conn.as_fd(), PollFlags::POLLIN));
                        keys.push((id.clone(), Ready::Attacher(i)));
                    }
                }
                let timeout = if busy {
                    PollTimeout::from(IDLE_RELEASE_MS)
                } else {
                    PollTimeout::NONE
                };
                match poll(&mut fds, timeout) {
                    Ok(0) if busy => {
                        for c in self.containers.values_mut().filter(|c| c.pid.is_none()) {
                            c.mnt_ns = None;
                        }
                        crate::memory::release_idle_pages();
                        busy = false;
                        continue;
                    }
                    Ok(_) | Err(Errno::EINTR) => busy = true,
                    Err(e) => {
                        eprintln!("poll: {e}");
                        return 1;
                    }
                }
                let hit = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                let streams: Vec<(String, Ready)> = fds[2..]
                    .iter()
                    .zip(keys)
                    .filter(|(f, _)| hit(f))
                    .map(|(_, k)| k)
                    .collect();
                (hit(&fds[0]), hit(&fds[1]), streams)
            };
            // In reverse so removing one entry does not shift the others' indexes.
            for (id, r) in ready_streams.into_iter().rev() {
                match r {
                    Ready::Stream(i) => self.pump(&id, i),
                    Ready::Attacher(i) => self.attach_input(&id, i),
                }
            }
            if sig_ready {
                while let Ok(Some(_)) = self.sigfd.read_signal() {}
                self.reap();
            }
            if listen_ready {
                while let Ok((conn, _)) = self.listener.accept() {
                    self.serve(conn);
                }
            }
        }
    }

    /// Handles what an attached client sent: stdin bytes, resizes, close of stdin; drops the
    /// attacher when it goes away.
    fn attach_input(&mut self, id: &str, i: usize) {
        use crate::shim::proto::attach;
        let Some(c) = self.containers.get_mut(id) else {
            return;
        };
        let Some(a) = c.attachers.get_mut(i) else {
            return;
        };
        let mut buf = [0u8; 65536];
        let mut gone = match std::io::Read::read(&mut a.conn, &mut buf) {
            Ok(0) => true,
            Ok(n) => {
                a.buf.extend_from_slice(&buf[..n]);
                false
            }
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ),
        };
        let frames = match attach::take_frames(&mut a.buf) {
            Ok(f) => f,
            Err(_) => {
                gone = true; // a client that breaks the framing is dropped
                Vec::new()
            }
        };
        for (kind, payload) in frames {
            match kind {
                attach::STDIN => {
                    if let Some(fd) = &c.input {
                        if !write_all_fd(fd, &payload) {
                            c.input = None;
                        }
                    }
                }
                attach::RESIZE if payload.len() == 4 => {
                    if let Some(pty) = &c.pty {
                        let cols = u16::from_be_bytes([payload[0], payload[1]]);
                        let rows = u16::from_be_bytes([payload[2], payload[3]]);
                        let _ = set_winsize(pty, cols, rows);
                    }
                }
                attach::CLOSE if c.pty.is_none() => c.input = None,
                _ => {}
            }
        }
        if gone {
            c.attachers.remove(i);
            // stdinOnce: the container's stdin ends with the first attach session.
            if c.spec.config.stdin_once && c.pty.is_none() {
                c.input = None;
            }
        }
    }

    /// Sends output to the container's attached clients (dropping the ones that do not keep up).
    fn forward(attachers: &mut Vec<Attacher>, stream: usize, data: &[u8]) {
        if attachers.is_empty() {
            return;
        }
        let kind = if stream == 0 {
            crate::shim::proto::attach::STDOUT
        } else {
            crate::shim::proto::attach::STDERR
        };
        let f = crate::shim::proto::attach::frame(kind, data);
        attachers.retain_mut(|a| write_all_fd(&a.conn, &f));
    }

    /// Moves available output of one stream into its log; drops the stream at EOF.
    fn pump(&mut self, id: &str, i: usize) {
        let Some(c) = self.containers.get_mut(id) else {
            return;
        };
        let mut buf = [0u8; 65536];
        let Some(s) = c.streams.get_mut(i) else {
            return;
        };
        match nix::unistd::read(&s.fd, &mut buf) {
            Ok(0) | Err(Errno::EBADF) | Err(Errno::EIO) => {
                s.log.finish(&mut c.log);
                c.streams.remove(i);
            }
            Ok(n) => {
                s.log.feed(&buf[..n], &mut c.log);
                Self::forward(&mut c.attachers, i, &buf[..n]);
            }
            Err(_) => {}
        }
    }

    fn drain_streams(c: &mut Ctr) {
        let mut buf = [0u8; 65536];
        for (i, s) in c.streams.iter_mut().enumerate() {
            let _ = nix::fcntl::fcntl(
                &s.fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            while let Ok(n) = nix::unistd::read(&s.fd, &mut buf) {
                if n == 0 {
                    break;
                }
                s.log.feed(&buf[..n], &mut c.log);
                Self::forward(&mut c.attachers, i, &buf[..n]);
            }
        }
    }

    /// Reaps every exited child; records exits of container init processes.
    pub(crate) fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(s) => s,
            };
            let (pid, code, signaled) = match status {
                WaitStatus::Exited(p, c) => (p, c, false),
                WaitStatus::Signaled(p, s, _) => (p, 128 + s as i32, true),
                _ => continue,
            };
            if self.mover == Some(pid) {
                self.mover = None;
                // Failed: the next container's creation tries again.
                self.left_daemon_cgroup = code == 0;
                continue;
            }
            self.record_exit(pid, code, signaled);
        }
    }

    pub(crate) fn record_exit(&mut self, pid: Pid, code: i32, signaled: bool) {
        let Some((id, c)) = self.containers.iter_mut().find(|(_, c)| c.pid == Some(pid)) else {
            return;
        };
        c.pid = None;
        c.start_w = None;
        if matches!(c.state, ContainerState::Exited { .. }) {
            return; // StartError already recorded
        }
        Self::drain_streams(c);
        let started_at = match &c.state {
            ContainerState::Running { started_at, .. } => Some(*started_at),
            _ => None,
        };
        // Only a kill can be the OOM killer's: other exits skip reading the cgroup's count.
        let oom =
            (code == 137 || signaled) && self.cgroups.oom_kills(&c.spec.cgroup) > c.oom_before;
        let reason = if oom {
            REASON_OOM_KILLED
        } else if code == 0 {
            REASON_COMPLETED
        } else {
            REASON_ERROR
        };
        c.state = ContainerState::Exited {
            exit_code: code,
            reason: reason.to_string(),
            message: String::new(),
            started_at,
            finished_at: Utc::now(),
        };
        let last = crate::shim::proto::attach::frame(
            crate::shim::proto::attach::CLOSE,
            &code.to_be_bytes(),
        );
        for a in c.attachers.drain(..) {
            let _ = write_all_fd(&a.conn, &last);
        }
        c.input = None;
        c.pty = None;
        let id = id.clone();
        self.persist(&id);
        self.publish(&id);
    }

    /// Writes `state.json` atomically.
    pub(crate) fn persist(&self, id: &str) {
        let Some(c) = self.containers.get(id) else {
            return;
        };
        let path = self.paths.container_state(id);
        match serde_json::to_vec(&c.state) {
            Ok(b) => {
                if let Err(e) = write_replace(&path, &b) {
                    eprintln!("persist state of {id}: {e}");
                }
            }
            Err(e) => eprintln!("encode state of {id}: {e}"),
        }
    }

    /// Sends this shim's exit events to `conn` from now on (as to one that sent `Subscribe`).
    pub(crate) fn add_subscriber(&mut self, conn: UnixStream) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
        self.subscribers.push(conn);
    }

    pub(crate) fn publish(&mut self, id: &str) {
        let Some(c) = self.containers.get(id) else {
            return;
        };
        let ev = ContainerExitEvent {
            sandbox_id: SandboxId(self.sandbox_id.clone()),
            container_id: ContainerId(id.to_string()),
            state: c.state.clone(),
        };
        let Ok(mut line) = serde_json::to_vec(&ev) else {
            return;
        };
        line.push(b'\n');
        self.subscribers.retain_mut(|s| s.write_all(&line).is_ok());
    }

    fn serve(&mut self, conn: UnixStream) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let Ok(read_half) = conn.try_clone() else {
            return;
        };
        if BufReader::new(read_half).read_line(&mut line).is_err() {
            return;
        }
        if let Ok(Request::Attach { id }) = serde_json::from_str::<Request>(&line) {
            self.attach(&id, conn);
            return;
        }
        let (resp, keep) = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Subscribe) => (Response::ok(), true),
            Ok(req) => (self.handle(req), false),
            Err(e) => (Response::err(format!("bad request: {e}")), false),
        };
        let mut conn = conn;
        let Ok(mut out) = serde_json::to_vec(&resp) else {
            return;
        };
        out.push(b'\n');
        if conn.write_all(&out).is_ok() && keep {
            self.add_subscriber(conn);
        }
    }

    fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Ping | Request::Subscribe => Response::ok(),
            Request::Create { id } => self.create(&id).map_or_else(Response::err, |s| Response {
                state: Some(s),
                ..Response::ok()
            }),
            Request::Start { id } => self.start(&id),
            Request::Kill { id, signal } => self.kill(&id, signal),
            Request::Status { id } => match self.containers.get(&id) {
                Some(c) => Response {
                    state: Some(c.state.clone()),
                    ..Response::ok()
                },
                None => Response::err(format!("container {id} not found")),
            },
            Request::List => Response {
                containers: self
                    .containers
                    .iter()
                    .map(|(k, c)| (k.clone(), c.state.clone()))
                    .collect(),
                ..Response::ok()
            },
            Request::Delete { id } => self.delete(&id),
            Request::ReopenLog { id } => self.reopen_log(&id),
            Request::Shutdown { keep_cgroups } => self.shutdown(keep_cgroups),
            Request::Attach { .. } => Response::err("attach needs its own connection"),
            Request::Adopt { .. } => Response::err("this shim already serves a sandbox"),
        }
    }

    /// Keeps `conn` as an attached client of a running container.
    fn attach(&mut self, id: &str, mut conn: UnixStream) {
        let resp = match self.containers.get(id) {
            None => Response::err(format!("container {id} not found")),
            Some(c) if !matches!(c.state, ContainerState::Running { .. }) => {
                Response::err(format!("container {id} is not running"))
            }
            Some(_) if self.handler.is_some() => {
                Response::err("attach is not supported with an external OCI runtime")
            }
            Some(_) => Response::ok(),
        };
        let Ok(mut out) = serde_json::to_vec(&resp) else {
            return;
        };
        out.push(b'\n');
        if conn.write_all(&out).is_err() || !resp.ok {
            return;
        }
        let _ = conn.set_nonblocking(true);
        if let Some(c) = self.containers.get_mut(id) {
            c.attachers.push(Attacher {
                conn,
                buf: Vec::new(),
            });
        }
    }

    fn kill(&mut self, id: &str, signal: i32) -> Response {
        let Some(c) = self.containers.get(id) else {
            return Response::err(format!("container {id} not found"));
        };
        let Some(pid) = c.pid else {
            return Response {
                state: Some(c.state.clone()),
                ..Response::ok()
            };
        };
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(e) => return Response::err(format!("signal {signal}: {e}")),
        };
        match kill(pid, sig) {
            Ok(()) | Err(Errno::ESRCH) => Response {
                state: Some(c.state.clone()),
                ..Response::ok()
            },
            Err(e) => Response::err(format!("kill {pid} with {sig}: {e}")),
        }
    }

    fn reopen_log(&mut self, id: &str) -> Response {
        let Some(c) = self.containers.get_mut(id) else {
            return Response::err(format!("container {id} not found"));
        };
        let Some(path) = c.spec.log_path.clone() else {
            return Response::ok();
        };
        match crate::shim::log::open(&path) {
            Ok(f) => {
                c.log = Some(f);
                Response::ok()
            }
            Err(e) => Response::err(format!("reopen log {}: {e}", path.display())),
        }
    }

    fn delete(&mut self, id: &str) -> Response {
        let Some(c) = self.containers.get(id) else {
            return Response::ok();
        };
        if matches!(c.state, ContainerState::Running { .. }) {
            return Response::err(format!("container {id} is running"));
        }
        if let Some(pid) = c.pid {
            // Created but never started: it is blocked on the start pipe.
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        let cg = c.spec.cgroup.clone();
        let spec = c.spec.clone();
        self.cleanup_oci(id, &spec);
        self.containers.remove(id);
        match self.cgroups.remove_made(&cg, self.handler.is_some()) {
            Ok(()) => Response::ok(),
            Err(e) => Response::err(e.to_string()),
        }
    }

    /// Kills and reaps every container and removes their cgroups (unless `keep_cgroups`),
    /// unpins the namespaces; the loop then ends.
    fn shutdown(&mut self, keep_cgroups: bool) -> Response {
        let pids: Vec<Pid> = self.containers.values().filter_map(|c| c.pid).collect();
        for p in &pids {
            let _ = kill(*p, Signal::SIGKILL);
        }
        for p in pids {
            if let Ok(WaitStatus::Signaled(_, s, _)) = waitpid(p, None) {
                self.record_exit(p, 128 + s as i32, true);
            }
        }
        let ids: Vec<String> = self.containers.keys().cloned().collect();
        for id in ids {
            if let Some(c) = self.containers.get(&id) {
                self.cleanup_oci(&id, &c.spec);
                if !keep_cgroups {
                    let _ = self
                        .cgroups
                        .remove_made(&c.spec.cgroup, self.handler.is_some());
                }
            }
        }
        // A caller that keeps the cgroups waits for this shim's exit before it deletes the
        // sandbox directory (the trash's `WaitExit`), so the pin's unmount, which waits for an
        // RCU grace period (0.1 ms), can follow the reply; it goes through a descriptor, as the
        // directory may have been moved meanwhile.
        let pin = keep_cgroups
            .then(|| {
                nix::fcntl::open(
                    &self.paths.ns("net"),
                    OFlag::O_PATH | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()
            })
            .flatten();
        match pin {
            Some(fd) => self.unpin_after_reply = Some(fd),
            None => crate::shim::unpin(&self.paths),
        }
        self.exit = Some(0);
        Response::ok()
    }
}
