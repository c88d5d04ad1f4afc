//! Validation of built-in kinds: names, required fields, immutable fields. Produces the
//! per-field causes of a 422 Invalid Status, worded like upstream.

use serde_json::Value;

use crate::error::Cause;

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Kinds whose names must be DNS labels rather than subdomains.
fn label_named(kind: &str) -> bool {
    matches!(kind, "Namespace" | "Service")
}

/// Kinds whose names follow path-segment rules only (RBAC allows ':' and more).
fn path_segment_named(kind: &str) -> bool {
    matches!(
        kind,
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
    )
}

pub fn name(kind: &str, name: &str, causes: &mut Vec<Cause>) {
    if name.is_empty() {
        causes.push(Cause::required("metadata.name"));
    } else if path_segment_named(kind) {
        if name == "." || name == ".." || name.contains('/') || name.contains('%') {
            causes.push(Cause::invalid(
                "metadata.name",
                name,
                "may not contain '/' or '%' and may not be '.' or '..'",
            ));
        }
    } else if label_named(kind) {
        if !is_dns_label(name) {
            causes.push(Cause::invalid("metadata.name", name, LABEL_MSG));
        }
    } else if !is_dns_subdomain(name) {
        causes.push(Cause::invalid("metadata.name", name, SUBDOMAIN_MSG));
    }
}

