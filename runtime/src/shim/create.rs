//! Creating and starting a container from the shim: cgroup, pipes, `clone(NEWNS|NEWPID)`,
//! join the cgroup, wait for the child's rootfs to be ready; on start, release the child and
//! learn from a close-on-exec pipe whether exec succeeded (else `StartError`, exit 128).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use chrono::Utc;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, Pid};

use crate::container::init::{child_main, InitPipes, START_ERROR_EXIT};
use crate::container::spec::ContainerSpec;
use crate::cri::{ContainerState, REASON_START_ERROR};
use crate::shim::log::{self, LogStream};
use crate::shim::proto::Response;
use crate::shim::server::{Ctr, Shim, Stream};

const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
const STACK_SIZE: usize = 1 << 20;

/// Reads `fd` until EOF or `timeout`; `None` on timeout.
fn read_to_eof(fd: OwnedFd, timeout: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    let mut f = std::fs::File::from(fd);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut pfd = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::from(ms)) {
            Ok(0) => return None,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
        let mut buf = [0u8; 4096];
        match f.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Some(String::from_utf8_lossy(&out).into_owned()),
        }
    }
}

struct Pipes {
    ready: (OwnedFd, OwnedFd),
    start: (OwnedFd, OwnedFd),
    exec_err: (OwnedFd, OwnedFd),
    out: (OwnedFd, OwnedFd),
    err: (OwnedFd, OwnedFd),
}

fn pipes() -> Result<Pipes, String> {
    let p = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    Ok(Pipes {
        ready: p()?,
        start: p()?,
        exec_err: p()?,
        out: p()?,
        err: p()?,
    })
}

