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
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::Cgroups;
use crate::container::spec::ContainerSpec;
use crate::cri::{ContainerExitEvent, ContainerId, ContainerState, PodSandboxConfig, SandboxId};
use crate::cri::{REASON_COMPLETED, REASON_ERROR, REASON_OOM_KILLED};
use crate::image::store::write_atomic;
use crate::layout::SandboxPaths;
use crate::shim::log::LogStream;
use crate::shim::proto::{Request, Response};

pub(crate) struct Stream {
    pub fd: OwnedFd,
    pub log: LogStream,
}

pub(crate) struct Ctr {
    pub spec: ContainerSpec,
    pub state: ContainerState,
    pub pid: Option<Pid>,
    pub start_w: Option<OwnedFd>,
    pub exec_err_r: Option<OwnedFd>,
    pub streams: Vec<Stream>,
    pub log: Option<File>,
    pub oom_before: u64,
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
            config: record.config,
            handler: record.handler_bin,
            cgroups: Cgroups::detect(),
            containers: BTreeMap::new(),
            listener,
            sigfd,
            subscribers: Vec::new(),
            exit: None,
        })
    }

    pub fn run(mut self) -> i32 {
        eprintln!(
            "shim {} serving sandbox {} (pod {}/{})",
            std::process::id(),
            self.sandbox_id,
            self.config.namespace,
            self.config.name
        );
        loop {
            if let Some(code) = self.exit {
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
                        keys.push((id.clone(), i));
                    }
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => {
                        eprintln!("poll: {e}");
                        return 1;
                    }
                }
                let hit = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                let streams: Vec<(String, usize)> = fds[2..]
                    .iter()
                    .zip(keys)
                    .filter(|(f, _)| hit(f))
                    .map(|(_, k)| k)
                    .collect();
                (hit(&fds[0]), hit(&fds[1]), streams)
            };
            for (id, i) in ready_streams.into_iter().rev() {
                self.pump(&id, i);
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
            Ok(n) => s.log.feed(&buf[..n], &mut c.log),
            Err(_) => {}
        }
    }

    fn drain_streams(c: &mut Ctr) {
        let mut buf = [0u8; 65536];
        for s in &mut c.streams {
            let _ = nix::fcntl::fcntl(
                &s.fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            while let Ok(n) = nix::unistd::read(&s.fd, &mut buf) {
                if n == 0 {
                    break;
                }
                s.log.feed(&buf[..n], &mut c.log);
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
        let oom = self.cgroups.oom_kills(&c.spec.cgroup) > c.oom_before;
        let reason = if oom && (code == 137 || signaled) {
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
                if let Err(e) = write_atomic(&path, &b) {
                    eprintln!("persist state of {id}: {e}");
                }
            }
            Err(e) => eprintln!("encode state of {id}: {e}"),
        }
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
            self.subscribers.push(conn);
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
            Request::Shutdown => self.shutdown(),
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
        match self.cgroups.remove(&cg) {
            Ok(()) => Response::ok(),
            Err(e) => Response::err(e.to_string()),
        }
    }

    fn shutdown(&mut self) -> Response {
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
                let _ = self.cgroups.remove(&c.spec.cgroup);
            }
        }
        for ns in ["net", "ipc", "uts"] {
            let p = self.paths.ns(ns);
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&p);
        }
        let _ = std::fs::remove_file(self.paths.socket());
        let _ = std::fs::remove_file(self.paths.pid_file());
        self.exit = Some(0);
        Response::ok()
    }
}
