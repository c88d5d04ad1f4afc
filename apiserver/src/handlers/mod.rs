//! HTTP handlers for resource URLs: parse the request into a typed target and options, call
//! the store through the registry rules, and encode the answer (JSON object, list, Table or
//! watch stream). Errors become `Status` objects in `error.rs` only.

pub mod body;
pub mod path;
pub mod read;
pub mod write;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Subject};
use crate::resources::Catalog;
use crate::storage::{Store, StoreError};

/// Shared state of the server.
pub struct AppState {
    pub store: Store,
    pub catalog: RwLock<Catalog>,
    /// Cancelled when the server stops: ends watches.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Serialises Service IP / node port allocation.
    pub alloc_lock: tokio::sync::Mutex<()>,
    pub service_cidr: crate::allocate::ServiceCidr,
    /// The kubelet's streaming endpoint (logs, exec, port-forward).
    pub kubelet_socket: std::path::PathBuf,
    /// Bearer tokens (admin, ServiceAccount) and the ServiceAccount token signer.
    pub authn: crate::auth::Authenticator,
    /// The cluster CA (published as the `kube-root-ca.crt` ConfigMap in every namespace).
    pub ca_cert_pem: String,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn catalog(&self) -> Catalog {
        match self.catalog.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// Query parameters, decoded once.
#[derive(Debug, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut m = HashMap::new();
        if let Some(q) = raw {
            for (k, v) in form_urlencoded_pairs(q) {
                m.insert(k, v);
            }
        }
        Query(m)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Map a store error to the API error for `subject`.
pub fn store_err(e: StoreError, subject: Subject) -> ApiError {
    match e {
        StoreError::AlreadyExists(_) => ApiError::AlreadyExists(subject),
        StoreError::NotFound(_) => ApiError::NotFound(subject),
        StoreError::Conflict { .. } => ApiError::Conflict(
            subject,
            "the object has been modified; please apply your changes to the latest version and try again".into(),
        ),
        StoreError::Expired { requested, oldest } => {
            ApiError::Expired(format!("too old resource version: {requested} ({oldest})"))
        }
        StoreError::Closed => ApiError::ServiceUnavailable("the server is shutting down".into()),
        other => ApiError::Storage(other.to_string()),
    }
}

/// A JSON response with status code and optional warnings.
pub fn json_response(code: StatusCode, v: &Value, warnings: &[String]) -> Response {
    let mut resp = (code, v.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            h.append("Warning", v);
        }
    }
    resp
}

/// True when the client asked for a `meta.k8s.io` Table.
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}

/// The RBAC attributes of a resource request, as upstream's RequestInfo derives them.
pub fn attributes(t: &path::Target, method: &Method, q: &Query) -> crate::auth::rbac::Attributes {
    let sub = t.sub.clone().unwrap_or_default();
    let named = t.name.is_some();
    let verb = match *method {
        Method::GET | Method::HEAD if matches!(sub.as_str(), "exec" | "attach" | "portforward") => {
            "create"
        }
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD if q.flag("watch") => "watch",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    };
    let mut name = t.name.clone().unwrap_or_default();
    if !named && matches!(verb, "list" | "watch") {
        // `kubectl get pod x -w` lists/watches with metadata.name=x: authorized as that name.
        if let Some(fs) = q.get("fieldSelector") {
            for part in fs.split(',') {
                if let Some(n) = part
                    .strip_prefix("metadata.name==")
                    .or_else(|| part.strip_prefix("metadata.name="))
                {
                    name = n.to_string();
                }
            }
        }
    }
    let namespace = if t.rt.plural == "namespaces" && t.rt.group.is_empty() {
        name.clone()
    } else {
        t.namespace.clone().unwrap_or_default()
    };
    crate::auth::rbac::Attributes {
        verb: verb.into(),
        resource: t.rt.plural.clone(),
        subresource: sub,
        group: t.rt.group.clone(),
        namespace,
        name,
        path: String::new(),
    }
}

/// Deny a resource request that RBAC does not allow for `user` (403 with upstream's message).
fn authorize(
    state: &Shared,
    user: &crate::auth::User,
    t: &path::Target,
    method: &Method,
    q: &Query,
) -> ApiResult<()> {
    if user.is_master() {
        return Ok(());
    }
    let a = attributes(t, method, q);
    if crate::auth::rbac::authorize(&state.store, user, &a).allowed {
        return Ok(());
    }
    Err(ApiError::ForbiddenFor(
        Subject::new(&t.rt.plural, &t.rt.group, t.name.as_deref().unwrap_or("")),
        a.denial(&user.name),
    ))
}

