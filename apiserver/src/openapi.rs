//! OpenAPI v3 (`/openapi/v3` index and one document per group-version). The documents declare
//! the `fieldValidation` query parameter on each PATCH operation with its
//! `x-kubernetes-group-version-kind`, which is what kubectl and helm check before leaving
//! validation to the server, and carry the component schemas of the group-version's kinds
//! (upstream's descriptions, for `kubectl explain`): built-in kinds from the compressed document
//! `build.rs` writes, custom resources from their CRD's `openAPIV3Schema`. Nothing is cached:
//! a document is built when asked for, and the index's hashes come from a cheap signature.

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

/// Built-in schemas: `{"roots": [[group, version, kind, schema name]...], "schemas": {...}}`.
static BUILTIN_SCHEMAS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/openapi-schemas.json.gz"));

fn builtin_schemas() -> Value {
    use std::io::Read;
    let mut text = Vec::new();
    let mut gz = flate2::read::GzDecoder::new(BUILTIN_SCHEMAS);
    if gz.read_to_end(&mut text).is_err() {
        return json!({});
    }
    serde_json::from_slice(&text).unwrap_or_else(|_| json!({}))
}

const REF_PREFIX: &str = "#/components/schemas/";

/// Copy schema `name` and every schema it references from `all` into `out`.
fn closure(name: &str, all: &Map<String, Value>, out: &mut Map<String, Value>) {
    if out.contains_key(name) {
        return;
    }
    let Some(schema) = all.get(name) else {
        return;
    };
    out.insert(name.to_string(), schema.clone());
    let mut refs = Vec::new();
    collect_refs(schema, &mut refs);
    for r in refs {
        closure(&r, all, out);
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x.as_str()) {
                    ("$ref", Some(r)) => {
                        if let Some(n) = r.strip_prefix(REF_PREFIX) {
                            out.push(n.to_string());
                        }
                    }
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn crd_key(rt: &crate::resources::ResourceType) -> String {
    format!(
        "/apiextensions.k8s.io/customresourcedefinitions/{}.{}",
        rt.plural, rt.group
    )
}

/// The component schemas of a group-version.
fn schemas(state: &Shared, catalog: &Catalog, group: &str, version: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let types = catalog.in_group_version(group, version);
    let builtin = builtin_schemas();
    let empty = Map::new();
    let all = builtin
        .get("schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for root in builtin
        .get("roots")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |i: usize| root.get(i).and_then(Value::as_str).unwrap_or_default();
        let (g, v, kind, name) = (field(0), field(1), field(2), field(3));
        if g != group || v != version || !types.iter().any(|t| t.kind == kind && !t.custom) {
            continue;
        }
        closure(name, all, &mut out);
        if let Some(s) = out.get_mut(name) {
            s["x-kubernetes-group-version-kind"] =
                json!([{"group": g, "version": v, "kind": kind}]);
        }
    }
    for rt in types.iter().filter(|t| t.custom) {
        let Ok(Some(crd)) = state.store.get(&crd_key(rt)) else {
            continue;
        };
        let schema = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
            .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
            .cloned();
        let mut schema = schema.unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        // As upstream: the standard fields are always described.
        if let Some(props) = schema
            .as_object_mut()
            .map(|o| o.entry("properties").or_insert(json!({})))
            .and_then(Value::as_object_mut)
        {
            if let Some(m) = all
                .get("io.k8s.api.core.v1.Pod")
                .and_then(|p| p.get("properties"))
            {
                for f in ["apiVersion", "kind", "metadata"] {
                    if let Some(d) = m.get(f) {
                        props.entry(f).or_insert(d.clone());
                    }
                }
            }
        }
        closure(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            all,
            &mut out,
        );
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
        let reversed: Vec<&str> = rt.group.split('.').rev().collect();
        out.insert(
            format!("{}.{}.{}", reversed.join("."), rt.version, rt.kind),
            schema,
        );
    }
    out
}

/// What a group-version's document depends on, for the index's `hash` (no document built).
fn signature(state: &Shared, catalog: &Catalog, group: &str, version: &str) -> String {
    let mut sig = String::from(env!("CARGO_PKG_VERSION"));
    for rt in catalog.in_group_version(group, version) {
        sig.push_str(&format!(
            "|{}/{}/{}/{:?}",
            rt.kind,
            rt.plural,
            rt.namespaced,
            rt.verbs()
        ));
        if rt.custom {
            if let Ok(Some(crd)) = state.store.get(&crd_key(&rt)) {
                sig.push_str(&crate::storage::object_rev(&crd).to_string());
            }
        }
    }
    sig
}

fn document(state: &Shared, catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
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
    let schemas = schemas(state, catalog, group, version);
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.35.0"},
                "paths": paths, "components": {"schemas": schemas}}),
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
            if catalog.in_group_version(&g, &v).is_empty() {
                continue;
            }
            let p = gv_path(&g, &v);
            let hash = etag_of(&signature(&state, &catalog, &g, &v));
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
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
    let catalog = state.catalog();
    let etag = format!("\"{}\"", etag_of(&signature(&state, &catalog, g, v)));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let Some(doc) = document(&state, &catalog, g, v) else {
        return ApiError::UnknownPath.into_response();
    };
    let body = doc.to_string();
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