impl Shim {
    pub(crate) fn create(&mut self, id: &str) -> Result<ContainerState, String> {
        if self.containers.contains_key(id) {
            return Err(format!("container {id} already exists"));
        }
        let path = self.paths.container_config(id);
        let spec: ContainerSpec = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| format!("read {}: {e}", path.display()))?;
        if let Some(bin) = self.handler.clone() {
            self.leave_daemon_cgroup();
            return self.create_oci(id, spec, &bin);
        }
        self.cgroups
            .create(&spec.cgroup, &spec.resources)
            .map_err(|e| e.to_string())?;
        let oom_before = self.cgroups.oom_kills(&spec.cgroup);
        let cgroup = self
            .cgroups
            .self_move_files(&spec.cgroup)
            .map_err(|e| e.to_string())?;
        let p = pipes()?;
        let null = nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("open /dev/null: {e}"))?;
        let Pipes {
            ready,
            start,
            exec_err,
            out,
            err,
        } = p;
        // stdio: a pty (tty), else pipes for stdout/stderr and, with `stdin`, for stdin.
        let (child_in, child_out, child_err, out_r, err_r, input, pty) = if spec.config.tty {
            let pt = nix::pty::openpty(None, None).map_err(|e| format!("openpty: {e}"))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("dup pty: {e}"));
            let input = if spec.config.stdin {
                Some(dup(&pt.master)?)
            } else {
                None
            };
            (
                dup(&pt.slave)?,
                dup(&pt.slave)?,
                pt.slave,
                dup(&pt.master)?,
                None,
                input,
                Some(pt.master),
            )
        } else if spec.config.stdin {
            let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
            let _ = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            (r, out.1, err.1, out.0, Some(err.0), Some(w), None)
        } else {
            (null, out.1, err.1, out.0, Some(err.0), None, None)
        };
        let mut child_pipes = Some(InitPipes {
            ready_w: ready.1,
            start_r: start.0,
            exec_err_w: exec_err.1,
            stdin: child_in,
            stdout: child_out,
            stderr: child_err,
            cgroup,
        });
        let etc = self.paths.etc();
        let spec_for_child = spec.clone();
        let mut stack = vec![0u8; STACK_SIZE];
        let cb = Box::new(move || match child_pipes.take() {
            Some(pipes) => child_main(&spec_for_child, &etc, pipes),
            None => 1,
        });
        // The child moves itself into its cgroup, then sets up its mounts. The child's ends
        // are in `cb`, which the parent no longer needs.
        let pid = clone_child(cb, &mut stack)?;
        let mnt_ns = nix::fcntl::open(
            format!("/proc/{pid}/ns/mnt").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok();
        self.leave_daemon_cgroup();
        match read_to_eof(ready.0, SETUP_TIMEOUT) {
            Some(msg) if msg == "OK" => {}
            other => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                let _ = self.cgroups.remove(&spec.cgroup);
                let msg = other.unwrap_or_else(|| "timed out".into());
                return Err(format!(
                    "set up container: {}",
                    msg.trim_start_matches("ERR ")
                ));
            }
        }
        let log_file = match &spec.log_path {
            Some(p) => Some(log::open(p).map_err(|e| format!("open log {}: {e}", p.display()))?),
            None => None,
        };
        for fd in std::iter::once(&out_r).chain(err_r.as_ref()) {
            let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        let mut streams = vec![Stream {
            fd: out_r,
            log: LogStream::new("stdout"),
        }];
        if let Some(fd) = err_r {
            streams.push(Stream {
                fd,
                log: LogStream::new("stderr"),
            });
        }
        let ctr = Ctr {
            spec,
            input,
            pty,
            attachers: Vec::new(),
            state: ContainerState::Created,
            pid: Some(pid),
            start_w: Some(start.1),
            exec_err_r: Some(exec_err.0),
            streams,
            log: log_file,
            oom_before,
            mnt_ns,
        };
        self.containers.insert(id.to_string(), ctr);
        self.persist(id);
        Ok(ContainerState::Created)
    }

    pub(crate) fn start(&mut self, id: &str) -> Response {
        if let Some(bin) = self.handler.clone() {
            return self.start_oci(id, &bin);
        }
        let Some(c) = self.containers.get_mut(id) else {
            return Response::err(format!("container {id} not found"));
        };
        let (Some(start_w), Some(err_r), Some(pid)) =
            (c.start_w.take(), c.exec_err_r.take(), c.pid)
        else {
            return Response::err(format!("container {id} is not in created state"));
        };
        let started_at = Utc::now();
        if nix::unistd::write(&start_w, b"s").is_err() {
            return Response::err(format!("container {id}: init process is gone"));
        }
        drop(start_w);
        let msg = read_to_eof(err_r, SETUP_TIMEOUT)
            .unwrap_or_else(|| "timed out waiting for exec".into());
        if msg.is_empty() {
            c.state = ContainerState::Running {
                pid: pid.as_raw() as u32,
                started_at,
            };
            self.persist(id);
            return Response {
                state: Some(c_state(self, id)),
                ..Response::ok()
            };
        }
        c.state = ContainerState::Exited {
            exit_code: START_ERROR_EXIT,
            reason: REASON_START_ERROR.to_string(),
            message: msg.clone(),
            started_at: None,
            finished_at: Utc::now(),
        };
        self.persist(id);
        self.publish(id);
        Response {
            state: Some(c_state(self, id)),
            ..Response::err(msg)
        }
    }
}

fn c_state(shim: &Shim, id: &str) -> ContainerState {
    shim.containers
        .get(id)
        .map(|c| c.state.clone())
        .unwrap_or(ContainerState::Created)
}

#[allow(unsafe_code)]
fn clone_child(cb: Box<dyn FnMut() -> isize + '_>, stack: &mut [u8]) -> Result<Pid, String> {
    // SAFETY: the shim is single-threaded, so the child (a copy of our address space without
    // CLONE_VM) can run arbitrary Rust code; `stack` outlives the call in the parent and the
    // child gets its own copy-on-write copy. SIGCHLD makes it a normal reapable child.
    unsafe {
        nix::sched::clone(
            cb,
            stack,
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID,
            Some(Signal::SIGCHLD as i32),
        )
    }
    .map_err(|e| format!("clone container init: {e}"))
}
