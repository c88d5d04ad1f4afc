//! OpenAPI v3 (`/openapi/v3` index and one document per group-version). The documents declare
//! the `fieldValidation` query parameter on each PATCH operation with its
//! `x-kubernetes-group-version-kind`, which is what kubectl and helm check before leaving
//! validation to the server. Schemas for `kubectl explain` are not served yet.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::handlers::Shared;
use crate::resources::Catalog;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn document(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    let types = catalog.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let base = format!("/{}", gv_path(group, version));
    let mut paths = Map::new();
    let fv = json!([{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}]);
    for rt in types
        .iter()
        .filter(|t| t.verbs().iter().any(|v| v == "patch"))
    {
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let item = if rt.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{base}/{}/{{name}}", rt.plural)
        };
        let coll = if rt.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
        } else {
            format!("{base}/{}", rt.plural)
        };
        let op = |verb: &str| {
            json!({"operationId": format!("{verb}{}", rt.kind), "x-kubernetes-action": verb,
                   "x-kubernetes-group-version-kind": gvk, "parameters": fv,
                   "responses": {"200": {"description": "OK"}}})
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
        paths.insert(coll, json!({"post": op("post"), "get": op("list")}));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.35.0"},
                "paths": paths, "components": {"schemas": {}}}),
    )
}

fn etag_of(v: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    format!("{:016X}", h.finish())
}

pub async fn index(State(state): State<Shared>) -> Response {
    let catalog = state.catalog();
    let mut paths = Map::new();
    for (g, vs) in catalog.group_versions() {
        for v in vs {
            if let Some(doc) = document(&catalog, &g, &v) {
                let p = gv_path(&g, &v);
                paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", etag_of(&doc.to_string()))}));
            }
        }
    }
    crate::handlers::json_response(StatusCode::OK, &json!({"paths": paths}), &[])
}

pub async fn gv(
    State(state): State<Shared>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let (g, v) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return ApiError::UnknownPath.into_response(),
    };
    let Some(doc) = document(&state.catalog(), g, v) else {
        return ApiError::UnknownPath.into_response();
    };
    let body = doc.to_string();
    let etag = format!("\"{}\"", etag_of(&body));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(e) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, e);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, immutable"),
    );
    r
}
