//! Per-resource rules applied between decoding a request and storing it: server-owned
//! metadata (uid, creationTimestamp, generation, resourceVersion), generateName, defaulting,
//! validation, the spec/status split of the status subresource and immutable fields.

pub mod defaults;
pub mod events;
pub mod validate;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, Cause};
use crate::resources::ResourceType;

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let m = obj.as_object_mut()?;
    if !m.get("metadata").is_some_and(Value::is_object) {
        m.insert("metadata".into(), json!({}));
    }
    m.get_mut("metadata").and_then(Value::as_object_mut)
}

pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn random_suffix() -> String {
    use rand::Rng;
    // Upstream's alphabet avoids vowels and easily confused characters.
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
        .collect()
}

/// Kinds without a spec/status split whose every change bumps generation (none) vs kinds with
/// a spec: generation tracks `.spec` (and a few top-level fields for some kinds).
fn generation_fields(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("kind");
        m.remove("apiVersion");
    }
    v
}

fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::Invalid {
        kind: rt.kind.clone(),
        group: rt.group.clone(),
        name: name.into(),
        causes,
    }
}

/// Check the request body's apiVersion/kind against the URL's resource.
pub fn check_type(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if (!kind.is_empty() && kind != rt.kind) || (!av.is_empty() && av != rt.api_version()) {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if !obj.is_object() {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    }
    Ok(())
}

/// Prepare an object for create: fill server-owned metadata, default and validate.
pub fn prepare_create(
    rt: &ResourceType,
    ns: Option<&str>,
    mut obj: Value,
) -> Result<Value, ApiError> {
    check_type(rt, &obj)?;
    let kind = rt.kind.clone();
    let api_version = rt.api_version();
    if let Some(m) = obj.as_object_mut() {
        m.insert("kind".into(), json!(kind));
        m.insert("apiVersion".into(), json!(api_version));
    }
    if rt.group == "events.k8s.io" {
        obj = events::to_core(obj);
    }
    let Some(md) = meta_mut(&mut obj) else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    let body_ns = md
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    if rt.namespaced {
        let ns = ns.unwrap_or("default");
        if let Some(b) = &body_ns {
            if !b.is_empty() && b != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
        md.insert("namespace".into(), json!(ns));
    } else {
        md.remove("namespace");
    }
    let name = md
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        if let Some(g) = md
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
        {
            let base: String = g.chars().take(58).collect();
            md.insert("name".into(), json!(format!("{base}{}", random_suffix())));
        }
    }
    md.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    md.insert("creationTimestamp".into(), json!(now_rfc3339()));
    md.remove("resourceVersion");
    md.remove("deletionTimestamp");
    md.remove("deletionGracePeriodSeconds");
    md.remove("selfLink");
    if obj.get("spec").is_some() || rt.custom {
        if let Some(md) = meta_mut(&mut obj) {
            md.insert("generation".into(), json!(1));
        }
    }
    defaults::apply(&rt.kind, &mut obj);
    validate_all(rt, &obj, None)?;
    Ok(obj)
}

fn validate_all(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = name_of(obj).to_string();
    let mut causes = Vec::new();
    validate::name(&rt.kind, &name, &mut causes);
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let val = v.as_str().unwrap_or("");
            let ok = val.len() <= 63
                && val
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && (val.is_empty()
                    || (val.starts_with(|c: char| c.is_ascii_alphanumeric())
                        && val.ends_with(|c: char| c.is_ascii_alphanumeric())));
            if !ok {
                causes.push(Cause::invalid(
                    "metadata.labels",
                    val,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ));
            }
            if k.is_empty() {
                causes.push(Cause::invalid(
                    "metadata.labels",
                    k,
                    "name part must be non-empty",
                ));
            }
        }
    }
    causes.extend(validate::object(&rt.kind, obj));
    if let Some(old) = old {
        causes.extend(validate::immutable(&rt.kind, old, obj));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(rt, &name, causes))
    }
}

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteScope {
    /// The main resource: everything but `.status` (for kinds with a status subresource).
    Main,
    /// The status subresource: only `.status`.
    Status,
}

/// Prepare a replacement of `old` by `new`: keep server-owned metadata, apply the
/// spec/status split, bump generation on spec changes, default and validate.
pub fn prepare_update(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    scope: WriteScope,
) -> Result<Value, ApiError> {
    check_type(rt, &new)?;
    if let Some(m) = new.as_object_mut() {
        m.insert("kind".into(), json!(rt.kind));
        m.insert("apiVersion".into(), json!(rt.api_version()));
    }
    if rt.group == "events.k8s.io" {
        new = events::to_core(new);
    }
    let old_name = name_of(old).to_string();
    let new_name = name_of(&new).to_string();
    if !new_name.is_empty() && new_name != old_name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({new_name}) does not match the name on the URL ({old_name})"
        )));
    }
    let old_md = meta(old).cloned().unwrap_or_default();
    match scope {
        WriteScope::Status => {
            // Only status (and nothing of metadata but labels/annotations? upstream: status only).
            let status = new.get("status").cloned();
            let mut out = old.clone();
            if let Some(m) = out.as_object_mut() {
                match status {
                    Some(s) => m.insert("status".into(), s),
                    None => m.remove("status"),
                };
            }
            return Ok(out);
        }
        WriteScope::Main => {
            if rt.has_status {
                if let Some(m) = new.as_object_mut() {
                    match old.get("status") {
                        Some(s) => m.insert("status".into(), s.clone()),
                        None => m.remove("status"),
                    };
                }
            }
        }
    }
    let Some(md) = meta_mut(&mut new) else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    md.insert("name".into(), json!(old_name));
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "generation",
    ] {
        match old_md.get(k) {
            Some(v) => md.insert(k.into(), v.clone()),
            None => md.remove(k),
        };
    }
    if old_md.contains_key("deletionTimestamp") {
        // Finalizers may only be removed from an object being deleted, not added.
        let old_f: Vec<Value> = old_md
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(new_f) = md.get("finalizers").and_then(Value::as_array) {
            if new_f.iter().any(|f| !old_f.contains(f)) {
                return Err(ApiError::Invalid {
                    kind: rt.kind.clone(),
                    group: rt.group.clone(),
                    name: old_name,
                    causes: vec![Cause::forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted",
                    )],
                });
            }
        }
    }
    defaults::apply(&rt.kind, &mut new);
    if generation_fields(old) != generation_fields(&new) {
        let g = old_md
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        if let Some(md) = meta_mut(&mut new) {
            md.insert("generation".into(), json!(g));
        }
    }
    validate_all(rt, &new, Some(old))?;
    Ok(new)
}

/// True once an object marked for deletion has no finalizers left.
pub fn ready_to_vanish(obj: &Value) -> bool {
    let md = meta(obj);
    md.and_then(|m| m.get("deletionTimestamp")).is_some()
        && md
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty())
}
