//! Read verbs: get, list (with pagination and selectors), watch (classic and WatchList), and
//! the scale subresource view.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::{json_response, store_err, wants_table, Query, Shared};
use crate::error::{ApiError, ApiResult, Subject};
use crate::handlers::path::Target;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::{EventType, WatchEvent};
use crate::table;

pub fn subject(t: &Target) -> Subject {
    Subject::new(
        &t.rt.plural,
        &t.rt.group,
        t.name.as_deref().unwrap_or_default(),
    )
}

/// Load the object a target names, or NotFound.
pub fn load(state: &Shared, t: &Target) -> ApiResult<Value> {
    let key = t.rt.key(
        t.namespace.as_deref().unwrap_or(""),
        t.name.as_deref().unwrap_or(""),
    );
    state
        .store
        .get(&key)
        .map_err(|e| store_err(e, subject(t)))?
        .ok_or_else(|| ApiError::NotFound(subject(t)))
}

/// Rewrite a stored object for the version the request used (apiVersion/kind).
pub fn present(rt: &ResourceType, mut obj: Value) -> Value {
    if rt.group == "events.k8s.io" {
        obj = crate::registry::events::from_core(obj);
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert("kind".into(), json!(rt.kind));
    }
    obj
}

pub async fn get(state: &Shared, t: &Target, headers: &HeaderMap) -> ApiResult<Response> {
    let obj = present(&t.rt, load(state, t)?);
    if wants_table(headers) {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(json!(""));
        let tbl = table::table(&t.rt, std::slice::from_ref(&obj), false, rv, None);
        return Ok(json_response(StatusCode::OK, &tbl, &[]));
    }
    Ok(json_response(StatusCode::OK, &obj, &[]))
}

pub async fn get_scale(state: &Shared, t: &Target) -> ApiResult<Response> {
    let obj = load(state, t)?;
    Ok(json_response(StatusCode::OK, &scale_of(&t.rt, &obj), &[]))
}

/// The autoscaling/v1 Scale view of a scalable object.
pub fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let md = obj.get("metadata").cloned().unwrap_or(json!({}));
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let _ = rt;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": md.get("name"),
            "namespace": md.get("namespace"),
            "uid": md.get("uid"),
            "resourceVersion": md.get("resourceVersion"),
            "creationTimestamp": md.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        }
    })
}

struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn from_query(rt: &ResourceType, q: &Query) -> ApiResult<Filter> {
        Ok(Filter {
            labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), &rt.kind)?,
        })
    }
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

fn encode_continue(rev: u64, key: &str) -> String {
    let raw = json!({"rv": rev, "start": key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str, prefix: &str) -> ApiResult<String> {
    let bad = || ApiError::BadRequest(format!("invalid continue token: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if !start.starts_with(prefix) {
        return Err(bad());
    }
    Ok(start.to_string())
}

pub async fn list(
    state: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let filter = Filter::from_query(&t.rt, q)?;
    let prefix = t.rt.ns_prefix(t.namespace.as_deref());
    let limit = match q.get("limit") {
        Some(l) if !l.is_empty() => {
            let n: i64 = l
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l}")))?;
            if n > 0 {
                Some(n as usize)
            } else {
                None
            }
        }
        _ => None,
    };
    let start = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c, &prefix)?),
        None => None,
    };
    if !wants_table(headers) && filter.labels.is_empty() && filter.fields.is_empty() {
        return list_spliced(state, t, &prefix, start.as_deref(), limit);
    }
    let page = state
        .store
        .list(&prefix, start.as_deref(), limit, |o| filter.matches(o))
        .map_err(|e| store_err(e, subject(t)))?;
    let items: Vec<Value> = page.items.into_iter().map(|o| present(&t.rt, o)).collect();
    let cont = page
        .continue_after
        .as_deref()
        .map(|k| encode_continue(page.revision, k));
    if wants_table(headers) {
        let include = q.get("includeObject") == Some("Object");
        let tbl = table::table(
            &t.rt,
            &items,
            include,
            json!(page.revision.to_string()),
            cont,
        );
        return Ok(json_response(StatusCode::OK, &tbl, &[]));
    }
    let mut md = json!({"resourceVersion": page.revision.to_string()});
    if let Some(c) = cont {
        md["continue"] = json!(c);
    }
    let list = json!({
        "kind": t.rt.list_kind(),
        "apiVersion": t.rt.api_version(),
        "metadata": md,
        "items": items,
    });
    Ok(json_response(StatusCode::OK, &list, &[]))
}

