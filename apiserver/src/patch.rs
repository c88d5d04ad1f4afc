//! Strategic merge patch for built-in kinds: maps merge, lists with a merge key merge by that
//! key, other lists are replaced; `$patch`, `$retainKeys`, `$setElementOrder/<f>` and
//! `$deleteFromPrimitiveList/<f>` directives. Merge keys follow the Kubernetes patch metadata
//! (`patchMergeKey` tags of the API types).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The merge key of list field `field` found under `parent` (the name of the enclosing
/// field) in an object of `kind`, or None when the list is atomic (replaced).
pub fn merge_key(kind: &str, parent: &str, field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" if kind == "Service" && parent == "spec" => Some("port"),
        "ports" if parent != "spec" || kind != "Service" => Some("containerPort"),
        "hostAliases" => Some("ip"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "podIPs" | "hostIPs" => Some("ip"),
        _ => None,
    }
}

/// Primitive lists merged as sets.
fn set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// Apply a strategic merge patch to `original` for an object of `kind`.
pub fn strategic_merge(kind: &str, original: &Value, patch: &Value) -> Result<Value, ApiError> {
    if !patch.is_object() {
        return Err(bad("strategic merge patch must be a JSON object"));
    }
    Ok(merge_map(kind, "", original, patch, 0)?.unwrap_or(Value::Object(Map::new())))
}

const MAX_DEPTH: usize = 100;

fn merge_map(
    kind: &str,
    parent: &str,
    original: &Value,
    patch: &Value,
    depth: usize,
) -> Result<Option<Value>, ApiError> {
    if depth > MAX_DEPTH {
        return Err(bad("patch nesting is too deep"));
    }
    let Some(p) = patch.as_object() else {
        return Ok(Some(patch.clone()));
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut out = p.clone();
            out.remove("$patch");
            return Ok(Some(Value::Object(out)));
        }
        Some("merge") | None => {}
        Some(other) => return Err(bad(format!("unknown patch type: {other}"))),
    }
    let mut out = original.as_object().cloned().unwrap_or_default();
    if let Some(keep) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep
            .as_array()
            .ok_or_else(|| bad("$retainKeys must be a list of strings"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| bad("$retainKeys must be a list of strings"))
            })
            .collect::<Result<_, _>>()?;
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders: Vec<(&str, &Value)> = Vec::new();
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" {
            continue;
        }
        if let Some(f) = k.strip_prefix("$setElementOrder/") {
            orders.push((f, v));
            continue;
        }
        if let Some(f) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let del = v
                .as_array()
                .ok_or_else(|| bad("$deleteFromPrimitiveList must be a list"))?;
            if let Some(list) = out.get_mut(f).and_then(Value::as_array_mut) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            return Err(bad(format!("unknown patch directive {k}")));
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let cur = out.get(k).cloned().unwrap_or(Value::Null);
        let merged = match v {
            Value::Object(_) => merge_map(
                kind,
                k,
                if cur.is_object() { &cur } else { &Value::Null },
                v,
                depth + 1,
            )?,
            Value::Array(items) => Some(merge_list(kind, parent, k, &cur, items, depth)?),
            other => Some(other.clone()),
        };
        match merged {
            Some(m) => {
                out.insert(k.clone(), m);
            }
            None => {
                out.remove(k);
            }
        }
    }
    for (f, order) in orders {
        let Some(key) = merge_key(kind, parent, f) else {
            continue;
        };
        if let Some(list) = out.get_mut(f).and_then(Value::as_array_mut) {
            reorder(list, order, key);
        }
    }
    Ok(Some(Value::Object(out)))
}

