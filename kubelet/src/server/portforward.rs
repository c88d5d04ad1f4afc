//! Port-forward as kubectl speaks it: a SPDY/3.1 session, carried inside WebSocket binary
//! messages (subprotocol `SPDY/3.1+portforward.k8s.io`) or on a raw `Upgrade: SPDY/3.1`
//! connection. For each forwarded connection the client opens an error stream and a data
//! stream (headers `streamtype`, `port`, `requestid`); the data stream is joined to a TCP
//! connection to that port on the pod's loopback. When the pod side closes, the server ends
//! the data stream and then the error stream (kubectl waits for both).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::spdy::{self, Frame, HeaderCodec};
use super::{status, Ctx, Params};

pub(crate) const WS_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const STREAM_PROTOCOL: &str = "portforward.k8s.io";

pub(crate) async fn port_forward(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> Response {
    let p = Params::parse(q.as_deref());
    let Some(pod_uid) = p.get("podUID").map(str::to_string) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "podUID is required");
    };
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if upgrade == "websocket" {
        let mut parts = req.into_parts().0;
        let ws =
            match <WebSocketUpgrade as axum::extract::FromRequestParts<()>>::from_request_parts(
                &mut parts,
                &(),
            )
            .await
            {
                Ok(ws) => ws,
                Err(e) => return axum::response::IntoResponse::into_response(e),
            };
        return ws
            .protocols([WS_PROTOCOL])
            .on_upgrade(move |socket| async move { over_websocket(ctx, pod_uid, socket).await });
    }
    if upgrade.starts_with("spdy/3.1") {
        let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "the connection cannot be upgraded",
            );
        };
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(io) => {
                    let (r, w) = tokio::io::split(TokioIo::new(io));
                    session(ctx, pod_uid, r, w).await;
                }
                Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
            }
        });
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.insert(
            "X-Stream-Protocol-Version",
            HeaderValue::from_static(STREAM_PROTOCOL),
        );
        return resp;
    }
    status(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "Upgrade request required: port-forward needs SPDY/3.1 (raw or inside WebSocket)",
    )
}

