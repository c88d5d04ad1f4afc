//! A small client for the Docker Registry HTTP API v2 / OCI distribution spec: GET manifests
//! and blobs of one repository, following redirects (without credentials to other hosts),
//! answering `401` challenges (HTTP basic, or the bearer token flow: GET the realm with
//! `service` and `scope`, basic credentials if any, then `Authorization: Bearer`), with
//! timeouts on connect, on response headers and between body chunks. HTTPS with rustls, the
//! system roots and configured CAs; plain HTTP for loopback registries and those configured
//! insecure (like docker and containerd); per-registry endpoints (mirrors). Knows nothing of
//! manifests' content (see `pull`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::image::credentials::RegistryAuth;
use crate::image::reference::Reference;

/// Node-wide registry settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries spoken to over plain HTTP: `host:port`, `host` (any port) or a CIDR.
    /// Loopback registries (`localhost`, 127.0.0.0/8, ::1) always are.
    pub insecure_registries: Vec<String>,
    pub connect_timeout: Duration,
    /// Longest wait for response headers, and between two chunks of a body.
    pub request_timeout: Duration,
    /// Blobs downloaded at the same time by one pull.
    pub max_concurrent_downloads: usize,
    /// Largest blob (compressed layer) a pull accepts.
    pub max_blob_size: u64,
    /// PEM files of CAs trusted for HTTPS registries besides the system roots.
    pub ca_certs: Vec<PathBuf>,
    /// Registry domain (as in references: `docker.io`, `reg.lan:5000`) -> base URL to send its
    /// API calls to instead, scheme included: a mirror or pull-through cache.
    pub endpoints: BTreeMap<String, String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_registries: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_concurrent_downloads: 3,
            max_blob_size: 16 << 30,
            ca_certs: Vec::new(),
            endpoints: BTreeMap::new(),
        }
    }
}

/// `[::1]:5000` -> `::1`, `reg.io:5000` -> `reg.io`.
fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    domain.split(':').next().unwrap_or(domain)
}

impl RegistryConfig {
    /// True if `domain` (as in a reference: `host[:port]`) is spoken to over plain HTTP.
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        let ip: Option<IpAddr> = host.parse().ok();
        if host == "localhost"
            || host.ends_with(".localhost")
            || ip.is_some_and(|i| i.is_loopback())
        {
            return true;
        }
        self.insecure_registries.iter().any(|e| {
            let e = e.trim();
            if e == domain || e == host {
                return true;
            }
            match (e.parse::<ipnet::IpNet>(), ip) {
                (Ok(net), Some(ip)) => net.contains(&ip),
                _ => false,
            }
        })
    }
}

/// What a request fetches, for URLs and error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resource<'a> {
    /// By tag or digest.
    Manifest(&'a str),
    Blob(&'a str),
    /// The token server's answer.
    Token,
}

impl std::fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Manifest(t) => write!(f, "manifest {t}"),
            Resource::Blob(d) => write!(f, "blob {d}"),
            Resource::Token => f.write_str("token"),
        }
    }
}

type Http = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// One repository on one registry, for the duration of a pull.
pub(crate) struct RegistryClient {
    http: Http,
    /// `https://registry-1.docker.io`
    base: String,
    pub(crate) registry: String,
    pub(crate) repository: String,
    pub(crate) reference: String,
    pub(crate) auth: Option<RegistryAuth>,
    /// `Authorization` value learnt from the last challenge (never held across `.await`).
    authz: Mutex<Option<String>>,
    pub(crate) cfg: RegistryConfig,
}

/// System roots, plus the PEM certificates in `extra_cas`.
fn build_tls(extra_cas: &[PathBuf]) -> std::result::Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        warn!(error = %e, "error loading system CA certificates");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 && extra_cas.is_empty() {
        warn!("no system CA certificates found: HTTPS registries will fail to verify");
    }
    for path in extra_cas {
        let pem = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| format!("parse {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("add CA from {}: {e}", path.display()))?;
        }
    }
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| e.to_string())
}