/// A plain LIST (no selector, no Table): stored objects already in the requested version go
/// out as their stored bytes, without being parsed and serialized again.
fn list_spliced(
    state: &Shared,
    t: &Target,
    prefix: &str,
    start: Option<&str>,
    limit: Option<usize>,
) -> ApiResult<Response> {
    let page = state
        .store
        .list_raw(prefix, start, limit)
        .map_err(|e| store_err(e, subject(t)))?;
    let needles = (
        format!("\"apiVersion\":\"{}\"", t.rt.api_version()),
        format!("\"kind\":\"{}\"", t.rt.kind),
    );
    let mut md = json!({"resourceVersion": page.revision.to_string()});
    if let Some(k) = page.continue_after.as_deref() {
        md["continue"] = json!(encode_continue(page.revision, k));
    }
    let head = json!({"kind": t.rt.list_kind(), "apiVersion": t.rt.api_version(), "metadata": md})
        .to_string();
    let total: usize = page.items.iter().map(|i| i.len() + 1).sum();
    let mut body = Vec::with_capacity(head.len() + total + 16);
    // `{"kind":...,"metadata":{...}` + `,"items":[` ... `]}`
    body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    body.extend_from_slice(b",\"items\":[");
    for (i, raw) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let text = String::from_utf8_lossy(raw);
        if text.contains(&needles.0) && text.contains(&needles.1) {
            body.extend_from_slice(raw);
        } else {
            let obj: Value = serde_json::from_slice(raw)
                .map_err(|e| ApiError::Storage(format!("corrupt stored object: {e}")))?;
            body.extend_from_slice(present(&t.rt, obj).to_string().as_bytes());
        }
    }
    body.extend_from_slice(b"]}");
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// How a watch presents each object.
#[derive(Clone)]
struct WatchCtx {
    rt: Arc<ResourceType>,
    table: bool,
    filter: Arc<Filter>,
    /// `"apiVersion":"<v>"` and `"kind":"<k>"` of this watch, to recognise stored objects
    /// that can go out unparsed.
    version_needles: (String, String),
}

impl WatchCtx {
    fn line(&self, ty: &str, obj: &Value) -> Bytes {
        let obj = present(&self.rt, obj.clone());
        let obj = if self.table {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            table::table(&self.rt, std::slice::from_ref(&obj), false, rv, None)
        } else {
            obj
        };
        let mut s = json!({"type": ty, "object": obj}).to_string();
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rev: u64, initial_end: bool) -> Bytes {
        let mut md = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut s = json!({"type": "BOOKMARK", "object": {
            "kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": md}})
        .to_string();
        s.push('\n');
        Bytes::from(s)
    }

    /// The stored bytes can go out as they are: no selector, no Table, and the object is
    /// already in the version this watch serves.
    fn can_splice(&self, raw: &[u8]) -> bool {
        if self.table || !self.filter.labels.is_empty() || !self.filter.fields.is_empty() {
            return false;
        }
        let text = String::from_utf8_lossy(raw);
        text.contains(&self.version_needles.0) && text.contains(&self.version_needles.1)
    }

