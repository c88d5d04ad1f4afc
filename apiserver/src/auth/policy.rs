//! The default RBAC policy, after upstream's bootstrap policy: `cluster-admin` for
//! `system:masters`; the user-facing `admin`, `edit` and `view` roles, aggregated (like
//! upstream) from `system:aggregate-to-*` roles so that roles labelled
//! `rbac.authorization.k8s.io/aggregate-to-view: "true"` (e.g. for CRDs) join them; and the
//! discovery/basic-user roles every authenticated user is bound to. Created at first start,
//! never overwritten (an administrator's edits stay).

use serde_json::{json, Value};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn meta(name: &str, labels: Value) -> Value {
    let mut l = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let (Some(m), Some(extra)) = (l.as_object_mut(), labels.as_object()) {
        m.extend(extra.clone());
    }
    json!({"name": name, "labels": l,
           "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

fn cluster_role(name: &str, labels: Value, rules: Vec<Value>) -> (&'static str, String, Value) {
    (
        "ClusterRole",
        name.to_string(),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": meta(name, labels), "rules": rules}),
    )
}

fn aggregated(name: &str, labels: Value, from: &[&str]) -> (&'static str, String, Value) {
    let selectors: Vec<Value> = from
        .iter()
        .map(|f| json!({"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{f}"): "true"}}))
        .collect();
    (
        "ClusterRole",
        name.to_string(),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": meta(name, labels),
               "aggregationRule": {"clusterRoleSelectors": selectors}, "rules": []}),
    )
}

fn binding(name: &str, role: &str, groups: &[&str]) -> (&'static str, String, Value) {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    (
        "ClusterRoleBinding",
        name.to_string(),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": meta(name, json!({})),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": subjects}),
    )
}

fn to(role: &str) -> Value {
    json!({format!("rbac.authorization.k8s.io/aggregate-to-{role}"): "true"})
}

/// `(kind, name, object)` of every default ClusterRole and ClusterRoleBinding.
pub fn defaults() -> Vec<(&'static str, String, Value)> {
    let view_core = [
        "configmaps",
        "endpoints",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "pods",
        "pods/log",
        "pods/status",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "replicationcontrollers/status",
        "serviceaccounts",
        "services",
        "services/status",
        "bindings",
        "events",
        "limitranges",
        "resourcequotas",
        "resourcequotas/status",
        "namespaces",
        "namespaces/status",
    ];
    let apps = [
        "controllerrevisions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "statefulsets",
        "statefulsets/scale",
        "statefulsets/status",
    ];
    let hpa = [
        "horizontalpodautoscalers",
        "horizontalpodautoscalers/status",
    ];
    let batch = ["cronjobs", "cronjobs/status", "jobs", "jobs/status"];
    let pdb = ["poddisruptionbudgets", "poddisruptionbudgets/status"];
    let net = ["ingresses", "ingresses/status", "networkpolicies"];
    let view_rules = vec![
        rule(&[""], &view_core, READ),
        rule(&["apps"], &apps, READ),
        rule(&["autoscaling"], &hpa, READ),
        rule(&["batch"], &batch, READ),
        rule(&["policy"], &pdb, READ),
        rule(&["networking.k8s.io"], &net, READ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(&["metrics.k8s.io"], &["pods", "nodes"], READ),
    ];
    let stream = ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy"];
    let edit_core = [
        "configmaps",
        "events",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "secrets",
        "serviceaccounts",
        "services",
        "services/proxy",
    ];
    let write_apps = [
        "daemonsets",
        "deployments",
        "deployments/rollback",
        "deployments/scale",
        "replicasets",
        "replicasets/scale",
        "statefulsets",
        "statefulsets/scale",
    ];
    let edit_rules = vec![
        rule(
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
            READ,
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(&[""], &[&["pods"][..], &stream[..]].concat(), WRITE),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(&[""], &edit_core, WRITE),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(&["apps"], &write_apps, WRITE),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
        rule(&["batch"], &["cronjobs", "jobs"], WRITE),
        rule(&["policy"], &["poddisruptionbudgets"], WRITE),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            WRITE,
        ),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &[READ, WRITE].concat(),
        ),
    ];
    let admin_rules = vec![
        rule(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
            &["create"],
        ),
        rule(
            &["rbac.authorization.k8s.io"],
            &["rolebindings", "roles"],
            &[READ, WRITE].concat(),
        ),
    ];
    let discovery_urls = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    vec![
        cluster_role(
            "cluster-admin",
            json!({}),
            vec![
                rule(&["*"], &["*"], &["*"]),
                json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
            ],
        ),
        aggregated("admin", json!({}), &["admin"]),
        aggregated("edit", to("admin"), &["edit"]),
        aggregated("view", to("edit"), &["view"]),
        cluster_role("system:aggregate-to-admin", to("admin"), admin_rules),
        cluster_role("system:aggregate-to-edit", to("edit"), edit_rules),
        cluster_role("system:aggregate-to-view", to("view"), view_rules),
        cluster_role(
            "system:discovery",
            json!({}),
            vec![json!({"nonResourceURLs": discovery_urls, "verbs": ["get"]})],
        ),
        cluster_role(
            "system:basic-user",
            json!({}),
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            json!({}),
            vec![
                json!({"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}),
            ],
        ),
        binding("cluster-admin", "cluster-admin", &["system:masters"]),
        binding(
            "system:discovery",
            "system:discovery",
            &["system:authenticated"],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &["system:authenticated"],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}
