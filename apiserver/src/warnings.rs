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
