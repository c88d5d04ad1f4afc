//! Typed decoding of built-in kinds through the `k8s-openapi` structs: wrong field types are a
//! 400 like upstream's "cannot be handled as a Deployment", and fields the type does not know
//! are found by comparing the input with its typed round trip. Unknown fields are then
//! rejected, warned about or ignored per `fieldValidation` (Strict / Warn / Ignore; the server
//! default is Warn) and never stored.

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling, batch::v1 as batch, coordination::v1 as coord, core::v1 as core,
    discovery::v1 as disc, networking::v1 as net, node::v1 as node, policy::v1 as policy,
    rbac::v1 as rbac, scheduling::v1 as sched, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn from_query(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation parameter unsupported: {other}, must be one of Ignore, Warn, Strict"
            ))),
        }
    }
}

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: &Value,
    kind: &str,
    api_version: &str,
) -> Result<Value, ApiError> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::BadRequest(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {e}",
            api_version.rsplit('/').next().unwrap_or(api_version)
        ))
    })?;
    serde_json::to_value(&typed).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The typed round trip of a built-in object, or None for kinds without a typed model here.
fn typed(group: &str, version: &str, kind: &str, v: &Value) -> Option<Result<Value, ApiError>> {
    let av = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    macro_rules! rt {
        ($t:ty) => {
            Some(roundtrip::<$t>(v, kind, &av))
        };
    }
    match (group, version, kind) {
        ("", "v1", "Pod") => rt!(core::Pod),
        ("", "v1", "Service") => rt!(core::Service),
        ("", "v1", "ConfigMap") => rt!(core::ConfigMap),
        ("", "v1", "Secret") => rt!(core::Secret),
        ("", "v1", "Namespace") => rt!(core::Namespace),
        ("", "v1", "ServiceAccount") => rt!(core::ServiceAccount),
        ("", "v1", "Endpoints") => rt!(core::Endpoints),
        ("", "v1", "PersistentVolumeClaim") => rt!(core::PersistentVolumeClaim),
        ("", "v1", "PersistentVolume") => rt!(core::PersistentVolume),
        ("", "v1", "LimitRange") => rt!(core::LimitRange),
        ("", "v1", "ResourceQuota") => rt!(core::ResourceQuota),
        ("", "v1", "ReplicationController") => rt!(core::ReplicationController),
        ("apps", "v1", "Deployment") => rt!(apps::Deployment),
        ("apps", "v1", "ReplicaSet") => rt!(apps::ReplicaSet),
        ("apps", "v1", "StatefulSet") => rt!(apps::StatefulSet),
        ("apps", "v1", "DaemonSet") => rt!(apps::DaemonSet),
        ("batch", "v1", "Job") => rt!(batch::Job),
        ("batch", "v1", "CronJob") => rt!(batch::CronJob),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            rt!(autoscaling::v1::HorizontalPodAutoscaler)
        }
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            rt!(autoscaling::v2::HorizontalPodAutoscaler)
        }
        ("networking.k8s.io", "v1", "Ingress") => rt!(net::Ingress),
        ("networking.k8s.io", "v1", "IngressClass") => rt!(net::IngressClass),
        ("networking.k8s.io", "v1", "NetworkPolicy") => rt!(net::NetworkPolicy),
        ("discovery.k8s.io", "v1", "EndpointSlice") => rt!(disc::EndpointSlice),
        ("coordination.k8s.io", "v1", "Lease") => rt!(coord::Lease),
        ("rbac.authorization.k8s.io", "v1", "Role") => rt!(rbac::Role),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => rt!(rbac::ClusterRole),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => rt!(rbac::RoleBinding),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => rt!(rbac::ClusterRoleBinding),
        ("storage.k8s.io", "v1", "StorageClass") => rt!(storage::StorageClass),
        ("node.k8s.io", "v1", "RuntimeClass") => rt!(node::RuntimeClass),
        ("policy", "v1", "PodDisruptionBudget") => rt!(policy::PodDisruptionBudget),
        ("scheduling.k8s.io", "v1", "PriorityClass") => rt!(sched::PriorityClass),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            rt!(apiext::CustomResourceDefinition)
        }
        _ => None,
    }
}

