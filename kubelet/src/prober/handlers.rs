//! One run of a probe handler: `exec` in the container through the CRI, `httpGet`, `tcpSocket`
//! (and `grpc`, in `grpc.rs`) against the pod IP from the host side of the bridge. Each run is
//! bounded by the probe's timeout and returns a `Outcome` carrying upstream's wording; it
//! never decides what a failure means (that is the worker's job).

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container as KContainer, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::cri::{Cri, ExecRequest};

/// The User-Agent upstream's prober sends (`kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.35";

/// How much command output an exec probe keeps for its event message.
const MAX_OUTPUT: usize = 10 * 1024;

/// The result of one probe run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    /// The check ran and failed; the message is upstream's "output".
    Failure(String),
    /// The probe could not be run at all (bad port, runtime error).
    Error(String),
}

/// Where the network probes connect.
pub struct Target<'a> {
    pub pod_ip: &'a str,
    pub container: &'a KContainer,
    pub container_id: &'a str,
}

/// Run `probe`'s handler once.
pub async fn run(cri: &dyn Cri, probe: &Probe, t: &Target<'_>) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(e) = &probe.exec {
        return exec(
            cri,
            t.container_id,
            e.command.clone().unwrap_or_default(),
            timeout,
        )
        .await;
    }
    if let Some(h) = &probe.http_get {
        let port = match resolve_port(&h.port, t.container) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        if h.scheme.as_deref().is_some_and(|s| s != "HTTP") {
            return Outcome::Error(format!(
                "unsupported httpGet scheme {:?}: only HTTP is supported",
                h.scheme.as_deref().unwrap_or_default()
            ));
        }
        let host = h.host.clone().unwrap_or_else(|| t.pod_ip.to_string());
        let path = h.path.clone().unwrap_or_default();
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect();
        return http_get(&host, port, &path, &headers, timeout).await;
    }
    if let Some(s) = &probe.tcp_socket {
        let port = match resolve_port(&s.port, t.container) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        let host = s.host.clone().unwrap_or_else(|| t.pod_ip.to_string());
        return tcp(&host, port, timeout).await;
    }
    if let Some(g) = &probe.grpc {
        let port = match port_number(g.port) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        let service = g.service.clone().unwrap_or_default();
        return super::grpc::check(t.pod_ip, port, &service, timeout).await;
    }
    Outcome::Error("missing probe handler".into())
}

/// A port by number or by the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, c: &KContainer) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => port_number(*n),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<i32>() {
                return port_number(n);
            }
            let found = c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match found {
                Some(p) => port_number(p.container_port),
                None => Err(format!("port {name} not found in container {}", c.name)),
            }
        }
    }
}

fn port_number(n: i32) -> Result<u16, String> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {n}"))
}

async fn exec(cri: &dyn Cri, id: &str, command: Vec<String>, timeout: Duration) -> Outcome {
    if command.is_empty() {
        return Outcome::Error("exec probe has no command".into());
    }
    let shown = command.join(" ");
    match tokio::time::timeout(timeout, exec_output(cri, id, command)).await {
        Err(_) => Outcome::Failure(format!("command {shown:?} timed out")),
        Ok(Err(e)) => Outcome::Error(e),
        Ok(Ok((0, _))) => Outcome::Success,
        Ok(Ok((_, output))) => Outcome::Failure(output),
    }
}

/// Run `command` in the container; its exit code and combined output (capped). Dropping the
/// future kills the command.
pub async fn exec_output(
    cri: &dyn Cri,
    id: &str,
    command: Vec<String>,
) -> Result<(i32, String), String> {
    let req = ExecRequest {
        command,
        ..Default::default()
    };
    let mut streams = cri.exec(id, req).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let stdout = read_capped(&mut streams.stdout, &mut out);
    let stderr = async {
        if let Some(r) = streams.stderr.as_mut() {
            read_capped(r, &mut err).await;
        }
    };
    tokio::join!(stdout, stderr);
    let code = streams.exit.await.map_err(|e| e.to_string())?;
    out.extend_from_slice(&err);
    out.truncate(MAX_OUTPUT);
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin + ?Sized>(r: &mut R, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if into.len() < MAX_OUTPUT => into.extend_from_slice(&buf[..n]),
            Ok(_) => {}
        }
    }
}

/// `host:port` the way Go prints it (brackets around IPv6 literals).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A connect error the way Go's net package words it: `dial tcp 10.42.0.5:80: connect:
/// connection refused`.
pub fn dial_error(addr: &str, e: &std::io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => {
            let s = std::io::Error::from_raw_os_error(code).to_string();
            let s = s.split(" (os error").next().unwrap_or_default().to_string();
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
        None => e.to_string(),
    };
    format!("dial tcp {addr}: connect: {text}")
}

/// Connect with a deadline; errors are worded like Go's dialer.
pub async fn dial(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
        Ok(Err(e)) => Err(dial_error(&addr, &e)),
        Ok(Ok(s)) => Ok(s),
    }
}

pub(super) async fn tcp(host: &str, port: u16, timeout: Duration) -> Outcome {
    match dial(host, port, timeout).await {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Failure(e),
    }
}

pub(super) async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Outcome {
    match http_status(host, port, path, headers, USER_AGENT, timeout).await {
        Ok(code) if (200..400).contains(&code) => Outcome::Success,
        Ok(code) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Err(e) => Outcome::Failure(e),
    }
}

/// GET `http://host:port/path` and return the status code; errors read like Go's client
/// (`Get "http://...": dial tcp ...`).
pub async fn http_status(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    user_agent: &str,
    timeout: Duration,
) -> Result<u16, String> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let addr = join_host_port(host, port);
    let url = format!("http://{addr}{path}");
    let run = async {
        let stream = dial(host, port, timeout).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::get(path.as_str());
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !has("host") {
            req = req.header(hyper::header::HOST, &addr);
        }
        if !has("user-agent") {
            req = req.header(hyper::header::USER_AGENT, user_agent);
        }
        if !has("accept") {
            req = req.header(hyper::header::ACCEPT, "*/*");
        }
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(axum::body::Body::empty())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        // Read (a bounded amount of) the body so the server sees a complete exchange.
        let _ = http_body_util::Limited::new(resp.into_body(), MAX_OUTPUT)
            .collect()
            .await;
        Ok::<_, String>(status)
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => Err(format!("Get {url:?}: {e}")),
        Ok(Ok(code)) => Ok(code),
    }
}