fn containers(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let list = spec.get("containers").and_then(Value::as_array);
    match list {
        None => causes.push(Cause::required(&format!("{path}.containers"))),
        Some(cs) if cs.is_empty() => causes.push(Cause::required(&format!("{path}.containers"))),
        _ => {}
    }
    let mut seen = std::collections::HashSet::new();
    for key in ["initContainers", "containers"] {
        let Some(cs) = spec.get(key).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in cs.iter().enumerate() {
            let p = format!("{path}.{key}[{i}]");
            match c.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push(Cause::required(&format!("{p}.name"))),
                Some(n) => {
                    if !is_dns_label(n) {
                        causes.push(Cause::invalid(&format!("{p}.name"), n, LABEL_MSG));
                    } else if !seen.insert(n.to_string()) {
                        causes.push(Cause {
                            reason: "FieldValueDuplicate",
                            message: format!("Duplicate value: \"{n}\""),
                            field: format!("{p}.name"),
                        });
                    }
                }
            }
            if c.get("image")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(Cause::required(&format!("{p}.image")));
            }
            if let Some(ports) = c.get("ports").and_then(Value::as_array) {
                for (j, port) in ports.iter().enumerate() {
                    let n = port
                        .get("containerPort")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if !(1..=65535).contains(&n) {
                        causes.push(Cause::invalid(
                            &format!("{p}.ports[{j}].containerPort"),
                            &n.to_string(),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
            }
        }
    }
    if let Some(vols) = spec.get("volumes").and_then(Value::as_array) {
        let mut vseen = std::collections::HashSet::new();
        for (i, v) in vols.iter().enumerate() {
            let n = v.get("name").and_then(Value::as_str).unwrap_or("");
            if n.is_empty() {
                causes.push(Cause::required(&format!("{path}.volumes[{i}].name")));
            } else if !vseen.insert(n.to_string()) {
                causes.push(Cause {
                    reason: "FieldValueDuplicate",
                    message: format!("Duplicate value: \"{n}\""),
                    field: format!("{path}.volumes[{i}].name"),
                });
            }
        }
    }
    if let Some(rp) = spec.get("restartPolicy").and_then(Value::as_str) {
        if !matches!(rp, "Always" | "OnFailure" | "Never") {
            causes.push(Cause::unsupported(
                &format!("{path}.restartPolicy"),
                rp,
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
}

fn selector_matches_template(spec: &Value, causes: &mut Vec<Cause>) {
    let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) else {
        causes.push(Cause::required("spec.selector"));
        return;
    };
    let labels = spec.pointer("/template/metadata/labels");
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if labels.and_then(|l| l.get(k)) != Some(v) {
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    &labels.map(|l| l.to_string()).unwrap_or_default(),
                    "`selector` does not match template `labels`",
                ));
                return;
            }
        }
    }
}

/// Validate a whole object of `kind` for create (and update).
pub fn object(kind: &str, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    match kind {
        "Pod" => containers(&spec, "spec", &mut causes),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            selector_matches_template(&spec, &mut causes);
            if let Some(t) = spec.pointer("/template/spec") {
                containers(t, "spec.template.spec", &mut causes);
            } else {
                causes.push(Cause::required("spec.template"));
            }
            if let Some(r) = spec.get("replicas").and_then(Value::as_i64) {
                if r < 0 {
                    causes.push(Cause::invalid(
                        "spec.replicas",
                        &r.to_string(),
                        "must be greater than or equal to 0",
                    ));
                }
            }
        }
        "Job" => {
            if let Some(t) = spec.pointer("/template/spec") {
                containers(t, "spec.template.spec", &mut causes);
                if t.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
                    causes.push(Cause::unsupported(
                        "spec.template.spec.restartPolicy",
                        "Always",
                        &["OnFailure", "Never"],
                    ));
                }
            } else {
                causes.push(Cause::required("spec.template"));
            }
        }
        "Service" => {
            let ty = spec
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if let Some(ports) = spec.get("ports").and_then(Value::as_array) {
                for (i, p) in ports.iter().enumerate() {
                    let n = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    if !(1..=65535).contains(&n) {
                        causes.push(Cause::invalid(
                            &format!("spec.ports[{i}].port"),
                            &n.to_string(),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
                if ports.len() > 1 {
                    for (i, p) in ports.iter().enumerate() {
                        if p.get("name")
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                        {
                            causes.push(Cause::required(&format!("spec.ports[{i}].name")));
                        }
                    }
                }
            } else if ty != "ExternalName"
                && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
            {
                causes.push(Cause::required("spec.ports"));
            }
            if !matches!(
                ty,
                "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
            ) {
                causes.push(Cause::unsupported(
                    "spec.type",
                    ty,
                    &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
                ));
            }
        }
        "ConfigMap" | "Secret" => {
            for field in ["data", "binaryData", "stringData"] {
                if let Some(m) = obj.get(field).and_then(Value::as_object) {
                    for k in m.keys() {
                        let ok = !k.is_empty()
                            && k.len() <= 253
                            && k.chars()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                        if !ok {
                            causes.push(Cause::invalid(
                                &format!("{field}[{k}]"),
                                k,
                                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                            ));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    causes
}

/// Fields that must not change on update.
pub fn immutable(kind: &str, old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let same = |p: &str| old.pointer(p) == new.pointer(p);
    match kind {
        "Pod" => {
            // Only images, activeDeadlineSeconds, tolerations (additions) may change.
            let strip = |v: &Value| {
                let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                for key in ["containers", "initContainers"] {
                    if let Some(cs) = s.get_mut(key).and_then(Value::as_array_mut) {
                        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                            c.remove("image");
                        }
                    }
                }
                if let Some(m) = s.as_object_mut() {
                    m.remove("activeDeadlineSeconds");
                    m.remove("tolerations");
                    m.remove("terminationGracePeriodSeconds");
                    // nodeName may be set once by binding.
                    if old.pointer("/spec/nodeName").is_none() {
                        m.remove("nodeName");
                    }
                }
                s
            };
            if strip(old) != strip(new) {
                causes.push(Cause::forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ));
            }
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job"
            if !same("/spec/selector") =>
        {
            causes.push(Cause::invalid(
                "spec.selector",
                &new.pointer("/spec/selector")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                "field is immutable",
            ));
        }
        "Service" => {
            let old_ip = old.pointer("/spec/clusterIP");
            if old_ip.is_some()
                && new.pointer("/spec/clusterIP").is_some()
                && !same("/spec/clusterIP")
            {
                causes.push(Cause::invalid(
                    "spec.clusterIP",
                    new.pointer("/spec/clusterIP")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    "field is immutable",
                ));
            }
        }
        "ConfigMap" | "Secret"
            if old.get("immutable") == Some(&Value::Bool(true))
                && (!same("/data") || !same("/binaryData")) =>
        {
            causes.push(Cause::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
        _ => {}
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        let mut c = vec![];
        name("Pod", "ok-name.x", &mut c);
        name("Namespace", "Bad_Name", &mut c);
        name("ClusterRole", "system:admin", &mut c);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "metadata.name");
    }

    #[test]
    fn pod_needs_containers() {
        let c = object("Pod", &json!({"spec":{}}));
        assert_eq!(c[0].field, "spec.containers");
        let c = object("Pod", &json!({"spec":{"containers":[{"name":"a"}]}}));
        assert_eq!(c[0].field, "spec.containers[0].image");
    }
}
