//! Attaching to a running container's stdio through its shim (`kubectl attach`, `run -i`):
//! the shim's frames are split into plain streams for the caller.

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};

use crate::cri::ContainerId;
use crate::daemon::{shim_client, Runtime};
use crate::error::Result;
use crate::shim::proto::attach;

/// An attach session. Read `stdout` (and `stderr` without a tty); write `stdin` (when the
/// container has one; dropping it closes the container's stdin unless it has a tty); send
/// terminal sizes on `resize`. `exit` resolves with the container's exit code when it ends,
/// or fails when the session ends first. Dropping the session detaches; the container runs on.
pub struct AttachSession {
    pub stdin: Option<DuplexStream>,
    pub stdout: DuplexStream,
    pub stderr: Option<DuplexStream>,
    pub resize: mpsc::UnboundedSender<(u16, u16)>,
    pub exit: oneshot::Receiver<i32>,
}

const PIPE: usize = 64 * 1024;

impl Runtime {
    /// Attaches to container `id` (it must be running and have been started by the built-in
    /// runtime).
    pub async fn attach(&self, id: &ContainerId) -> Result<AttachSession> {
        let spec = self.spec(id)?;
        let sock = self.paths(&spec.sandbox_id).socket();
        let conn = shim_client::attach(&spec.sandbox_id, &sock, &id.0).await?;
        let (mut from_shim, mut to_shim) = conn.into_split();
        let tty = spec.config.tty;
        let (stdout, mut out_w) = tokio::io::duplex(PIPE);
        let (stderr, mut err_w) = tokio::io::duplex(PIPE);
        let (exit_tx, exit) = oneshot::channel();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 32 * 1024];
            let mut exit_tx = Some(exit_tx);
            loop {
                let n = match from_shim.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let Ok(frames) = attach::take_frames(&mut buf) else {
                    break;
                };
                for (kind, payload) in frames {
                    match kind {
                        attach::STDOUT => {
                            let _ = out_w.write_all(&payload).await;
                        }
                        attach::STDERR => {
                            let _ = err_w.write_all(&payload).await;
                        }
                        attach::CLOSE if payload.len() == 4 => {
                            let code = i32::from_be_bytes([
                                payload[0], payload[1], payload[2], payload[3],
                            ]);
                            if let Some(tx) = exit_tx.take() {
                                let _ = tx.send(code);
                            }
                        }
                        _ => {}
                    }
                }
            }
            // Dropping the writers ends the caller's streams.
        });
        let (stdin, mut in_r) = tokio::io::duplex(PIPE);
        let (resize, mut resizes) = mpsc::unbounded_channel::<(u16, u16)>();
        let has_stdin = spec.config.stdin;
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 32 * 1024];
            let mut input_open = has_stdin;
            let mut resize_open = true;
            while input_open || resize_open {
                let frame = tokio::select! {
                    r = in_r.read(&mut chunk), if input_open => match r {
                        Ok(0) | Err(_) => {
                            input_open = false;
                            if tty {
                                continue;
                            }
                            attach::frame(attach::CLOSE, &[])
                        }
                        Ok(n) => attach::frame(attach::STDIN, &chunk[..n]),
                    },
                    r = resizes.recv(), if resize_open => match r {
                        Some((cols, rows)) => {
                            let mut p = cols.to_be_bytes().to_vec();
                            p.extend_from_slice(&rows.to_be_bytes());
                            attach::frame(attach::RESIZE, &p)
                        }
                        None => {
                            resize_open = false;
                            continue;
                        }
                    },
                };
                if to_shim.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        Ok(AttachSession {
            stdin: has_stdin.then_some(stdin),
            stdout,
            stderr: (!tty).then_some(stderr),
            resize,
            exit,
        })
    }
}
