//! Talking to a shim from the async daemon: one request per connection, and a long-lived
//! subscription that forwards exit events into the runtime's broadcast channel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tracing::{debug, warn};

use crate::cri::ContainerExitEvent;
use crate::error::{Error, Result};
use crate::shim::proto::{Request, Response};

const CALL_TIMEOUT: Duration = Duration::from_secs(60);

async fn connect(sandbox: &str, socket: &Path) -> Result<UnixStream> {
    let addr = crate::layout::socket_addr(socket);
    let r = match &addr {
        Ok((_fd, p)) => UnixStream::connect(p).await,
        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
    };
    drop(addr);
    r.map_err(|source| Error::ShimUnreachable {
        sandbox: sandbox.to_string(),
        socket: socket.to_path_buf(),
        source,
    })
}

/// Sends one request and returns the raw response (which may carry `ok: false`).
pub async fn call(sandbox: &str, socket: &Path, req: &Request) -> Result<Response> {
    let fut = async {
        let s = connect(sandbox, socket).await?;
        exchange(sandbox, socket, s, req).await
    };
    within(CALL_TIMEOUT, sandbox, socket, fut).await
}

/// Sends `req` and does not wait for the answer: for a request whose effect the caller learns
/// otherwise (a `Shutdown` by the shim's exit). The shim reads a request that arrived before
/// the connection closed.
pub(crate) async fn send(sandbox: &str, socket: &Path, req: &Request) -> Result<()> {
    let fut = async {
        let mut s = connect(sandbox, socket).await?;
        write_request(sandbox, socket, &mut s, req).await
    };
    within(CALL_TIMEOUT, sandbox, socket, fut).await
}

/// Writes `req` as one line to `s`, a connection to the shim at `socket`.
async fn write_request(
    sandbox: &str,
    socket: &Path,
    s: &mut UnixStream,
    req: &Request,
) -> Result<()> {
    let mut line = serde_json::to_vec(req).map_err(|source| Error::EncodeJson {
        what: "shim request",
        source,
    })?;
    line.push(b'\n');
    s.write_all(&line)
        .await
        .map_err(|source| Error::ShimUnreachable {
            sandbox: sandbox.to_string(),
            socket: socket.to_path_buf(),
            source,
        })
}

/// Like `call`, on a connection the caller already has (`what` names it in errors), waiting
/// at most `wait`; after a successful answer the connection carries exit events (an `Adopt`
/// with `subscribe`), which are forwarded into `events` as `subscribe`'s are.
pub(crate) async fn call_then_forward(
    sandbox: &str,
    what: &Path,
    conn: UnixStream,
    req: &Request,
    wait: Duration,
    events: crate::daemon::ExitEvents,
) -> Result<Response> {
    let fut = async {
        let (resp, reader) = exchange_keeping(sandbox, what, conn, req).await?;
        if resp.ok {
            tokio::spawn(forward_events(sandbox.to_string(), reader, events));
        }
        Ok(resp)
    };
    within(wait, sandbox, what, fut).await
}

async fn within<T>(
    wait: Duration,
    sandbox: &str,
    socket: &Path,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(wait, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::ShimUnreachable {
            sandbox: sandbox.to_string(),
            socket: socket.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "shim did not answer"),
        }),
    }
}

/// One request line out, one response line back.
async fn exchange(sandbox: &str, socket: &Path, s: UnixStream, req: &Request) -> Result<Response> {
    exchange_keeping(sandbox, socket, s, req)
        .await
        .map(|(r, _)| r)
}

/// `exchange`, returning the connection too (with what it read past the answer).
async fn exchange_keeping(
    sandbox: &str,
    socket: &Path,
    mut s: UnixStream,
    req: &Request,
) -> Result<(Response, BufReader<UnixStream>)> {
    let unreachable = |source: std::io::Error| Error::ShimUnreachable {
        sandbox: sandbox.to_string(),
        socket: socket.to_path_buf(),
        source,
    };
    write_request(sandbox, socket, &mut s, req).await?;
    let mut reader = BufReader::new(s);
    let mut resp = String::new();
    reader.read_line(&mut resp).await.map_err(unreachable)?;
    if resp.is_empty() {
        return Err(unreachable(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "shim closed the connection",
        )));
    }
    let r = serde_json::from_str::<Response>(&resp).map_err(|source| Error::DecodeJson {
        what: "shim response",
        path: socket.to_path_buf(),
        source,
    })?;
    Ok((r, reader))
}

