//! `Warning:` headers for fields k1s accepts but does not implement, so users are told
//! instead of silently ignored.

use serde_json::Value;

/// Field paths (JSON pointers) per kind that are stored but have no effect in k1s.
const UNIMPLEMENTED: &[(&str, &str, &str)] = &[
    (
        "Pod",
        "/spec/resourceClaims",
        "dynamic resource allocation is not implemented",
    ),
    (
        "Pod",
        "/spec/hostUsers",
        "user namespaces are not implemented",
    ),
    ("Pod", "/spec/os", "k1s runs linux pods only"),
    ("Pod", "/spec/overhead", "pod overhead is not implemented"),
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
        localhost_seccomp(obj, &format!("{prefix}/spec"), &mut out);
        for (k, ptr, why) in UNIMPLEMENTED {
            if *k != "Pod" {
                continue;
            }
            let p = format!("{prefix}{ptr}");
            if obj.pointer(&p).is_some_and(|v| !v.is_null()) {
                let field = p.trim_start_matches('/').replace('/', ".");
                out.push(format!("{field}: accepted but ignored by k1s: {why}"));
            }
        }
    }
    out
}

/// `seccompProfile.type: Localhost` (pod or container level) of the pod spec at `spec`: k1s
/// has no profile files; the runtime's default filter applies instead.
fn localhost_seccomp(obj: &Value, spec: &str, out: &mut Vec<String>) {
    let Some(spec_v) = obj.pointer(spec) else {
        return;
    };
    let field = |p: &str| {
        format!("{spec}{p}")
            .trim_start_matches('/')
            .replace('/', ".")
    };
    let mut check = |ptr: String, sc: Option<&Value>| {
        let localhost = sc
            .and_then(|sc| sc.pointer("/seccompProfile/type"))
            .and_then(Value::as_str)
            == Some("Localhost");
        if localhost {
            out.push(format!(
                "{}: accepted but ignored by k1s: Localhost seccomp profiles are not \
                 implemented, the runtime's default profile applies",
                field(&ptr)
            ));
        }
    };
    check(
        "/securityContext/seccompProfile".into(),
        spec_v.get("securityContext"),
    );
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec_v.get(list).and_then(Value::as_array);
        for (i, c) in containers.into_iter().flatten().enumerate() {
            check(
                format!("/{list}/{i}/securityContext/seccompProfile"),
                c.get("securityContext"),
            );
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
}
