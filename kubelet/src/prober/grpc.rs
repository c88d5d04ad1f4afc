//! The `grpc` probe: one unary `grpc.health.v1.Health/Check` call over HTTP/2 cleartext. The
//! request and response messages are tiny, so they are encoded by hand (field 1 of each:
//! `service` string, `status` enum) instead of pulling in a protobuf toolchain.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::handlers::{dial, join_host_port, Outcome, USER_AGENT};

/// `HealthCheckResponse.ServingStatus` names, by number.
fn status_name(n: u64) -> String {
    match n {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// gRPC status code names, by number.
fn code_name(n: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(n as usize)
        .map_or_else(|| format!("Code({n})"), |s| s.to_string())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A length-prefixed gRPC message holding `HealthCheckRequest { service }`.
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a);
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = vec![0u8];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// The `status` of a length-prefixed `HealthCheckResponse` (0 when absent).
pub fn decode_response(frame: &[u8]) -> Option<u64> {
    let len = u32::from_be_bytes(frame.get(1..5)?.try_into().ok()?) as usize;
    let msg = frame.get(5..5 + len)?;
    let mut i = 0;
    let mut status = 0;
    while i < msg.len() {
        let key = get_varint(msg, &mut i)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = get_varint(msg, &mut i)?,
            (_, 0) => {
                get_varint(msg, &mut i)?;
            }
            (_, 2) => {
                let n = get_varint(msg, &mut i)? as usize;
                i = i.checked_add(n)?;
            }
            (_, 1) => i += 8,
            (_, 5) => i += 4,
            _ => return None,
        }
    }
    Some(status)
}

/// Call Health/Check on `host:port`; SERVING is success.
pub async fn check(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = join_host_port(host, port);
    let stream = match dial(host, port, timeout).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service {addr:?} within {}s: {e}",
                timeout.as_secs()
            ))
        }
    };
    let call = async {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = hyper::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header(hyper::header::CONTENT_TYPE, "application/grpc")
            .header(hyper::header::TE, "trailers")
            .header(hyper::header::USER_AGENT, USER_AGENT)
            .body(axum::body::Body::from(encode_request(service)))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(format!("unexpected HTTP status code {}", resp.status()));
        }
        let head = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        let trailers = body.trailers().cloned().unwrap_or_default();
        let bytes = body.to_bytes();
        let grpc = |name: &str| {
            trailers
                .get(name)
                .or_else(|| head.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let code: u32 = grpc("grpc-status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(2);
        Ok((code, grpc("grpc-message").unwrap_or_default(), bytes))
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {}s",
            timeout.as_secs()
        )),
        Ok(Err(e)) => Outcome::Failure(format!("error: health rpc probe failed: {e}")),
        Ok(Ok((12, msg, _))) => Outcome::Failure(format!(
            "this server does not implement the grpc health protocol (grpc.health.v1.Health): {msg}"
        )),
        Ok(Ok((0, _, bytes))) => match decode_response(&bytes) {
            Some(1) => Outcome::Success,
            Some(n) => Outcome::Failure(format!(
                "service unhealthy (responded with {:?})",
                status_name(n)
            )),
            None => Outcome::Failure(
                "error: health rpc probe failed: malformed HealthCheckResponse".into(),
            ),
        },
        Ok(Ok((code, msg, _))) => Outcome::Failure(format!(
            "error: health rpc probe failed: rpc error: code = {} desc = {msg}",
            code_name(code)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_encoding() {
        assert_eq!(encode_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(
            encode_request("db"),
            vec![0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']
        );
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(decode_response(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08]), None);
    }
}