/// Like `call`, but `ok: false` becomes `Error::Shim`.
pub async fn call_ok(sandbox: &str, socket: &Path, req: &Request, op: &str) -> Result<Response> {
    let r = call(sandbox, socket, req).await?;
    if r.ok {
        Ok(r)
    } else {
        Err(Error::Shim {
            sandbox: sandbox.to_string(),
            op: op.to_string(),
            message: r.error.unwrap_or_default(),
        })
    }
}

/// Subscribes to the shim's exit events and forwards them until the shim goes away. Returns
/// once the request is sent: the shim serves connections in the order they arrive and reads
/// each request before the next, so the subscription is in place before any request sent
/// after this returns (a container created next cannot exit unseen). Its reply is read by
/// the forwarding task.
pub(crate) async fn subscribe(
    sandbox: String,
    socket: PathBuf,
    events: crate::daemon::ExitEvents,
) -> Result<()> {
    let mut s = connect(&sandbox, &socket).await?;
    write_request(&sandbox, &socket, &mut s, &Request::Subscribe).await?;
    let mut reader = BufReader::new(s);
    tokio::spawn(async move {
        let mut first = String::new();
        match reader.read_line(&mut first).await {
            Ok(n) if n > 0 => {}
            Ok(_) => {
                warn!(sandbox = %sandbox, "the shim closed the event subscription");
                return;
            }
            Err(e) => {
                warn!(sandbox = %sandbox, error = %e, "no answer to the event subscription");
                return;
            }
        }
        forward_events(sandbox, reader, events).await;
    });
    Ok(())
}

/// Publishes the exit events that come on `reader` (a subscription, its answer read) until
/// the shim goes away.
async fn forward_events(
    sandbox: String,
    reader: BufReader<UnixStream>,
    events: crate::daemon::ExitEvents,
) {
    let mut lines = reader.lines();
    loop {
        match lines.next_line().await {
            Ok(Some(l)) => match serde_json::from_str::<ContainerExitEvent>(&l) {
                Ok(ev) => {
                    debug!(sandbox = %sandbox, container = %ev.container_id, "container exited");
                    events.publish(ev);
                }
                Err(e) => warn!(sandbox = %sandbox, error = %e, "bad event from shim"),
            },
            Ok(None) => break,
            Err(e) => {
                warn!(sandbox = %sandbox, error = %e, "shim event stream failed");
                break;
            }
        }
    }
    debug!(sandbox = %sandbox, "shim event stream ended");
}

/// Opens an attach connection to container `id`: the shim's answer has been read, and the
/// stream carries attach frames from here on (`shim::proto::attach`).
pub async fn attach(sandbox: &str, socket: &Path, id: &str) -> Result<UnixStream> {
    use tokio::io::AsyncReadExt;
    let unreachable = |source: std::io::Error| Error::ShimUnreachable {
        sandbox: sandbox.to_string(),
        socket: socket.to_path_buf(),
        source,
    };
    let mut s = connect(sandbox, socket).await?;
    let mut line =
        serde_json::to_vec(&Request::Attach { id: id.to_string() }).map_err(|source| {
            Error::EncodeJson {
                what: "shim request",
                source,
            }
        })?;
    line.push(b'\n');
    s.write_all(&line).await.map_err(unreachable)?;
    // Byte by byte: frames may follow the answer line at once.
    let mut resp = Vec::new();
    let read = async {
        loop {
            let b = s.read_u8().await?;
            if b == b'\n' {
                return Ok::<_, std::io::Error>(());
            }
            resp.push(b);
            if resp.len() > 64 * 1024 {
                return Err(std::io::Error::other("answer too long"));
            }
        }
    };
    match tokio::time::timeout(CALL_TIMEOUT, read).await {
        Ok(r) => r.map_err(unreachable)?,
        Err(_) => {
            return Err(unreachable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "shim did not answer",
            )))
        }
    }
    let r: Response = serde_json::from_slice(&resp).map_err(|source| Error::DecodeJson {
        what: "shim response",
        path: socket.to_path_buf(),
        source,
    })?;
    if !r.ok {
        return Err(Error::Shim {
            sandbox: sandbox.to_string(),
            op: "attach".into(),
            message: r.error.unwrap_or_default(),
        });
    }
    Ok(s)
}
