//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: the API server checks the pod and the
//! container like upstream (and answers with upstream's messages), then proxies the request to
//! the kubelet's streaming endpoint, a unix socket only root can open
//! (`<data-dir>/kubelet/kubelet.sock`). Upgrades (WebSocket, SPDY) are passed through
//! byte for byte once the kubelet answers 101.
//!
//! `nodes/<node>/proxy/<path>` reaches the kubelet's read-only endpoints (`metrics`,
//! `stats/summary`); the streaming ones stay behind the pod checks above.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::handlers::path::Target;
use crate::handlers::read::load;
use crate::handlers::{Query, Shared};

/// Pod subresources served by the node.
pub fn is_streaming(t: &Target) -> bool {
    t.rt.group.is_empty()
        && t.rt.plural == "pods"
        && t.name.is_some()
        && matches!(
            t.sub.as_deref(),
            Some("log" | "exec" | "attach" | "portforward")
        )
}

/// `nodes/<name>/proxy/...`.
pub fn is_node_proxy(t: &Target) -> bool {
    t.rt.group.is_empty()
        && t.rt.plural == "nodes"
        && t.name.is_some()
        && t.sub.as_deref() == Some("proxy")
}

/// Kubelet paths served through the node proxy.
const NODE_PROXY_PATHS: [&str; 2] = ["metrics", "stats/summary"];

/// Proxies `GET nodes/<name>/proxy/<path>` to the kubelet once the Node exists (every
/// Node is this machine's kubelet).
pub async fn node_proxy(
    state: &Shared,
    t: &Target,
    parts: Parts,
    body: Body,
) -> ApiResult<Response> {
    load(state, t)?;
    let name = t.name.as_deref().unwrap_or_default();
    let prefix = format!("/api/v1/nodes/{name}/proxy/");
    let rest = parts.uri.path().strip_prefix(&prefix).unwrap_or_default();
    if parts.method != Method::GET {
        return Err(ApiError::MethodNotAllowed(
            "the server does not allow this method on the requested resource".into(),
        ));
    }
    if !NODE_PROXY_PATHS.contains(&rest.trim_end_matches('/')) {
        return Err(ApiError::NotFound(crate::error::Subject::new(
            "nodes", "", name,
        )));
    }
    let uri: Uri = match parts.uri.query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    }
    .parse()
    .map_err(|_| ApiError::BadRequest("invalid request parameters".into()))?;
    proxy(state, parts, body, uri, None).await
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request is about: the `container` parameter, else the default-container
/// annotation, else the only container.
fn container_name(pod: &Value, q: &Query) -> ApiResult<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers = names(pod.pointer("/spec/containers"));
    let init = names(pod.pointer("/spec/initContainers"));
    let ephemeral = names(pod.pointer("/spec/ephemeralContainers"));
    let chosen = match q.get("container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => {
            let annotated = pod
                .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                .and_then(Value::as_str)
                .filter(|c| containers.iter().any(|n| n == c));
            match (annotated, containers.as_slice()) {
                (Some(c), _) => c.to_string(),
                (None, [only]) => only.clone(),
                _ => {
                    let mut msg = format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        containers.join(" ")
                    );
                    if !init.is_empty() {
                        msg.push_str(&format!(
                            " or one of the init containers: [{}]",
                            init.join(" ")
                        ));
                    }
                    return Err(ApiError::BadRequest(msg));
                }
            }
        }
    };
    if !containers.contains(&chosen) && !init.contains(&chosen) && !ephemeral.contains(&chosen) {
        return Err(ApiError::BadRequest(format!(
            "container {chosen} is not valid for pod {name}"
        )));
    }
    Ok(chosen)
}

fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|k| pod["status"][k].as_array())
    .flatten()
    .find(|s| s["name"].as_str() == Some(container))
}

/// The runtime ID from a `containerID` such as `k1s://abc`.
fn runtime_id(v: &Value) -> Option<String> {
    let id = v.as_str()?;
    let id = id.split_once("://").map_or(id, |(_, rest)| rest);
    (!id.is_empty()).then(|| id.to_string())
}

