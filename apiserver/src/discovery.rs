//! Discovery: `/version`, `/api`, `/apis` (aggregated `apidiscovery.k8s.io/v2` when asked,
//! legacy otherwise) and the per-group-version `APIResourceList`s.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::{json_response, Shared};
use crate::resources::{Catalog, ResourceType};

pub const AGGREGATED_CT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',').any(|p| {
                p.contains("as=APIGroupDiscoveryList")
                    && p.contains("v=v2")
                    && !p.contains("v=v2beta1")
            })
        })
}

fn aggregated(v: &Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(AGGREGATED_CT),
    );
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

pub async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"major": "1", "minor": "35", "emulationMajor": "1", "emulationMinor": "35",
                "minCompatibilityMajor": "1", "minCompatibilityMinor": "34",
                "gitVersion": format!("v1.35.0-k1s.{}", env!("CARGO_PKG_VERSION")),
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
                "goVersion": "", "compiler": "rustc", "platform": format!("linux/{}", arch())}),
        &[],
    )
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn resource_entry(rt: &ResourceType) -> Value {
    let mut subs = Vec::new();
    if rt.has_status {
        subs.push(json!({"subresource": "status", "responseKind": gvk(&rt.group, &rt.version, &rt.kind), "verbs": ["get", "patch", "update"]}));
    }
    if rt.has_scale {
        subs.push(json!({"subresource": "scale", "responseKind": gvk("autoscaling", "v1", "Scale"), "verbs": ["get", "patch", "update"]}));
    }
    for (sub, g, v, k) in &rt.extra_subresources {
        let verbs = sub_verbs(sub);
        subs.push(json!({"subresource": sub, "responseKind": gvk(g, v, k), "verbs": verbs}));
    }
    let mut e = json!({
        "resource": rt.plural,
        "singularResource": rt.singular,
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "responseKind": gvk(&rt.group, &rt.version, &rt.kind),
        "verbs": rt.verbs(),
    });
    if !rt.short_names.is_empty() {
        e["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        e["categories"] = json!(rt.categories);
    }
    if !subs.is_empty() {
        e["subresources"] = Value::Array(subs);
    }
    e
}

fn sub_verbs(sub: &str) -> Vec<&'static str> {
    match sub {
        "log" => vec!["get"],
        "exec" | "attach" | "portforward" => vec!["create", "get"],
        "binding" | "eviction" | "token" => vec!["create"],
        "finalize" => vec!["update"],
        _ => vec!["get", "patch", "update"],
    }
}

fn group_discovery(catalog: &Catalog, group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let res: Vec<Value> = catalog
                .in_group_version(group, v)
                .iter()
                .map(|r| resource_entry(r))
                .collect();
            json!({"version": v, "resources": res, "freshness": "Current"})
        })
        .collect();
    let md = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": md, "versions": vs})
}

pub async fn api(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let catalog = state.catalog();
    if wants_aggregated(&headers) {
        let core = group_discovery(&catalog, "", &["v1".to_string()]);
        return aggregated(
            &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                   "metadata": {}, "items": [core]}),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
        &[],
    )
}

pub async fn apis(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let catalog = state.catalog();
    let groups: Vec<(String, Vec<String>)> = catalog
        .group_versions()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .collect();
    if wants_aggregated(&headers) {
        let items: Vec<Value> = groups
            .iter()
            .map(|(g, vs)| group_discovery(&catalog, g, vs))
            .collect();
        return aggregated(
            &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                   "metadata": {}, "items": items}),
        );
    }
    let list: Vec<Value> = groups.iter().map(|(g, vs)| group_entry(g, vs)).collect();
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}),
        &[],
    )
}

fn group_entry(g: &str, vs: &[String]) -> Value {
    let versions: Vec<Value> = vs
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": g, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or(json!({}))})
}

fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    let types = catalog.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut res = Vec::new();
    for rt in &types {
        let mut e = json!({"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                           "kind": rt.kind, "verbs": rt.verbs()});
        if !rt.short_names.is_empty() {
            e["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            e["categories"] = json!(rt.categories);
        }
        res.push(e);
        if rt.has_status {
            res.push(json!({"name": format!("{}/status", rt.plural), "singularName": "", "namespaced": rt.namespaced, "kind": rt.kind, "verbs": ["get", "patch", "update"]}));
        }
        if rt.has_scale {
            res.push(json!({"name": format!("{}/scale", rt.plural), "singularName": "", "namespaced": rt.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        for (sub, g, v, k) in &rt.extra_subresources {
            let mut s = json!({"name": format!("{}/{sub}", rt.plural), "singularName": "", "namespaced": rt.namespaced, "kind": k, "verbs": sub_verbs(sub)});
            if !g.is_empty() {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            res.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}),
    )
}

pub async fn core_v1(State(state): State<Shared>) -> Response {
    match resource_list(&state.catalog(), "", "v1") {
        Some(v) => json_response(StatusCode::OK, &v, &[]),
        None => ApiError::UnknownPath.into_response(),
    }
}

pub async fn group_version(
    State(state): State<Shared>,
    Path((group, version)): Path<(String, String)>,
) -> Response {
    match resource_list(&state.catalog(), &group, &version) {
        Some(v) => json_response(StatusCode::OK, &v, &[]),
        None => ApiError::UnknownPath.into_response(),
    }
}

pub async fn group(State(state): State<Shared>, Path(group): Path<String>) -> Response {
    let catalog = state.catalog();
    match catalog
        .group_versions()
        .into_iter()
        .find(|(g, _)| *g == group)
    {
        Some((g, vs)) => {
            let mut e = group_entry(&g, &vs);
            e["kind"] = json!("APIGroup");
            e["apiVersion"] = json!("v1");
            json_response(StatusCode::OK, &e, &[])
        }
        None => ApiError::UnknownPath.into_response(),
    }
}
