//! Running commands in a running container: `exec_sync` (collect output, timeout) for
//! probes, and `exec` (streams, optional pty) for the kubelet's exec server. Both spawn the
//! `shim exec` helper; the daemon never forks or enters namespaces itself.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::cri::{ContainerId, ContainerState, ExecResult};
use crate::daemon::container::state_name;
use crate::daemon::Runtime;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Allocate a pty: the process gets it as stdin/stdout/stderr and controlling terminal.
    pub tty: bool,
    /// Without a tty: give the process a stdin pipe (else /dev/null).
    pub stdin: bool,
    /// Initial terminal size (columns, rows).
    pub size: Option<(u16, u16)>,
}

/// A running exec. Without a tty use `child.stdin/stdout/stderr`; with one, read and write
/// `pty` (the master side) and call `resize`. Dropping the session kills the helper.
pub struct ExecSession {
    pub child: tokio::process::Child,
    pub pty: Option<std::fs::File>,
}

impl ExecSession {
    /// Resizes the pty (a no-op without one).
    pub fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        match &self.pty {
            Some(pty) => resize_pty(pty, cols, rows),
            None => Ok(()),
        }
    }
}

/// Sets the window size of a pty master (e.g. one taken out of an `ExecSession`).
#[allow(unsafe_code)]
pub fn resize_pty(pty: &std::fs::File, cols: u16, rows: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which points to a live local.
    if unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(Error::Io {
            op: "resize pty",
            path: "pty".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

impl Runtime {
    async fn running_helper(
        &self,
        id: &ContainerId,
        console: Option<&Path>,
        cmd: &[String],
    ) -> Result<(tokio::process::Command, String)> {
        let spec = self.spec(id)?;
        let state = self.state(&spec).await?;
        if !matches!(state, ContainerState::Running { .. }) {
            return Err(Error::InvalidContainerState {
                op: "exec in",
                id: id.0.clone(),
                state: state_name(&state),
            });
        }
        let mut c = tokio::process::Command::new(&self.cfg.shim_exe);
        c.arg("shim")
            .arg("exec")
            .arg(self.paths(&spec.sandbox_id).dir)
            .arg(&id.0);
        if let Some(sock) = console {
            c.arg("--tty").arg(sock);
        }
        c.arg("--").args(cmd).kill_on_drop(true);
        Ok((c, spec.sandbox_id.clone()))
    }

    /// Starts `cmd` in the container with streams for the caller.
    pub async fn exec(
        &self,
        id: &ContainerId,
        cmd: &[String],
        opts: ExecOptions,
    ) -> Result<ExecSession> {
        if opts.tty {
            let spec = self.spec(id)?;
            let sock = self
                .paths(&spec.sandbox_id)
                .dir
                .join(format!("console-{}.sock", crate::daemon::random_id()));
            let (_dir, addr) = crate::layout::socket_addr(&sock)
                .map_err(Error::io("open console socket dir", &sock))?;
            let listener = std::os::unix::net::UnixListener::bind(&addr)
                .map_err(Error::io("bind console socket", &sock))?;
            drop(_dir);
            let (mut c, sandbox) = self.running_helper(id, Some(&sock), cmd).await?;
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let spawned = c.spawn();
            let received = match spawned {
                Ok(child) => {
                    let r = crate::daemon::blocking_wait("receive pty", move || {
                        receive_master(listener)
                    })
                    .await;
                    r.map(|m| (child, m))
                }
                Err(e) => Err(Error::StartShim {
                    exe: self.cfg.shim_exe.clone(),
                    sandbox,
                    reason: e.to_string(),
                }),
            };
            let _ = std::fs::remove_file(&sock);
            let (child, (master, conn)) = received?;
            let session = ExecSession {
                child,
                pty: Some(std::fs::File::from(master)),
            };
            if let Some((cols, rows)) = opts.size {
                session.resize(cols, rows)?;
            }
            std::io::Write::write_all(&mut &conn, b"g")
                .map_err(Error::io("release exec helper", &sock))?;
            Ok(session)
        } else {
            let (mut c, sandbox) = self.running_helper(id, None, cmd).await?;
            let spawn_err = |e: std::io::Error| Error::StartShim {
                exe: self.cfg.shim_exe.clone(),
                sandbox: sandbox.clone(),
                reason: e.to_string(),
            };
            c.stdin(if opts.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let child = c.spawn().map_err(spawn_err)?;
            Ok(ExecSession { child, pty: None })
        }
    }

    /// Runs `cmd` in the running container and collects its output, killing the helper on
    /// timeout.
    pub async fn exec_sync(
        &self,
        id: &ContainerId,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult> {
        let (mut c, sandbox) = self.running_helper(id, None, cmd).await?;
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::StartShim {
                exe: self.cfg.shim_exe.clone(),
                sandbox: sandbox.clone(),
                reason: e.to_string(),
            })?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => Ok(ExecResult {
                exit_code: out.status.code().unwrap_or(255),
                stdout: out.stdout,
                stderr: out.stderr,
            }),
            Ok(Err(e)) => Err(Error::StartShim {
                exe: self.cfg.shim_exe.clone(),
                sandbox,
                reason: e.to_string(),
            }),
            Err(_) => Err(Error::ExecTimeout {
                id: id.0.clone(),
                cmd: cmd.to_vec(),
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }
}

/// Accepts the helper's connection and takes the pty master it sends (SCM_RIGHTS).
#[allow(unsafe_code)]
fn receive_master(
    listener: std::os::unix::net::UnixListener,
) -> Result<(OwnedFd, std::os::unix::net::UnixStream)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let io = |e: std::io::Error| Error::Io {
        op: "accept console connection",
        path: "console socket".into(),
        source: e,
    };
    // The helper may die before connecting: never wait forever.
    listener.set_nonblocking(true).map_err(io)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io(e)),
        }
    };
    conn.set_nonblocking(false).map_err(io)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut buf = [0u8; 16];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(Error::sys("receive pty master", "console socket"))?;
    for c in msg
        .cmsgs()
        .map_err(Error::sys("read control message", "console socket"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor in our table for us
                // (SCM_RIGHTS); nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(*fd) };
                return Ok((fd, conn));
            }
        }
    }
    Err(Error::Io {
        op: "receive pty master",
        path: "console socket".into(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "exec helper sent no pty (see its stderr)",
        ),
    })
}
