//! `Warning:` headers for fields k1s accepts but does not implement, so users are told
//! instead of silently ignored.

use serde_json::Value;

/// When a field's value asks for something k1s does not do.
#[derive(Clone, Copy)]
enum When {
    /// Any value (an empty list or object does not count).
    Set,
    /// `true`.
    True,
    /// `false`.
    False,
}

impl When {
    fn matches(self, v: &Value) -> bool {
        match self {
            When::Set => match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            },
            When::True => v == &Value::Bool(true),
            When::False => v == &Value::Bool(false),
        }
    }
}

/// Field paths (JSON pointers) per kind that are stored but have no effect in k1s.
const UNIMPLEMENTED: &[(&str, &str, When, &str)] = &[
    (
        "Pod",
        "/spec/resourceClaims",
        When::Set,
        "dynamic resource allocation is not implemented",
    ),
    (
        "Pod",
        "/spec/hostUsers",
        When::False,
        "user namespaces are not implemented",
    ),
    ("Pod", "/spec/os", When::Set, "k1s runs linux pods only"),
    (
        "Pod",
        "/spec/overhead",
        When::Set,
        "pod overhead is not implemented",
    ),
    (
        "Pod",
        "/spec/hostPID",
        When::True,
        "containers get their own PID namespace",
    ),
    (
        "Pod",
        "/spec/hostIPC",
        When::True,
        "the pod gets its own IPC namespace",
    ),
    (
        "Pod",
        "/spec/shareProcessNamespace",
        When::True,
        "each container gets its own PID namespace",
    ),
    (
        "Pod",
        "/spec/securityContext/sysctls",
        When::Set,
        "sysctls are not set",
    ),
];

pub fn unimplemented_fields(kind: &str, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let prefixes: &[&str] = match kind {
        "Pod" => &[""],
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => &["/spec/template"],
        "CronJob" => &["/spec/jobTemplate/spec/template"],
        _ => &[],
    };
    for prefix in prefixes {
        in_containers(obj, &format!("{prefix}/spec"), &mut out);
        for (k, ptr, when, why) in UNIMPLEMENTED {
            if *k != "Pod" {
                continue;
            }
            let p = format!("{prefix}{ptr}");
            if obj.pointer(&p).is_some_and(|v| when.matches(v)) {
                out.push(ignored(&p, why));
            }
        }
    }
    out
}

/// The warning for the field at JSON pointer `ptr`.
fn ignored(ptr: &str, why: &str) -> String {
    let field = ptr.trim_start_matches('/').replace('/', ".");
    format!("{field}: accepted but ignored by k1s: {why}")
}

const LOCALHOST_SECCOMP: &str =
    "Localhost seccomp profiles are not implemented, the runtime's default profile applies";
const MOUNT_PROPAGATION: &str = "volumes are mounted without propagation";

/// The fields of the pod spec at `spec` that can be set per container:
/// `seccompProfile.type: Localhost` (pod or container level; k1s has no profile files, the
/// runtime's default filter applies) and `volumeMounts[].mountPropagation` other than `None`
/// (k1s mounts volumes private).
fn in_containers(obj: &Value, spec: &str, out: &mut Vec<String>) {
    let Some(spec_v) = obj.pointer(spec) else {
        return;
    };
    let localhost = |sc: Option<&Value>| {
        sc.and_then(|sc| sc.pointer("/seccompProfile/type"))
            .and_then(Value::as_str)
            == Some("Localhost")
    };
    if localhost(spec_v.get("securityContext")) {
        let p = format!("{spec}/securityContext/seccompProfile");
        out.push(ignored(&p, LOCALHOST_SECCOMP));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec_v.get(list).and_then(Value::as_array);
        for (i, c) in containers.into_iter().flatten().enumerate() {
            let at = format!("{spec}/{list}/{i}");
            if localhost(c.get("securityContext")) {
                let p = format!("{at}/securityContext/seccompProfile");
                out.push(ignored(&p, LOCALHOST_SECCOMP));
            }
            let mounts = c.get("volumeMounts").and_then(Value::as_array);
            for (j, m) in mounts.into_iter().flatten().enumerate() {
                let p = m.get("mountPropagation").and_then(Value::as_str);
                if p.is_some_and(|p| p != "None") {
                    let p = format!("{at}/volumeMounts/{j}/mountPropagation");
                    out.push(ignored(&p, MOUNT_PROPAGATION));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_seccomp_profiles_get_a_warning_at_pod_and_container_level() {
        let pod = serde_json::json!({"spec": {
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
            "containers": [
                {"name": "a", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
                {"name": "b", "securityContext": {"seccompProfile": {"type": "Localhost"}}},
            ],
        }});
        let w = unimplemented_fields("Pod", &pod);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("spec.securityContext.seccompProfile: accepted but ignored"));
        assert!(w[1].starts_with("spec.containers.1.securityContext.seccompProfile:"));
        let deploy = serde_json::json!({"spec": {"template": {"spec": {
            "containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Localhost"}}}],
        }}}});
        let w = unimplemented_fields("Deployment", &deploy);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("spec.template.spec.containers.0.securityContext"),
            "{w:?}"
        );
        let plain = serde_json::json!({"spec": {"containers": [{"name": "a"}]}});
        assert!(unimplemented_fields("Pod", &plain).is_empty());
    }

    #[test]
    fn only_values_that_ask_for_something_warn() {
        let quiet = serde_json::json!({"spec": {
            "hostPID": false, "hostIPC": false, "shareProcessNamespace": false,
            "hostUsers": true, "resourceClaims": [], "securityContext": {"sysctls": []},
        }});
        assert!(unimplemented_fields("Pod", &quiet).is_empty());
        let loud = serde_json::json!({"spec": {
            "hostPID": true, "hostIPC": true, "shareProcessNamespace": true, "hostUsers": false,
            "securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        }});
        let w = unimplemented_fields("Pod", &loud);
        assert_eq!(w.len(), 5, "{w:?}");
        let mounts = serde_json::json!({"spec": {"containers": [{"name": "a", "volumeMounts": [
            {"name": "v", "mountPath": "/v", "mountPropagation": "None"},
            {"name": "w", "mountPath": "/w", "mountPropagation": "HostToContainer"},
        ]}]}});
        let m = unimplemented_fields("Pod", &mounts);
        assert_eq!(
            m,
            ["spec.containers.0.volumeMounts.1.mountPropagation: accepted but ignored by k1s: volumes are mounted without propagation"]
        );
        assert!(
            w.iter()
                .any(|x| x.starts_with("spec.hostPID: accepted but ignored")),
            "{w:?}"
        );
    }
}
