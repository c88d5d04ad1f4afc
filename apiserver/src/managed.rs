//! `metadata.managedFields` and server-side apply.
//!
//! Field sets use the FieldsV1 encoding: `f:<field>` for a field, `k:<json>` for a list
//! element picked by its merge key, `v:<json>` for a set member and `.` for the element itself.
//! Apply merges the configuration with strategic-merge rules, reports conflicts with fields
//! other managers own (409 unless `force`), and removes fields this manager applied before but
//! no longer applies, when nobody else owns them.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, Cause};
use crate::patch;
use crate::registry::{self, now_rfc3339};

type Path = Vec<String>;

/// The FieldsV1 set of the fields present in `cfg`.
pub fn fields_of(kind: &str, cfg: &Value) -> Value {
    let mut out = Map::new();
    if let Some(m) = cfg.as_object() {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" {
                let mut md = Map::new();
                if let Some(mm) = v.as_object() {
                    for (mk, mv) in mm {
                        if matches!(mk.as_str(), "labels" | "annotations") {
                            md.insert(format!("f:{mk}"), field_set(kind, mk, mv));
                        } else if mk == "finalizers" || mk == "ownerReferences" {
                            md.insert(format!("f:{mk}"), list_set(kind, "metadata", mk, mv));
                        }
                    }
                }
                if !md.is_empty() {
                    out.insert("f:metadata".into(), Value::Object(md));
                }
                continue;
            }
            let inner = match v {
                Value::Array(_) => list_set(kind, "", k, v),
                _ => field_set(kind, k, v),
            };
            out.insert(format!("f:{k}"), inner);
        }
    }
    Value::Object(out)
}

fn field_set(kind: &str, parent: &str, v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let inner = match v {
                    Value::Array(_) => list_set(kind, parent, k, v),
                    _ => field_set(kind, k, v),
                };
                out.insert(format!("f:{k}"), inner);
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

fn list_set(kind: &str, parent: &str, field: &str, v: &Value) -> Value {
    let Some(items) = v.as_array() else {
        return json!({});
    };
    if field == "finalizers" {
        let mut out = Map::new();
        for i in items {
            out.insert(format!("v:{i}"), json!({}));
        }
        return Value::Object(out);
    }
    let Some(key) = patch::merge_key(kind, parent, field) else {
        return json!({});
    };
    let mut out = Map::new();
    for item in items {
        let Some(kv) = item.get(key) else { continue };
        let mut k = Map::new();
        k.insert(key.to_string(), kv.clone());
        let mut inner = field_set(kind, field, item)
            .as_object()
            .cloned()
            .unwrap_or_default();
        inner.insert(".".into(), json!({}));
        out.insert(format!("k:{}", Value::Object(k)), Value::Object(inner));
    }
    Value::Object(out)
}

/// Leaf paths of a FieldsV1 set.
fn leaves(set: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    let Some(m) = set.as_object() else { return };
    if m.is_empty() {
        out.insert(prefix.clone());
        return;
    }
    for (k, v) in m {
        if k == "." {
            out.insert(prefix.clone());
            continue;
        }
        prefix.push(k.clone());
        leaves(v, prefix, out);
        prefix.pop();
    }
}

fn leaf_set(set: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    leaves(set, &mut Vec::new(), &mut out);
    out
}

/// The value at a FieldsV1 path in an object.
fn lookup<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(k) = p.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur
                .as_array()?
                .iter()
                .find(|e| keys.iter().all(|(kk, kv)| e.get(kk) == Some(kv)))?;
        } else if let Some(v) = p.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur = cur.as_array()?.iter().find(|e| **e == want)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Remove the value at a FieldsV1 path.
fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        let next = if let Some(f) = p.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = p.strip_prefix("k:") {
            let Ok(keys) = serde_json::from_str::<Map<String, Value>>(k) else {
                return;
            };
            cur.as_array_mut().and_then(|a| {
                a.iter_mut()
                    .find(|e| keys.iter().all(|(kk, kv)| e.get(kk) == Some(kv)))
            })
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(keys), Some(a)) = (
            serde_json::from_str::<Map<String, Value>>(k),
            cur.as_array_mut(),
        ) {
            a.retain(|e| !keys.iter().all(|(kk, kv)| e.get(kk) == Some(kv)));
        }
    } else if let Some(v) = last.strip_prefix("v:") {
        if let (Ok(want), Some(a)) = (serde_json::from_str::<Value>(v), cur.as_array_mut()) {
            a.retain(|e| *e != want);
        }
    }
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn set_entries(obj: &mut Value, list: Vec<Value>) {
    if let Some(md) = registry::meta_mut(obj) {
        if list.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn same_entry(e: &Value, manager: &str, operation: &str, sub: Option<&str>) -> bool {
    e.get("manager").and_then(Value::as_str) == Some(manager)
        && e.get("operation").and_then(Value::as_str) == Some(operation)
        && e.get("subresource").and_then(Value::as_str) == sub
}

/// Partial object of the leaves of `new` that differ from `old`.
fn changed(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = Map::new();
            for (k, v) in n {
                if matches!(
                    k.as_str(),
                    "managedFields"
                        | "resourceVersion"
                        | "generation"
                        | "uid"
                        | "creationTimestamp"
                ) {
                    continue;
                }
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) if ov.is_object() && v.is_object() => {
                        out.insert(k.clone(), changed(ov, v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

fn merge_sets(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let merged = match out.get(k) {
                    Some(e) => merge_sets(e, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, b) => b.clone(),
    }
}

/// Record a non-apply write by `manager` in managedFields.
/// On create (`old` None) the fields are those the client sent (`sent`), not what defaulting
/// or allocation added, so a later apply can drop them without removing server-set fields.
pub fn record(
    obj: &mut Value,
    old: Option<&Value>,
    sent: Option<&Value>,
    manager: &str,
    operation: &str,
    api_version: &str,
    sub: Option<&str>,
) {
    if let Some(old) = old {
        // Clients may rewrite managedFields themselves (kubectl's SSA migration).
        if obj.pointer("/metadata/managedFields") != old.pointer("/metadata/managedFields")
            && obj.pointer("/metadata/managedFields").is_some()
        {
            return;
        }
    }
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let delta = match (old, sent) {
        (Some(o), _) => changed(o, obj),
        (None, Some(b)) => b.clone(),
        (None, None) => obj.clone(),
    };
    let delta_set = fields_of(&kind, &delta);
    if old.is_some() && delta_set.as_object().is_some_and(Map::is_empty) {
        if let Some(o) = old {
            set_entries(obj, entries(o));
        }
        return;
    }
    let mut list = old.map(entries).unwrap_or_else(|| entries(obj));
    let now = now_rfc3339();
    match list
        .iter_mut()
        .find(|e| same_entry(e, manager, operation, sub))
    {
        Some(e) => {
            let prev = e.get("fieldsV1").cloned().unwrap_or(json!({}));
            e["fieldsV1"] = merge_sets(&prev, &delta_set);
            e["time"] = json!(now);
            e["apiVersion"] = json!(api_version);
        }
        None => {
            let mut e = json!({"manager": manager, "operation": operation, "apiVersion": api_version,
                               "time": now, "fieldsType": "FieldsV1", "fieldsV1": delta_set});
            if let Some(s) = sub {
                e["subresource"] = json!(s);
            }
            list.push(e);
        }
    }
    set_entries(obj, list);
}

/// Replace the entries of a freshly created object with one Apply entry for `manager`.
pub fn set_apply(obj: &mut Value, manager: &str, api_version: &str, cfg: &Value, kind: &str) {
    let e = json!({"manager": manager, "operation": "Apply", "apiVersion": api_version,
                   "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields_of(kind, cfg)});
    set_entries(obj, vec![e]);
}

/// Apply `cfg` as `manager` to `cur`; returns the new object or a 409 with conflicts.
pub fn apply(
    kind: &str,
    cur: &Value,
    cfg: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let mine = fields_of(kind, cfg);
    let my_leaves = leaf_set(&mine);
    let mut list = entries(cur);
    // Compare against the applied result after defaulting, as upstream does, so defaulted
    // fields do not look like changes.
    let mut proposed = patch::strategic_merge(kind, cur, cfg)?;
    crate::registry::defaults::apply(kind, &mut proposed);
    // Conflicts: another manager owns a leaf we set, with a different value.
    let mut conflicts: Vec<(String, Path)> = Vec::new();
    for e in &list {
        if same_entry(e, manager, "Apply", None) {
            continue;
        }
        let mut owner = format!(
            "\"{}\"",
            e.get("manager").and_then(Value::as_str).unwrap_or("")
        );
        if let Some(sub) = e.get("subresource").and_then(Value::as_str) {
            owner = format!("{owner} with subresource \"{sub}\"");
        }
        let theirs = leaf_set(e.get("fieldsV1").unwrap_or(&json!({})));
        for p in my_leaves.intersection(&theirs) {
            // Membership of a keyed list element is not a value.
            if p.last().is_some_and(|l| l.starts_with("k:")) {
                continue;
            }
            if lookup(cur, p) != lookup(&proposed, p) {
                conflicts.push((owner.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Cause> = conflicts
            .iter()
            .map(|(m, p)| Cause {
                reason: "FieldManagerConflict",
                message: format!("conflict with {m} using {api_version}"),
                field: dotted(p),
            })
            .collect();
        let detail: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.message, c.field))
            .collect();
        let message = if causes.len() == 1 {
            format!("Apply failed with 1 conflict: {}", detail.join(""))
        } else {
            format!(
                "Apply failed with {} conflicts: {}",
                causes.len(),
                detail.join("\n")
            )
        };
        return Err(ApiError::ApplyConflict { message, causes });
    }
    // Fields this manager applied before and drops now: remove unless someone else owns them.
    let before = list
        .iter()
        .find(|e| same_entry(e, manager, "Apply", None))
        .map(|e| leaf_set(e.get("fieldsV1").unwrap_or(&json!({}))))
        .unwrap_or_default();
    let others: BTreeSet<Path> = list
        .iter()
        .filter(|e| !same_entry(e, manager, "Apply", None))
        .flat_map(|e| leaf_set(e.get("fieldsV1").unwrap_or(&json!({}))))
        .collect();
    let mut base = cur.clone();
    for p in before.difference(&my_leaves) {
        if !others.contains(p) && !p.first().is_some_and(|f| f == "f:metadata" && p.len() == 1) {
            remove_path(&mut base, p);
        }
    }
    let mut merged = patch::strategic_merge(kind, &base, cfg)?;
    // Forced conflicts move ownership to us.
    if force {
        for e in list.iter_mut() {
            if same_entry(e, manager, "Apply", None) {
                continue;
            }
            let mut fv = e.get("fieldsV1").cloned().unwrap_or(json!({}));
            for (_, p) in &conflicts {
                remove_path_set(&mut fv, p);
            }
            e["fieldsV1"] = fv;
        }
    }
    list.retain(|e| !same_entry(e, manager, "Apply", None));
    list.push(
        json!({"manager": manager, "operation": "Apply", "apiVersion": api_version,
                     "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": mine}),
    );
    list.retain(|e| {
        e.get("fieldsV1")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    });
    set_entries(&mut merged, list);
    Ok(merged)
}

fn remove_path_set(set: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = set;
    for p in parents {
        match cur.get_mut(p) {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// `.spec.replicas`-style rendering of a path for conflict messages.
fn dotted(p: &[String]) -> String {
    let mut s = String::new();
    for e in p {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            s.push('[');
            s.push_str(k);
            s.push(']');
        } else if let Some(v) = e.strip_prefix("v:") {
            s.push('[');
            s.push_str(v);
            s.push(']');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},
               "spec":{"replicas":replicas,"template":{"spec":{"containers":[{"name":"web","image":image}]}}}})
    }

    #[test]
    fn conflict_then_force() {
        let cfg = deploy(2, "nginx");
        let mut cur = cfg.clone();
        set_apply(&mut cur, "a", "apps/v1", &cfg, "Deployment");
        let same = apply("Deployment", &cur, &cfg, "a", "apps/v1", false)
            .expect("no conflict with itself");
        assert_eq!(same["spec"]["replicas"], 2);
        let other = deploy(3, "nginx");
        let err = apply("Deployment", &same, &other, "b", "apps/v1", false).expect_err("conflict");
        match err {
            ApiError::ApplyConflict { causes, .. } => {
                assert_eq!(causes.len(), 1);
                assert_eq!(causes[0].field, ".spec.replicas");
            }
            e => panic!("unexpected {e:?}"),
        }
        let forced = apply("Deployment", &same, &other, "b", "apps/v1", true).expect("forced");
        assert_eq!(forced["spec"]["replicas"], 3);
    }

    #[test]
    fn dropped_fields_are_removed() {
        let cfg = deploy(2, "nginx");
        let mut cur = cfg.clone();
        set_apply(&mut cur, "a", "apps/v1", &cfg, "Deployment");
        let mut less = cfg.clone();
        less["metadata"]["labels"] = json!({});
        if let Some(m) = less["metadata"].as_object_mut() {
            m.remove("labels");
        }
        let out = apply("Deployment", &cur, &less, "a", "apps/v1", false).expect("apply");
        assert!(out.pointer("/metadata/labels/app").is_none());
    }
}