/// Paths of keys in `input` that the typed round trip `known` dropped.
fn unknown(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown(v, kv, &p, out),
                    None if v.is_null() => {}
                    // Maps with free-form keys (labels, data) keep every key in the round trip,
                    // so a missing key here really is unknown.
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (idx, (iv, kv)) in i.iter().zip(k.iter()).enumerate() {
                unknown(iv, kv, &format!("{path}[{idx}]"), out);
            }
        }
        _ => {}
    }
}

/// Decode `obj` for its kind; returns the object without unknown fields and any warnings.
pub fn check(
    group: &str,
    version: &str,
    kind: &str,
    obj: Value,
    mode: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let Some(res) = typed(group, version, kind, &obj) else {
        return Ok((obj, vec![]));
    };
    let known = res?;
    let mut paths = Vec::new();
    unknown(&obj, &known, "", &mut paths);
    if paths.is_empty() {
        return Ok((obj, vec![]));
    }
    let msgs: Vec<String> = paths
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    match mode {
        FieldValidation::Strict => Err(ApiError::BadRequest(format!(
            "strict decoding error: {}",
            msgs.join(", ")
        ))),
        FieldValidation::Warn => Ok((prune(obj, &known), msgs)),
        FieldValidation::Ignore => Ok((prune(obj, &known), vec![])),
    }
}

/// Remove from `input` every key the typed model does not know (keeps the input's own
/// formatting of known values).
fn prune(input: Value, known: &Value) -> Value {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            let mut out = Map::new();
            for (key, v) in i {
                match k.get(&key) {
                    Some(kv) => {
                        out.insert(key, prune(v, kv));
                    }
                    None if v.is_null() => {
                        out.insert(key, v);
                    }
                    None => {}
                }
            }
            Value::Object(out)
        }
        (Value::Array(i), Value::Array(k)) => Value::Array(
            i.into_iter()
                .enumerate()
                .map(|(n, v)| match k.get(n) {
                    Some(kv) => prune(v, kv),
                    None => v,
                })
                .collect(),
        ),
        (v, _) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_warn_ignore() {
        let d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","labels":{"a":"b"}},
            "spec":{"sepc":1,"selector":{"matchLabels":{"a":"b"}},"template":{"spec":{"containers":[{"name":"c","image":"i","bogus":true}]}}}});
        let e = check(
            "apps",
            "v1",
            "Deployment",
            d.clone(),
            FieldValidation::Strict,
        )
        .expect_err("strict");
        let msg = e.to_string();
        assert!(msg.contains("unknown field \"spec.sepc\""), "{msg}");
        assert!(
            msg.contains("spec.template.spec.containers[0].bogus"),
            "{msg}"
        );
        let (o, w) =
            check("apps", "v1", "Deployment", d.clone(), FieldValidation::Warn).expect("warn");
        assert_eq!(w.len(), 2);
        assert!(o.pointer("/spec/sepc").is_none());
        assert_eq!(o.pointer("/metadata/labels/a"), Some(&json!("b")));
        let (_, w) = check("apps", "v1", "Deployment", d, FieldValidation::Ignore).expect("ignore");
        assert!(w.is_empty());
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let d = json!({"metadata":{"name":"x"},"spec":{"replicas":"three"}});
        let e = check("apps", "v1", "Deployment", d, FieldValidation::Warn).expect_err("type");
        assert!(
            e.to_string().contains("cannot be handled as a Deployment"),
            "{e}"
        );
        let cm = json!({"metadata":{"name":"x"},"data":{"k":"v"}});
        assert!(check("", "v1", "ConfigMap", cm, FieldValidation::Strict).is_ok());
    }
}