fn reorder(list: &mut [Value], order: &Value, key: &str) {
    let Some(order) = order.as_array() else {
        return;
    };
    let pos = |v: &Value| {
        order
            .iter()
            .position(|o| o.get(key).is_some() && o.get(key) == v.get(key))
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(pos);
}

fn merge_list(
    kind: &str,
    parent: &str,
    field: &str,
    cur: &Value,
    items: &[Value],
    depth: usize,
) -> Result<Value, ApiError> {
    let orig: Vec<Value> = cur.as_array().cloned().unwrap_or_default();
    // A list containing {"$patch": "replace"} replaces the whole list with the rest.
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .collect(),
        ));
    }
    if set_list(field) {
        let mut out = orig;
        for i in items {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        return Ok(Value::Array(out));
    }
    let Some(key) = merge_key(kind, parent, field) else {
        return Ok(Value::Array(items.to_vec()));
    };
    if items.iter().any(|i| !i.is_object()) {
        return Ok(Value::Array(items.to_vec()));
    }
    let mut out = orig;
    for item in items {
        let k = item.get(key);
        let idx = k.and_then(|k| out.iter().position(|o| o.get(key) == Some(k)));
        let is_delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (idx, is_delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                if let Some(m) = merge_map(kind, field, &out[i], item, depth + 1)? {
                    out[i] = m;
                }
            }
            (None, false) => {
                if let Some(m) = merge_map(kind, field, &Value::Null, item, depth + 1)? {
                    out.push(m);
                }
            }
        }
    }
    Ok(Value::Array(out))
}

/// JSON merge patch (RFC 7386).
pub fn merge_patch(original: &Value, patch: &Value) -> Value {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

/// JSON patch (RFC 6902), including `test` ops.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| bad(format!("the provided JSON patch is invalid: {e}")))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| ApiError::Invalid {
        kind: String::new(),
        group: String::new(),
        name: String::new(),
        causes: vec![crate::error::Cause {
            reason: "FieldValueInvalid",
            message: format!("the server rejected our request due to an error in our request: {e}"),
            field: String::new(),
        }],
    })?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_apply_patch() {
        let orig = json!({"spec":{"replicas":1,"template":{"spec":{"containers":[
            {"name":"web","image":"nginx:1.27","env":[{"name":"GREETING","value":"hello"},{"name":"X","value":"1"}]},
            {"name":"side","image":"busybox"}]}}}});
        let patch = json!({"spec":{"replicas":3,"template":{"spec":{
            "$setElementOrder/containers":[{"name":"side"},{"name":"web"}],
            "containers":[{"$setElementOrder/env":[{"name":"GREETING"}],
                "env":[{"name":"GREETING","value":"world"},{"name":"X","$patch":"delete"}],
                "image":"nginx:1.28","name":"web"}]}}}});
        let out = strategic_merge("Deployment", &orig, &patch).expect("patch");
        assert_eq!(out["spec"]["replicas"], 3);
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("list");
        assert_eq!(cs[0]["name"], "side");
        assert_eq!(cs[1]["image"], "nginx:1.28");
        assert_eq!(cs[1]["env"], json!([{"name":"GREETING","value":"world"}]));
    }

    #[test]
    fn directives_and_nulls() {
        let orig = json!({"metadata":{"labels":{"a":"1","b":"2"},"finalizers":["x"]},"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}});
        let patch = json!({"metadata":{"labels":{"a":null},"finalizers":["y"]},"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}});
        let out = strategic_merge("Deployment", &orig, &patch).expect("patch");
        assert_eq!(out["metadata"]["labels"], json!({"b":"2"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
        assert_eq!(out["spec"]["strategy"], json!({"type":"Recreate"}));
        let out = strategic_merge(
            "Deployment",
            &orig,
            &json!({"spec":{"strategy":{"$patch":"replace","type":"Recreate"}}}),
        )
        .expect("p");
        assert_eq!(out["spec"]["strategy"], json!({"type":"Recreate"}));
        assert!(strategic_merge("Pod", &orig, &json!({"$bogus":1})).is_err());
        assert!(strategic_merge("Pod", &orig, &json!([1])).is_err());
    }

    #[test]
    fn service_ports_by_port() {
        let orig = json!({"spec":{"ports":[{"port":80,"targetPort":8080},{"port":443}]}});
        let out = strategic_merge(
            "Service",
            &orig,
            &json!({"spec":{"ports":[{"port":80,"targetPort":9090}]}}),
        )
        .expect("p");
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port":80,"targetPort":9090},{"port":443}])
        );
    }

    #[test]
    fn json_patch_test_op() {
        let orig = json!({"a":1});
        assert!(json_patch(&orig, &json!([{"op":"test","path":"/a","value":2}])).is_err());
        assert_eq!(
            json_patch(&orig, &json!([{"op":"replace","path":"/a","value":2}])).expect("ok"),
            json!({"a":2})
        );
        assert!(json_patch(&orig, &json!({"op":"x"})).is_err());
    }
}