fn tls_config(extra_cas: &[PathBuf]) -> Result<rustls::ClientConfig> {
    static SYSTEM: OnceLock<std::result::Result<rustls::ClientConfig, String>> = OnceLock::new();
    let cfg = if extra_cas.is_empty() {
        SYSTEM.get_or_init(|| build_tls(&[])).clone()
    } else {
        build_tls(extra_cas)
    };
    cfg.map_err(|reason| Error::RegistryTls { reason })
}

/// The error and its sources, `: `-separated (hyper's own message is only "client error").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl RegistryClient {
    pub fn new(
        r: &Reference,
        cfg: &RegistryConfig,
        auth: Option<RegistryAuth>,
    ) -> Result<RegistryClient> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&cfg.ca_certs)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        let scheme = if cfg.is_insecure(&r.domain) {
            "http"
        } else {
            "https"
        };
        let base = match cfg.endpoints.get(&r.domain) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("{scheme}://{}", r.api_host()),
        };
        Ok(RegistryClient {
            http: client,
            base,
            registry: r.domain.clone(),
            repository: r.repository.clone(),
            reference: r.name.clone(),
            auth,
            authz: Mutex::new(None),
            cfg: cfg.clone(),
        })
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }

    fn current_authz(&self) -> Option<String> {
        self.authz.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_authz(&self, v: String) {
        *self.authz.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }

    /// GETs `res`; returns the response once it is a 2xx, else a typed error.
    pub async fn get(&self, res: Resource<'_>, accept: &str) -> Result<Response<Incoming>> {
        let path = match res {
            Resource::Manifest(t) => format!("/v2/{}/manifests/{t}", self.repository),
            Resource::Blob(d) => format!("/v2/{}/blobs/{d}", self.repository),
            Resource::Token => {
                return Err(self.registry_error(res, 0, "not a registry path".into()))
            }
        };
        let mut url = format!("{}{path}", self.base);
        let mut challenged = false;
        for _ in 0..8 {
            let own_host = url.starts_with(&format!("{}/", self.base));
            let authz = if own_host { self.current_authz() } else { None };
            let resp = self.send(&url, accept, authz.as_deref(), res).await?;
            let status = resp.status();
            debug!(url = %url, status = status.as_u16(), "registry GET");
            if status.is_success() {
                return Ok(resp);
            }
            if status.is_redirection() {
                let loc = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_default();
                url = self.resolve_location(&url, loc);
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && own_host && !challenged {
                challenged = true;
                let challenges: Vec<String> = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|h| h.to_str().ok().map(str::to_string))
                    .collect();
                self.answer_challenge(&challenges).await?;
                continue;
            }
            let message = self.error_message(resp).await;
            return Err(self.status_error(status, res, message));
        }
        Err(self.registry_error(res, 310, "too many redirects".into()))
    }

    fn resolve_location(&self, current: &str, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return loc.to_string();
        }
        // Scheme and authority of the current URL, then the absolute path.
        let after_scheme = current.find("://").map_or(0, |i| i + 3);
        let authority_end = current[after_scheme..]
            .find('/')
            .map_or(current.len(), |i| after_scheme + i);
        format!("{}{loc}", &current[..authority_end])
    }

    pub(crate) async fn send(
        &self,
        url: &str,
        accept: &str,
        authz: Option<&str>,
        res: Resource<'_>,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::get(url)
            .header(ACCEPT, accept)
            .header(USER_AGENT, concat!("k1s/", env!("CARGO_PKG_VERSION")));
        if let Some(a) = authz {
            let mut v = HeaderValue::from_str(a).map_err(|_| Error::InvalidCredentials {
                reason: "credentials contain characters not allowed in a header".into(),
            })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| self.registry_error(res, 0, format!("bad request URL {url}: {e}")))?;
        match tokio::time::timeout(self.cfg.request_timeout, self.http.request(req)).await {
            Err(_) => Err(Error::RegistryTimeout {
                reference: self.reference.clone(),
                registry: self.registry.clone(),
                what: format!("GET {res}"),
                timeout_ms: self.cfg.request_timeout.as_millis() as u64,
            }),
            Ok(Err(e)) => Err(Error::RegistryUnreachable {
                reference: self.reference.clone(),
                registry: url_authority(url).to_string(),
                reason: chain(&e),
            }),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// The next chunk of `body`, or `None` at its end; times out if the registry stalls.
    pub async fn next_chunk(
        &self,
        body: &mut Incoming,
        res: Resource<'_>,
    ) -> Result<Option<Bytes>> {
        loop {
            let frame = tokio::time::timeout(self.cfg.request_timeout, body.frame())
                .await
                .map_err(|_| Error::RegistryTimeout {
                    reference: self.reference.clone(),
                    registry: self.registry.clone(),
                    what: format!("reading {res}"),
                    timeout_ms: self.cfg.request_timeout.as_millis() as u64,
                })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(Error::RegistryUnreachable {
                        reference: self.reference.clone(),
                        registry: self.registry.clone(),
                        reason: format!("reading {res}: {}", chain(&e)),
                    })
                }
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Reads a whole (small) body, failing beyond `limit` bytes.
    pub async fn read_body(
        &self,
        resp: Response<Incoming>,
        limit: usize,
        res: Resource<'_>,
    ) -> Result<Vec<u8>> {
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk(&mut body, res).await? {
            if out.len() + chunk.len() > limit {
                return Err(self.registry_error(res, 0, format!("larger than {limit} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// The registry's own words: `errors[].message` of its JSON body, else the text.
    pub(crate) async fn error_message(&self, resp: Response<Incoming>) -> String {
        let Ok(Ok(body)) = tokio::time::timeout(
            Duration::from_secs(5),
            http_body_util::Limited::new(resp.into_body(), 64 << 10).collect(),
        )
        .await
        else {
            return String::new();
        };
        let body = body.to_bytes();
        #[derive(serde::Deserialize)]
        struct Errs {
            errors: Vec<ErrItem>,
        }
        #[derive(serde::Deserialize)]
        struct ErrItem {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        if let Ok(e) = serde_json::from_slice::<Errs>(&body) {
            return e
                .errors
                .iter()
                .map(|i| format!("{} {}", i.code, i.message).trim().to_string())
                .collect::<Vec<_>>()
                .join("; ");
        }
        String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(200)
            .collect()
    }

    fn status_error(&self, status: StatusCode, res: Resource<'_>, message: String) -> Error {
        let detail = if message.is_empty() {
            String::new()
        } else {
            format!(" ({message})")
        };
        match (status, res) {
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => Error::RegistryUnauthorized {
                reference: self.reference.clone(),
                reason: match &self.auth {
                    Some(a) => format!(
                        "registry {} refused the credentials of {:?}{detail}",
                        self.registry, a.username
                    ),
                    // Docker Hub answers so for private and for missing repositories alike.
                    None if self.current_authz().is_some() => format!(
                        "pull access denied, repository does not exist or may require authorization{detail}"
                    ),
                    None => format!(
                        "registry {} requires credentials and none were given{detail}",
                        self.registry
                    ),
                },
            },
            (StatusCode::NOT_FOUND, Resource::Manifest(_)) => Error::ManifestNotFound {
                reference: self.reference.clone(),
            },
            _ => self.registry_error(res, status.as_u16(), message),
        }
    }

    pub(crate) fn registry_error(&self, res: Resource<'_>, status: u16, message: String) -> Error {
        Error::Registry {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            what: format!("GET {res}"),
            status,
            message,
        }
    }
}

/// `https://auth.docker.io/token?x` -> `auth.docker.io`.
pub(crate) fn url_authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_configured_registries_are_plain_http() {
        let cfg = RegistryConfig {
            insecure_registries: vec![
                "reg.lan:5000".into(),
                "10.1.0.0/16".into(),
                "plain.io".into(),
            ],
            ..Default::default()
        };
        for d in [
            "localhost:5000",
            "127.0.0.1:35000",
            "[::1]:5000",
            "reg.lan:5000",
            "10.1.2.3:80",
            "plain.io:8080",
        ] {
            assert!(cfg.is_insecure(d), "{d}");
        }
        for d in ["docker.io", "reg.lan:5001", "10.2.0.1:5000", "quay.io"] {
            assert!(!cfg.is_insecure(d), "{d}");
        }
        assert_eq!(
            url_authority("http://127.0.0.1:5000/token?x=1"),
            "127.0.0.1:5000"
        );
    }
}