/// Which container's log to read, as upstream's kubelet decides it.
fn log_container_id(pod: &Value, container: &str, previous: bool) -> ApiResult<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let Some(st) = container_status(pod, container) else {
        return Err(ApiError::BadRequest(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    let last = runtime_id(&st["lastState"]["terminated"]["containerID"]);
    if previous {
        return last.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            ))
        });
    }
    if let Some(id) = runtime_id(&st["containerID"]) {
        if st["state"]["waiting"].is_null() {
            return Ok(id);
        }
    }
    if let Some(id) = last {
        return Ok(id);
    }
    let reason = st["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or("ContainerCreating");
    Err(ApiError::BadRequest(format!(
        "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
    )))
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Checks the request against the pod and proxies it to the kubelet.
pub async fn handle(
    state: &Shared,
    t: &Target,
    q: &Query,
    mut parts: Parts,
    body: Body,
) -> ApiResult<Response> {
    let pod = load(state, t)?;
    let ns = t.namespace.as_deref().unwrap_or_default();
    let name = t.name.as_deref().unwrap_or_default();
    let sub = t.sub.as_deref().unwrap_or_default();
    if sub == "log" && parts.method != Method::GET {
        return Err(ApiError::MethodNotAllowed(
            "the server does not allow this method on the requested resource".into(),
        ));
    }
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        return Err(ApiError::BadRequest(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let path = match sub {
        "log" => {
            let c = container_name(&pod, q)?;
            let id = log_container_id(&pod, &c, q.flag("previous"))?;
            format!(
                "/containerLogs/{ns}/{name}/{}?containerID={}&{raw_query}",
                enc(&c),
                enc(&id)
            )
        }
        "exec" | "attach" => {
            let c = container_name(&pod, q)?;
            let st = container_status(&pod, &c);
            let id = st
                .filter(|s| s["state"]["running"].is_object())
                .and_then(|s| runtime_id(&s["containerID"]))
                .ok_or_else(|| ApiError::BadRequest(format!("container not found (\"{c}\")")))?;
            format!(
                "/{sub}/{ns}/{name}/{}?containerID={}&{raw_query}",
                enc(&c),
                enc(&id)
            )
        }
        _ => {
            if pod["status"]["phase"].as_str() != Some("Running") {
                return Err(ApiError::BadRequest(format!(
                    "unable to forward port because pod is not running. Current status={}",
                    pod["status"]["phase"].as_str().unwrap_or("Unknown")
                )));
            }
            let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
            format!("/portforward/{ns}/{name}?podUID={}&{raw_query}", enc(uid))
        }
    };
    let uri: Uri = path
        .parse()
        .map_err(|_| ApiError::BadRequest("invalid request parameters".into()))?;
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    proxy(state, parts, body, uri, client_upgrade).await
}

fn dial_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::ServiceUnavailable(format!("error dialing backend: {e}"))
}

async fn proxy(
    state: &Shared,
    parts: Parts,
    body: Body,
    uri: Uri,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let stream = tokio::net::UnixStream::connect(&state.kubelet_socket)
        .await
        .map_err(dial_error)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(dial_error)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    let mut req = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(body)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    for (k, v) in &parts.headers {
        if k == header::AUTHORIZATION || k == header::HOST {
            continue;
        }
        req.headers_mut().append(k.clone(), v.clone());
    }
    req.headers_mut()
        .insert(header::HOST, HeaderValue::from_static("kubelet"));
    let mut resp = sender.send_request(req).await.map_err(dial_error)?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::BadRequest(
                "the connection cannot be upgraded".into(),
            ));
        };
        let node_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (client, node) = match tokio::try_join!(client_upgrade, node_upgrade) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade through the API server failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut node = TokioIo::new(node);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut node).await;
        });
        let mut out = Response::new(Body::empty());
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *out.headers_mut() = resp.headers().clone();
        return Ok(out);
    }
    let (rparts, rbody) = resp.into_parts();
    let mut out = Response::new(Body::new(rbody));
    *out.status_mut() = rparts.status;
    for k in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
        if let Some(v) = rparts.headers.get(&k) {
            out.headers_mut().insert(k, v.clone());
        }
    }
    Ok(out)
}

