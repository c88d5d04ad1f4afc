//! CustomResourceDefinitions: serving the custom resources they define. The catalog of
//! served types is rebuilt from the stored CRDs at start and after every CRD write, so a CRD
//! and its custom resources can be applied from one file. Custom resources of every served
//! version share one storage key space (no conversion webhooks; apiVersion is rewritten).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::handlers::Shared;
use crate::resources::{Catalog, ResourceType};

const PREFIX: &str = "/apiextensions.k8s.io/customresourcedefinitions/";

/// The strings of a JSON array (none when absent or not an array).
pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Resource types one CRD defines (one per served version, the storage version first).
pub fn types_of(crd: &Value) -> Vec<ResourceType> {
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let names = spec.get("names").cloned().unwrap_or(Value::Null);
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if group.is_empty()
        || plural.is_empty()
        || kind.is_empty()
        || crd.pointer("/metadata/deletionTimestamp").is_some()
    {
        return vec![];
    }
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let mut versions: Vec<Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions.sort_by_key(|v| v.get("storage") != Some(&Value::Bool(true)));
    versions
        .iter()
        .filter(|v| v.get("served") != Some(&Value::Bool(false)))
        .filter_map(|v| {
            let version = v.get("name").and_then(Value::as_str)?.to_string();
            Some(ResourceType {
                group: group.clone(),
                version,
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                has_status: v.pointer("/subresources/status").is_some(),
                has_scale: v.pointer("/subresources/scale").is_some(),
                extra_subresources: vec![],
                verbs: vec![],
                custom: true,
                storage_group: group.clone(),
            })
        })
        .collect()
}

/// Rebuild the served catalog from the built-ins plus every stored CRD.
pub fn sync_catalog(state: &Shared) {
    let page = match state.store.list(PREFIX, None, None, |_| true) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "failed to list CRDs");
            return;
        }
    };
    let mut catalog = Catalog::default();
    for crd in &page.items {
        for t in types_of(crd) {
            if catalog.find(&t.group, &t.version, &t.plural).is_none() {
                catalog.types.push(Arc::new(t));
            }
        }
    }
    match state.catalog.write() {
        Ok(mut c) => *c = catalog,
        Err(p) => *p.into_inner() = catalog,
    }
}

/// Status a CRD gets when stored: names accepted and established.
pub fn default_status(crd: &mut Value) {
    let now = crate::registry::now_rfc3339();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ]
    });
}

/// Delete every custom resource of a CRD that is gone.
pub async fn delete_instances(state: &Shared, crd: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let prefix = format!("/{group}/{plural}/");
    let Ok(page) = state.store.list(&prefix, None, None, |_| true) else {
        return;
    };
    for o in page.items {
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = crate::registry::name_of(&o);
        let key = if ns.is_empty() {
            format!("{prefix}{name}")
        } else {
            format!("{prefix}{ns}/{name}")
        };
        let _ = state.store.delete(&key, None).await;
    }
}
