//! The kubelet's streaming endpoint: container logs, exec and port-forward, served on a unix
//! socket that only root can open (`<data-dir>/kubelet.sock`, mode 0600 in a 0700 directory).
//! The API server is its only client: it checks the pod and the container, then proxies
//! `pods/log`, `pods/exec` and `pods/portforward` here with the container's runtime ID, so this
//! side never looks pods up in the API.
//!
//! Routes (paths as upstream's kubelet, plus the runtime ID in the query):
//! - `GET /containerLogs/{ns}/{pod}/{container}?containerID=…&follow&timestamps&tailLines…`
//! - `GET /exec/{ns}/{pod}/{container}?containerID=…&command=…&stdin&stdout&stderr&tty`
//!   (WebSocket, `v5.channel.k8s.io` or `v4.channel.k8s.io`)
//! - `GET /attach/{ns}/{pod}/{container}?containerID=…&stdin&stdout&stderr&tty` (the same)
//! - `GET|POST /portforward/{ns}/{pod}?podUID=…` (SPDY/3.1 inside WebSocket, or a raw
//!   `Upgrade: SPDY/3.1`)
//! - `GET /stats/summary` (CPU and memory of the node and of running containers)
//! - `GET /metrics` (Prometheus text format; `nodes/<node>/proxy/metrics` through the API)

mod exec;
pub(crate) mod logs;
mod metrics;
mod portforward;
pub mod spdy;
mod stats;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::cri::{Cri, CriError};

/// The socket the API server dials for a node's streams.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("kubelet").join("kubelet.sock")
}

#[derive(Clone)]
pub(crate) struct Ctx {
    pub cri: Arc<dyn Cri>,
    pub stats: Arc<tokio::sync::Mutex<stats::Sampler>>,
}

/// Query parameters; repeated keys (`command`) keep every value in order.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }
}

/// A `Status` error body, which the API server passes through to the client.
pub(crate) fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn cri_error(e: CriError) -> Response {
    match e {
        CriError::NotFound(m) => status(StatusCode::NOT_FOUND, "NotFound", m),
        other => status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            other.to_string(),
        ),
    }
}

fn router(ctx: Ctx) -> Router {
    Router::new()
        .route(
            "/containerLogs/{ns}/{pod}/{container}",
            get(logs::container_logs),
        )
        .route("/exec/{ns}/{pod}/{container}", any(exec::exec))
        .route("/attach/{ns}/{pod}/{container}", any(exec::attach))
        .route("/portforward/{ns}/{pod}", any(portforward::port_forward))
        .route("/stats/summary", get(stats::summary))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { status(StatusCode::NOT_FOUND, "NotFound", "no such kubelet path") })
        .with_state(ctx)
}

/// Serves the endpoint until `cancel` fires.
pub async fn serve(
    cri: Arc<dyn Cri>,
    data_dir: &Path,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let path = socket_path(data_dir);
    let dir = path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    tracing::info!(socket = %path.display(), "kubelet streaming endpoint listening");
    // Not a graceful shutdown: a `logs -f` or an interactive exec may never end by itself.
    tokio::select! {
        r = axum::serve(listener, router(Ctx {
            cri,
            stats: stats::sampler(),
        })) => r,
        () = cancel.cancelled() => Ok(()),
    }
}