    fn splice(ty: &str, raw: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(raw.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        out.extend_from_slice(raw);
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    /// Turn a store event into the watch event this watcher sees, if any.
    fn translate(&self, ev: &WatchEvent) -> Option<Bytes> {
        let ty = ev.kind.as_str();
        if self.can_splice(&ev.object) {
            return Some(Self::splice(ty, &ev.object));
        }
        let obj = ev.object_value()?;
        let now = self.filter.matches(&obj);
        match ev.kind {
            EventType::Added => now.then(|| self.line("ADDED", &obj)),
            EventType::Deleted => now.then(|| self.line("DELETED", &obj)),
            EventType::Modified => {
                let before = ev.prev_value().is_none_or(|p| self.filter.matches(&p));
                match (before, now) {
                    (true, true) => Some(self.line("MODIFIED", &obj)),
                    (false, true) => Some(self.line("ADDED", &obj)),
                    (true, false) => Some(self.line("DELETED", &obj)),
                    (false, false) => None,
                }
            }
        }
    }
}

fn expired_line(msg: &str) -> Bytes {
    let mut s = json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": msg, "reason": "Expired", "code": 410}})
    .to_string();
    s.push('\n');
    Bytes::from(s)
}

pub async fn watch(
    state: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let filter = Arc::new(Filter::from_query(&t.rt, q)?);
    let ctx = WatchCtx {
        rt: t.rt.clone(),
        table: wants_table(headers),
        filter: filter.clone(),
        version_needles: (
            format!("\"apiVersion\":\"{}\"", t.rt.api_version()),
            format!("\"kind\":\"{}\"", t.rt.kind),
        ),
    };
    let prefix = t.rt.ns_prefix(t.namespace.as_deref());
    let prefix = match filter.fields.exact_name() {
        Some(n) if t.rt.namespaced && t.namespace.is_some() => format!("{prefix}{n}"),
        Some(n) if !t.rt.namespaced => format!("{prefix}{n}"),
        _ => prefix,
    };
    let send_initial = q.flag("sendInitialEvents");
    let bookmarks = q.flag("allowWatchBookmarks");
    let rv_param = q.get("resourceVersion").unwrap_or("");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    if send_initial && !bookmarks {
        return Err(ApiError::Invalid {
            kind: "ListOptions".into(),
            group: "meta.k8s.io".into(),
            name: String::new(),
            causes: vec![crate::error::Cause::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks=true",
            )],
        });
    }
    // Initial state: for WatchList, for rv unset and for rv=0 (upstream: "start at any").
    let synthetic = send_initial || rv_param.is_empty() || rv_param == "0";
    let (lines_tx, lines_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let mut first: Vec<Bytes> = Vec::new();
    let start = if synthetic {
        // Subscribe first, then list: events after the list revision are delivered live.
        let page = state
            .store
            .list(&prefix, None, None, |o| filter.matches(o))
            .map_err(|e| store_err(e, subject(t)))?;
        let ws = state
            .store
            .watch(&prefix, Some(page.revision))
            .map_err(|e| store_err(e, subject(t)))?;
        for o in &page.items {
            first.push(ctx.line("ADDED", o));
        }
        if send_initial {
            first.push(ctx.bookmark(page.revision, true));
        }
        ws
    } else {
        let rv: u64 = rv_param
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv_param}")))?;
        match state.store.watch(&prefix, Some(rv)) {
            Ok(ws) => ws,
            Err(crate::storage::StoreError::Expired { requested, oldest }) => {
                let body =
                    expired_line(&format!("too old resource version: {requested} ({oldest})"));
                return Ok(stream_response(futures::stream::iter(vec![Ok::<
                    _,
                    std::io::Error,
                >(
                    body
                )])));
            }
            Err(e) => return Err(store_err(e, subject(t))),
        }
    };
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let deadline = timeout.map(|d| tokio::time::Instant::now() + d);
        let mut rev_seen = start.after;
        for b in first {
            if lines_tx.send(Ok(b)).await.is_err() {
                return;
            }
        }
        for ev in &start.replay {
            if let Some(b) = ctx.translate(ev) {
                if lines_tx.send(Ok(b)).await.is_err() {
                    return;
                }
            }
            rev_seen = rev_seen.max(ev.rev);
        }
        let mut live = start.live;
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => return,
                _ = shutdown.cancelled() => return,
                _ = lines_tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    if lines_tx.send(Ok(ctx.bookmark(rev_seen, false))).await.is_err() { return; }
                }
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if ev.rev <= rev_seen || !ev.key.starts_with(&start.prefix) { continue; }
                        rev_seen = ev.rev;
                        if let Some(b) = ctx.translate(&ev) {
                            if lines_tx.send(Ok(b)).await.is_err() { return; }
                        }
                    }
                    // A slow watcher: end the stream; the client resumes from its last rv.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    let stream = futures::stream::unfold(lines_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(stream_response(stream))
}

fn stream_response<S>(s: S) -> Response
where
    S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let mut resp = Body::from_stream(s).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