/// SPDY bytes inside WebSocket messages (message boundaries mean nothing).
async fn over_websocket(ctx: Ctx, pod_uid: String, socket: WebSocket) {
    let (mut sink, mut source) = socket.split();
    let (near, far) = tokio::io::duplex(64 * 1024);
    let (mut far_r, mut far_w) = tokio::io::split(far);
    let inbound = tokio::spawn(async move {
        while let Some(Ok(m)) = source.next().await {
            match m {
                Message::Binary(b) if far_w.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = far_w.shutdown().await;
    });
    let outbound = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match far_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    let (r, w) = tokio::io::split(near);
    session(ctx, pod_uid, r, w).await;
    inbound.abort();
    let _ = outbound.await;
}

/// One forwarded connection: its two streams and the sender towards the pod's socket.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: u16,
    to_pod: Option<mpsc::UnboundedSender<Option<Vec<u8>>>>,
}

/// Serves one SPDY session until the client closes it.
async fn session<R, W>(ctx: Ctx, pod_uid: String, mut r: R, mut w: W)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(f) = frames_rx.recv().await {
            if w.write_all(&f).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut codec = HeaderCodec::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut stream_to_pair: HashMap<u32, String> = HashMap::new();
    let mut conns = JoinSet::new();
    loop {
        let frame = match spdy::read_frame(&mut r).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "port-forward session ended");
                break;
            }
        };
        match frame {
            Frame::Control { kind, payload, .. } => match kind {
                spdy::SYN_STREAM => {
                    let Some(sid) = spdy::stream_id(&payload) else {
                        break;
                    };
                    let headers = match payload.get(10..).map(|b| codec.decode(b)) {
                        Some(Ok(h)) => h,
                        _ => break,
                    };
                    let get = |k: &str| {
                        headers
                            .iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let Ok(reply) = codec.encode(&[]) else { break };
                    let mut p = sid.to_be_bytes().to_vec();
                    p.extend_from_slice(&reply);
                    let _ = frames_tx.send(spdy::control(spdy::SYN_REPLY, 0, &p));
                    let port: u16 = get("port").parse().unwrap_or(0);
                    let key = match get("requestid") {
                        id if !id.is_empty() => id,
                        _ => format!("port-{port}"),
                    };
                    stream_to_pair.insert(sid, key.clone());
                    let pair = pairs.entry(key).or_default();
                    pair.port = port;
                    match get("streamtype").as_str() {
                        "error" => pair.error = Some(sid),
                        "data" => {
                            pair.data = Some(sid);
                            let (tx, rx) = mpsc::unbounded_channel();
                            pair.to_pod = Some(tx);
                            conns.spawn(forward(
                                ctx.clone(),
                                pod_uid.clone(),
                                port,
                                sid,
                                pair.error,
                                rx,
                                frames_tx.clone(),
                            ));
                        }
                        _ => {
                            let mut rst = sid.to_be_bytes().to_vec();
                            rst.extend_from_slice(&1u32.to_be_bytes()); // PROTOCOL_ERROR
                            let _ = frames_tx.send(spdy::control(spdy::RST_STREAM, 0, &rst));
                        }
                    }
                }
                spdy::PING => {
                    let _ = frames_tx.send(spdy::control(spdy::PING, 0, &payload));
                }
                spdy::RST_STREAM => {
                    if let Some(key) =
                        spdy::stream_id(&payload).and_then(|s| stream_to_pair.get(&s))
                    {
                        if let Some(p) = pairs.get_mut(key) {
                            p.to_pod = None;
                        }
                    }
                }
                spdy::GOAWAY => break,
                spdy::SETTINGS | spdy::WINDOW_UPDATE | spdy::HEADERS | spdy::SYN_REPLY => {}
                _ => {}
            },
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                let Some(key) = stream_to_pair.get(&stream) else {
                    continue;
                };
                let Some(pair) = pairs.get_mut(key) else {
                    continue;
                };
                if pair.data != Some(stream) {
                    continue; // the client's error stream carries nothing
                }
                if let Some(tx) = &pair.to_pod {
                    if !data.is_empty() {
                        let _ = tx.send(Some(data));
                    }
                    if flags & spdy::FLAG_FIN != 0 {
                        let _ = tx.send(None);
                        pair.to_pod = None;
                    }
                }
            }
        }
    }
    conns.abort_all();
    drop(frames_tx);
    let _ = writer.await;
}

/// Joins one data stream to a TCP connection to `port` in the pod.
async fn forward(
    ctx: Ctx,
    pod_uid: String,
    port: u16,
    data_sid: u32,
    error_sid: Option<u32>,
    mut from_client: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    frames: mpsc::UnboundedSender<Vec<u8>>,
) {
    let end = |frames: &mpsc::UnboundedSender<Vec<u8>>| {
        let _ = frames.send(spdy::data(data_sid, spdy::FLAG_FIN, b""));
        if let Some(e) = error_sid {
            let _ = frames.send(spdy::data(e, spdy::FLAG_FIN, b""));
        }
    };
    let conn = ctx.cri.connect_port(&pod_uid, port).await;
    let stream = match conn {
        Ok(s) => s,
        Err(e) => {
            if let Some(es) = error_sid {
                let msg = format!("error forwarding port {port} to pod {pod_uid}: {e}");
                let _ = frames.send(spdy::data(es, 0, msg.as_bytes()));
            }
            end(&frames);
            return;
        }
    };
    let (mut pod_r, mut pod_w) = stream.into_split();
    let upstream = tokio::spawn(async move {
        while let Some(m) = from_client.recv().await {
            match m {
                Some(bytes) => {
                    if pod_w.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        let _ = pod_w.shutdown().await;
        // Keep the write half alive until the reader is done.
        while from_client.recv().await.is_some() {}
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match pod_r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if frames.send(spdy::data(data_sid, 0, &buf[..n])).is_err() {
                    break;
                }
            }
        }
    }
    end(&frames);
    upstream.abort();
}
