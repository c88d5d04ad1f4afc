//! `k1s runtime exec [-t] [-i] ID CMD...`: runs a command in a running container through the
//! runtime's exec path (the shim's exec helper, as for kubectl exec) and exits with its code.

use std::io::{Read, Write};
use std::process::ExitCode;

use runtime::ExecOptions;
use tokio::io::AsyncWriteExt;

use super::resolve_container;

/// Puts the local terminal in raw mode while it lives (for `-t -i` on a terminal).
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enable() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !std::io::IsTerminal::is_terminal(&stdin) {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

/// The terminal size from `COLUMNS`/`LINES` when set (shells export them).
fn size_from_env() -> Option<(u16, u16)> {
    let get = |k: &str| std::env::var(k).ok()?.parse::<u16>().ok();
    Some((get("COLUMNS")?, get("LINES")?))
}

/// Copies our stdin into `sink` from a plain thread: a read of stdin cannot be cancelled, so
/// it must not hold up the async runtime's shutdown when the command ends first.
fn pump_stdin(mut sink: impl FnMut(&[u8]) -> bool + Send + 'static) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    sink(&[]);
                    return;
                }
                Ok(n) => {
                    if !sink(&buf[..n]) {
                        return;
                    }
                }
            }
        }
    });
}

fn code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255);
    ExitCode::from(code.clamp(0, 255) as u8)
}

pub async fn exec(
    rt: &runtime::Runtime,
    id: &str,
    cmd: &[String],
    tty: bool,
    interactive: bool,
) -> anyhow::Result<ExitCode> {
    let cid = resolve_container(rt, id).await?;
    let opts = ExecOptions {
        tty,
        stdin: interactive,
        size: if tty { size_from_env() } else { None },
    };
    let mut session = rt.exec(&cid, cmd, opts).await?;
    if let Some(pty) = session.pty.take() {
        let _raw = interactive.then(RawMode::enable).flatten();
        if interactive {
            let mut input = pty.try_clone()?;
            pump_stdin(move |b| !b.is_empty() && input.write_all(b).is_ok());
        }
        let mut output = pty;
        let copy_out = tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 8192];
            let mut stdout = std::io::stdout();
            // EIO once the command and the helper closed the terminal.
            while let Ok(n) = output.read(&mut buf) {
                if n == 0
                    || stdout
                        .write_all(&buf[..n])
                        .and_then(|()| stdout.flush())
                        .is_err()
                {
                    break;
                }
            }
        });
        let status = session.child.wait().await?;
        let _ = copy_out.await;
        return Ok(code_of(status));
    }
    let child = &mut session.child;
    if let Some(mut stdin) = child.stdin.take() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        pump_stdin(move |b| tx.blocking_send(b.to_vec()).is_ok() && !b.is_empty());
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if b.is_empty() || stdin.write_all(&b).await.is_err() {
                    break;
                }
            }
            // Dropping stdin closes the command's input.
        });
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let copy_out = async {
        if let Some(o) = out.as_mut() {
            let _ = tokio::io::copy(o, &mut tokio::io::stdout()).await;
        }
    };
    let copy_err = async {
        if let Some(e) = err.as_mut() {
            let _ = tokio::io::copy(e, &mut tokio::io::stderr()).await;
        }
    };
    let (status, (), ()) = tokio::join!(child.wait(), copy_out, copy_err);
    let _ = tokio::io::stdout().flush().await;
    Ok(code_of(status?))
}