/// Entry point for every `/api/...` and `/apis/...` resource request.
pub async fn resource(State(state): State<Shared>, req: Request) -> Response {
    match dispatch(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(state: Shared, req: Request) -> ApiResult<Response> {
    let is_write = req.method() != Method::GET;
    let is_crd = req.uri().path().starts_with("/apis/apiextensions.k8s.io/");
    let user = req.extensions().get::<crate::auth::User>().cloned();
    let resp = match user {
        Some(u) => {
            crate::auth::escalation::REQUESTER
                .scope(u, dispatch_inner(state.clone(), req))
                .await
        }
        None => dispatch_inner(state.clone(), req).await,
    };
    if is_write && is_crd && resp.as_ref().is_ok_and(|r| r.status().is_success()) {
        crate::crd::sync_catalog(&state);
    }
    resp
}

async fn dispatch_inner(state: Shared, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let catalog = state.catalog();
    let target = path::parse(&catalog, parts.uri.path())?;
    let q = Query::parse(parts.uri.query());
    let user = parts
        .extensions
        .get::<crate::auth::User>()
        .cloned()
        .ok_or(ApiError::Unauthorized)?;
    authorize(&state, &user, &target, &parts.method, &q)?;
    if target.rt.group == "metrics.k8s.io" && parts.method == Method::GET {
        return crate::node_proxy::metrics(&state, &target, &q).await;
    }
    if crate::node_proxy::is_node_proxy(&target) {
        return crate::node_proxy::node_proxy(&state, &target, parts, body).await;
    }
    if crate::node_proxy::is_streaming(&target) {
        return crate::node_proxy::handle(&state, &target, &q, parts, body).await;
    }
    let headers = parts.headers;
    let method = parts.method;
    if !target.rt.verbs().iter().any(|v| v != "create") && method != Method::POST {
        return Err(ApiError::MethodNotAllowed(
            "the server does not allow this method on the requested resource".into(),
        ));
    }
    match (&method, target.name.is_some(), target.sub.as_deref()) {
        (&Method::GET, false, None) => {
            if q.flag("watch") {
                read::watch(&state, &target, &q, &headers).await
            } else {
                read::list(&state, &target, &q, &headers).await
            }
        }
        (&Method::GET, true, None) | (&Method::GET, true, Some("status")) => {
            read::get(&state, &target, &headers).await
        }
        (&Method::GET, true, Some("scale")) => read::get_scale(&state, &target).await,
        (&Method::POST, false, None) => {
            let b = body::read(body, &headers).await?;
            if target.rt.verbs == ["create"] {
                return crate::review::create(&state, &user, &target, b.value);
            }
            write::create(&state, &target, &q, b).await
        }
        (&Method::POST, true, Some("token")) => {
            let b = body::read(body, &headers).await?;
            crate::review::token_request(&state, &target, b.value).await
        }
        (&Method::PUT, true, None) | (&Method::PUT, true, Some("status")) => {
            let b = body::read(body, &headers).await?;
            write::update(&state, &target, &q, b).await
        }
        (&Method::PUT, true, Some("scale")) => {
            let b = body::read(body, &headers).await?;
            write::update_scale(&state, &target, b).await
        }
        (&Method::PATCH, true, None)
        | (&Method::PATCH, true, Some("status"))
        | (&Method::PATCH, true, Some("scale")) => {
            let b = body::read(body, &headers).await?;
            write::patch(&state, &target, &q, &headers, b).await
        }
        (&Method::DELETE, true, None) => {
            let b = body::read_optional(body, &headers).await?;
            write::delete(&state, &target, &q, b).await
        }
        (&Method::DELETE, false, None) => {
            let b = body::read_optional(body, &headers).await?;
            write::delete_collection(&state, &target, &q, b).await
        }
        (&Method::POST, true, Some("binding")) => {
            let b = body::read(body, &headers).await?;
            write::bind(&state, &target, b).await
        }
        (&Method::PUT, true, Some("finalize")) => {
            let b = body::read(body, &headers).await?;
            write::update(&state, &target, &q, b).await
        }
        _ => Err(ApiError::MethodNotAllowed(
            "the server does not allow this method on the requested resource".into(),
        )),
    }
}