/// Asks the kubelet for its stats summary (CPU rates over a short window, memory).
async fn kubelet_summary(state: &Shared) -> ApiResult<Value> {
    use http_body_util::BodyExt;
    let stream = tokio::net::UnixStream::connect(&state.kubelet_socket)
        .await
        .map_err(dial_error)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(dial_error)?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri("/stats/summary")
        .header(header::HOST, "kubelet")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(dial_error)?;
    if !resp.status().is_success() {
        return Err(ApiError::ServiceUnavailable(format!(
            "the node's metrics are not available ({})",
            resp.status()
        )));
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(dial_error)?
        .to_bytes();
    serde_json::from_slice(&body).map_err(dial_error)
}

/// CPU as metrics-server writes it: nanocores (`123456n`).
fn cpu(v: &Value) -> String {
    format!("{}n", v["cpuNanoCores"].as_u64().unwrap_or(0))
}

/// Memory as metrics-server writes it: KiB (`1234Ki`).
fn memory(v: &Value) -> String {
    format!(
        "{}Ki",
        v["memoryWorkingSetBytes"].as_u64().unwrap_or(0) / 1024
    )
}

/// `metrics.k8s.io/v1beta1` pods and nodes (what `kubectl top` reads).
pub async fn metrics(state: &Shared, t: &Target, q: &Query) -> ApiResult<Response> {
    use crate::selectors::{FieldSelector, LabelSelector};
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), &t.rt.kind)?;
    let summary = kubelet_summary(state).await?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let window = format!(
        "{}s",
        summary["windowSeconds"]
            .as_f64()
            .unwrap_or(1.0)
            .round()
            .max(1.0)
    );
    let api_version = t.rt.api_version();
    let catalog = state.catalog();
    let mut items = Vec::new();
    if t.rt.plural == "nodes" {
        let nodes = catalog
            .find("", "v1", "nodes")
            .ok_or(ApiError::UnknownPath)?;
        let page = state
            .store
            .list(&nodes.key_prefix(), None, None, |_| true)
            .map_err(|e| ApiError::Storage(e.to_string()))?;
        // One machine: every node object is this node.
        for n in page.items {
            let name = n["metadata"]["name"].as_str().unwrap_or_default();
            if t.name.as_deref().is_some_and(|want| want != name)
                || !labels.matches(&n)
                || !fields.matches(&n)
            {
                continue;
            }
            items.push(serde_json::json!({
                "kind": "NodeMetrics", "apiVersion": api_version,
                "metadata": {"name": name, "labels": n["metadata"]["labels"], "creationTimestamp": now},
                "timestamp": now, "window": window,
                "usage": {"cpu": cpu(&summary["node"]), "memory": memory(&summary["node"])},
            }));
        }
    } else {
        let pods = catalog
            .find("", "v1", "pods")
            .ok_or(ApiError::UnknownPath)?;
        let by_uid: std::collections::HashMap<&str, &Value> = summary["pods"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p["uid"].as_str()?, p)))
                    .collect()
            })
            .unwrap_or_default();
        let page = state
            .store
            .list(&pods.ns_prefix(t.namespace.as_deref()), None, None, |_| {
                true
            })
            .map_err(|e| ApiError::Storage(e.to_string()))?;
        for p in page.items {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            if t.name.as_deref().is_some_and(|want| want != name)
                || !labels.matches(&p)
                || !fields.matches(&p)
            {
                continue;
            }
            let Some(stats) = p["metadata"]["uid"].as_str().and_then(|u| by_uid.get(u)) else {
                continue;
            };
            let containers: Vec<Value> = stats["containers"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            serde_json::json!({"name": c["name"], "usage": {"cpu": cpu(c), "memory": memory(c)}})
                        })
                        .collect()
                })
                .unwrap_or_default();
            items.push(serde_json::json!({
                "kind": "PodMetrics", "apiVersion": api_version,
                "metadata": {"name": name, "namespace": p["metadata"]["namespace"],
                             "labels": p["metadata"]["labels"], "creationTimestamp": now},
                "timestamp": now, "window": window, "containers": containers,
            }));
        }
    }
    let body = match &t.name {
        Some(name) => items.pop().ok_or_else(|| {
            ApiError::NotFound(crate::error::Subject::new(&t.rt.plural, &t.rt.group, name))
        })?,
        None => serde_json::json!({
            "kind": t.rt.list_kind(), "apiVersion": api_version,
            "metadata": {}, "items": items,
        }),
    };
    Ok(crate::handlers::json_response(StatusCode::OK, &body, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]},
            "status": {"containerStatuses": [
                {"name": "a", "containerID": "k1s://a2", "state": {"running": {}},
                 "lastState": {"terminated": {"containerID": "k1s://a1"}}},
                {"name": "b", "containerID": "k1s://b1",
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {}},
            ]}
        })
    }

    #[test]
    fn container_choice_and_messages() {
        let p = pod();
        let q = Query::parse(None);
        let e = container_name(&p, &q).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]")
        );
        let q = Query::parse(Some("container=zz"));
        let e = container_name(&p, &q).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("container zz is not valid for pod p"));
        let q = Query::parse(Some("container=i"));
        assert_eq!(container_name(&p, &q).ok().as_deref(), Some("i"));
    }

    #[test]
    fn log_container_like_the_kubelet() {
        let p = pod();
        assert_eq!(log_container_id(&p, "a", false).ok().as_deref(), Some("a2"));
        assert_eq!(log_container_id(&p, "a", true).ok().as_deref(), Some("a1"));
        let e = log_container_id(&p, "b", true).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("previous terminated container \"b\" in pod \"p\" not found")
        );
        let e = log_container_id(&p, "b", false)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("container \"b\" in pod \"p\" is waiting to start: CrashLoopBackOff")
        );
    }
}
