//! `exec` over WebSocket with the Kubernetes channel protocol (`v5.channel.k8s.io`, and
//! `v4.channel.k8s.io` for older clients): binary messages whose first byte is the channel —
//! 0 stdin, 1 stdout, 2 stderr, 3 status (a `Status` object at the end), 4 terminal resize
//! (`{"Width":W,"Height":H}`), and in v5 255 = "close channel N" (`ff 00`: stdin is at EOF).

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{cri_error, status, Ctx, Params};
use crate::cri::{ExecRequest, ExecStreams, RunState};

pub(crate) const V5: &str = "v5.channel.k8s.io";
pub(crate) const V4: &str = "v4.channel.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

pub(crate) async fn exec(
    State(ctx): State<Ctx>,
    Path((_ns, _pod, container)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    serve(ctx, container, q, ws, false).await
}

/// `attach`: the same protocol on the container's own stdio; no exit status is reported
/// (the container keeps running when the client detaches).
pub(crate) async fn attach(
    State(ctx): State<Ctx>,
    Path((_ns, _pod, container)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    serve(ctx, container, q, ws, true).await
}

async fn serve(
    ctx: Ctx,
    container: String,
    q: Option<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    attach: bool,
) -> Response {
    let p = Params::parse(q.as_deref());
    let Some(id) = p.get("containerID").map(str::to_string) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "containerID is required",
        );
    };
    let command = p.all("command");
    if command.is_empty() && !attach {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "you must specify at least 1 command",
        );
    }
    match ctx.cri.container(&id).await {
        Ok(c) if matches!(c.state, RunState::Running { .. }) => {}
        Ok(_) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("container not found (\"{container}\")"),
            )
        }
        Err(e) => return cri_error(e),
    }
    let Ok(ws) = ws else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Upgrade request required: exec and attach are served over WebSocket (v5.channel.k8s.io)",
        );
    };
    let tty = p.flag("tty");
    let mut req = ExecRequest {
        command: command.clone(),
        tty,
        stdin: p.flag("stdin"),
        size: None,
    };
    let want = Wanted {
        stdout: p.flag("stdout"),
        stderr: p.flag("stderr") && !tty,
    };
    ws.protocols([V5, V4])
        .on_upgrade(move |mut socket| async move {
            let v5 = socket.protocol().is_some_and(|p| p == V5);
            // A terminal gets the client's size before the command starts (kubectl sends it
            // first thing): `stty size` or a full-screen program would otherwise see 0x0.
            let mut early = Vec::new();
            if tty && !attach {
                req.size = first_size(&mut socket, &mut early).await;
            }
            let started = if attach {
                ctx.cri.attach(&id).await
            } else {
                ctx.cri.exec(&id, req).await
            };
            match started {
                Ok(streams) => run(socket, early, streams, want, v5, command, attach).await,
                Err(e) => {
                    let msg = serde_json::json!({
                        "metadata": {}, "status": "Failure", "reason": "InternalError",
                        "message": format!("error executing command in container: {e}"),
                    });
                    finish(socket, msg).await;
                }
            }
        })
}

/// How long a terminal exec waits for the client's first resize message before it starts
/// the command without a size (a client without a terminal size queue never sends one).
const FIRST_SIZE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Reads client messages until the first terminal size (returned as columns, rows) or
/// `FIRST_SIZE_WAIT`; other messages read meanwhile (early stdin) are kept in `early`.
async fn first_size(socket: &mut WebSocket, early: &mut Vec<Message>) -> Option<(u16, u16)> {
    let deadline = tokio::time::Instant::now() + FIRST_SIZE_WAIT;
    loop {
        let m = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Ok(Some(Ok(m))) => m,
            _ => return None,
        };
        if let Message::Binary(b) = &m {
            if let Some((&RESIZE, rest)) = b.split_first() {
                if let Ok(s) = serde_json::from_slice::<Size>(rest) {
                    return Some((s.width, s.height));
                }
            }
        }
        let close = matches!(m, Message::Close(_));
        early.push(m);
        if close {
            return None;
        }
    }
}

#[derive(Clone, Copy)]
struct Wanted {
    stdout: bool,
    stderr: bool,
}

async fn finish(mut socket: WebSocket, status: serde_json::Value) {
    let mut msg = vec![ERROR];
    msg.extend_from_slice(status.to_string().as_bytes());
    let _ = socket.send(Message::Binary(msg.into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
}

/// The `Status` the client turns into its exit code.
pub(crate) fn exit_status(code: i32, command: &[String]) -> serde_json::Value {
    if code == 0 {
        return serde_json::json!({"metadata": {}, "status": "Success"});
    }
    serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// Pumps one output stream into channel `ch` of the socket.
fn pump(
    mut r: crate::cri::Reader,
    ch: u8,
    forward: bool,
    out: mpsc::Sender<Message>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if !forward {
                        continue;
                    }
                    buf[0] = ch;
                    if out
                        .send(Message::Binary(buf[..=n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    })
}

#[derive(serde::Deserialize)]
struct Size {
    #[serde(rename = "Width")]
    width: u16,
    #[serde(rename = "Height")]
    height: u16,
}

async fn run(
    socket: WebSocket,
    early: Vec<Message>,
    streams: ExecStreams,
    want: Wanted,
    v5: bool,
    command: Vec<String>,
    attach: bool,
) {
    let ExecStreams {
        mut stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = streams;
    let (mut sink, source) = socket.split();
    // Messages read before the command started come first.
    let mut source = futures::stream::iter(early.into_iter().map(Ok)).chain(source);
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut pumps = vec![pump(stdout, STDOUT, want.stdout, out_tx.clone())];
    if let Some(e) = stderr {
        pumps.push(pump(e, STDERR, want.stderr, out_tx.clone()));
    }
    // Client messages: stdin, resize, close signals. Ends when the client goes away.
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = source.next().await {
            let data = match m {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&ch, rest)) = data.split_first() else {
                continue;
            };
            match ch {
                STDIN => {
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(rest).await.is_err() || w.flush().await.is_err() {
                            stdin = None;
                        }
                    }
                }
                RESIZE => {
                    if let Ok(s) = serde_json::from_slice::<Size>(rest) {
                        resize(s.width, s.height);
                    }
                }
                CLOSE if v5 && rest.first() == Some(&STDIN) => {
                    if let Some(mut w) = stdin.take() {
                        let _ = w.shutdown().await;
                    }
                }
                _ => {}
            }
        }
        true
    });
    let code = tokio::select! {
        c = exit => c.unwrap_or(1),
        // The client left: dropping `exit` kills the process.
        _ = async {
            let mut reader = reader;
            let _ = (&mut reader).await;
        } => {
            for p in pumps {
                p.abort();
            }
            return;
        }
    };
    for p in pumps {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), p).await;
    }
    let mut msg = vec![ERROR];
    let code = if attach { 0 } else { code };
    msg.extend_from_slice(exit_status(code, &command).to_string().as_bytes());
    let _ = out_tx.send(Message::Binary(msg.into())).await;
    let _ = out_tx
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    drop(out_tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_like_upstream() {
        let s = exit_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(
            s["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(exit_status(0, &[])["status"], "Success");
    }
}
