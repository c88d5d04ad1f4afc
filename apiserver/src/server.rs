//! Serving: the router, authentication, and the HTTPS listener (HTTP/1.1 with upgrades, and
//! HTTP/2), plus start-up (PKI, store, bootstrap objects) in `run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::allocate::ServiceCidr;
use crate::error::ApiError;
use crate::handlers::{AppState, Shared};
use crate::pki::Pki;
use crate::resources::Catalog;
use crate::storage::{Store, StoreConfig};
use crate::{discovery, handlers, openapi};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub bind_address: std::net::IpAddr,
    pub port: u16,
    /// Where to write the admin kubeconfig (None: don't).
    pub kubeconfig_path: Option<PathBuf>,
    pub kubeconfig_mode: u32,
    /// Extra names/IPs for the serving certificate.
    pub tls_sans: Vec<String>,
    pub service_cidr: ServiceCidr,
    /// Events not written for this long are deleted (upstream's `--event-ttl`).
    pub event_ttl: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid TLS material: {0}")]
    Tls(String),
    #[error("failed to create bootstrap objects: {0}")]
    Bootstrap(String),
}

/// A running server: its address, the admin credential, and its CA (for in-process clients).
pub struct Running {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub ca_cert_pem: String,
    pub kubeconfig: String,
    pub state: Shared,
    /// Resolves when the server has stopped.
    pub done: tokio::task::JoinHandle<()>,
}

/// Paths that anyone may read without credentials (upstream's system:public-info-viewer).
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// True for `/api/v1/<resource>...` and `/apis/<group>/<version>/<resource>...`.
fn is_resource_path(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.first() {
        Some(&"api") => segs.len() >= 3,
        Some(&"apis") => segs.len() >= 4,
        _ => false,
    }
}

/// Authenticate the bearer token (admin or ServiceAccount), apply impersonation, authorize
/// non-resource paths, and leave the user in the request's extensions for the resource
/// handlers (which authorize resource requests).
async fn authenticate(State(state): State<Shared>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let user = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| state.authn.authenticate(&state.store, t.trim()));
    let Some(user) = user else {
        if is_public(&path) {
            return next.run(req).await;
        }
        return ApiError::Unauthorized.into_response();
    };
    let user = match crate::auth::impersonate(&state.store, user, req.headers()) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    if !is_resource_path(&path) && !is_public(&path) && !user.is_master() {
        let a = crate::auth::rbac::Attributes {
            verb: req.method().as_str().to_ascii_lowercase(),
            path: path.clone(),
            ..Default::default()
        };
        if !crate::auth::rbac::authorize(&state.store, &user, &a).allowed {
            return ApiError::Forbidden(format!("forbidden: {}", a.denial(&user.name)))
                .into_response();
        }
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

async fn health() -> &'static str {
    "ok"
}

async fn not_found() -> Response {
    ApiError::UnknownPath.into_response()
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/version", get(discovery::version))
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(health))
        .route("/api", get(discovery::api))
        .route("/api/v1", get(discovery::core_v1))
        .route("/apis", get(discovery::apis))
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::group_version))
        .route("/openapi/v3", get(openapi::index))
        .route("/openapi/v3/{*rest}", get(openapi::gv))
        .route("/openapi/v2", get(not_found))
        .fallback(handlers::resource)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig, ServerError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pki.serving_cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut pki.serving_key_pem.as_bytes())
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .ok_or_else(|| ServerError::Tls("no private key in the serving key file".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Start the API server. Cancelling `cancel` stops it; `fatal` is cancelled by the store on
/// an I/O error (the caller should then exit non-zero).
pub async fn run(
    cfg: ServerConfig,
    cancel: CancellationToken,
    fatal: CancellationToken,
) -> Result<Running, ServerError> {
    let mut sans = vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        cfg.service_cidr.nth(1).to_string(),
    ];
    if !cfg.bind_address.is_unspecified() {
        sans.push(cfg.bind_address.to_string());
    }
    sans.extend(cfg.tls_sans.iter().cloned());
    sans.dedup();
    let pki = Pki::load_or_create(&cfg.data_dir.join("tls"), &sans)?;
    let store = Store::open(StoreConfig::new(&cfg.data_dir.join("db")), fatal.clone())?;
    let state: Shared = Arc::new(AppState {
        store,
        catalog: RwLock::new(Catalog::default()),
        shutdown: cancel.clone(),
        alloc_lock: tokio::sync::Mutex::new(()),
        service_cidr: cfg.service_cidr,
        kubelet_socket: cfg.data_dir.join("kubelet").join("kubelet.sock"),
        authn: crate::auth::Authenticator {
            admin_token: pki.admin_token.clone(),
            signer: crate::auth::token::TokenSigner::load_or_create(&cfg.data_dir.join("tls"))?,
        },
        ca_cert_pem: pki.ca_cert_pem.clone(),
    });
    crate::crd::sync_catalog(&state);
    crate::bootstrap::ensure(&state, cfg.port)
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    let addr = SocketAddr::new(cfg.bind_address, cfg.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Listen { addr, source })?;
    let host = if cfg.bind_address.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        cfg.bind_address.to_string()
    };
    let kubeconfig = pki.admin_kubeconfig(&format!("https://{host}:{}", local.port()));
    if let Some(p) = &cfg.kubeconfig_path {
        crate::pki::write_kubeconfig(p, &kubeconfig, cfg.kubeconfig_mode)?;
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&pki)?));
    let app = router(state.clone());
    crate::namespace_lifecycle::spawn(state.clone(), cancel.clone());
    crate::event_ttl::spawn(state.clone(), cfg.event_ttl, cancel.clone());
    let stop = cancel.clone();
    let done = tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                _ = stop.cancelled() => break,
                c = listener.accept() => c,
            };
            let Ok((stream, _peer)) = conn else { continue };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let app = app.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = TowerToHyperService::new(app);
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    });
    tracing::info!(%local, "API server listening");
    Ok(Running {
        addr: local,
        admin_token: pki.admin_token.clone(),
        ca_cert_pem: pki.ca_cert_pem.clone(),
        kubeconfig,
        state,
        done,
    })
}
