//! The table of built-in resource types the server knows: group, version, kind, plural,
//! scope, short names, categories and subresources. Discovery, OpenAPI, routing and storage
//! keys are all derived from this one table. Custom resources are added at run time from
//! CustomResourceDefinitions (see `crd`).

use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    pub has_scale: bool,
    /// Extra subresources beyond status/scale (pods: log, exec, ...), with their response kind.
    pub extra_subresources: Vec<(String, String, String, String)>,
    /// Verbs; empty means the full set.
    pub verbs: Vec<String>,
    /// True for custom resources (served from CRDs): no strategic merge patch.
    pub custom: bool,
    /// The storage group/resource when this is an alias version (events.k8s.io/v1 -> core events).
    pub storage_group: String,
}

pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    pub fn verbs(&self) -> Vec<String> {
        if self.verbs.is_empty() {
            ALL_VERBS.iter().map(|s| s.to_string()).collect()
        } else {
            self.verbs.clone()
        }
    }
    /// Prefix of storage keys for this resource: `/<group>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        format!("/{}/{}/", self.storage_group, self.plural)
    }
    /// Storage key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{}/{}", self.key_prefix(), namespace, name)
        } else {
            format!("{}{}", self.key_prefix(), name)
        }
    }
    /// Prefix for the objects of one namespace (or of all, for cluster scope / all namespaces).
    pub fn ns_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{}/", self.key_prefix(), ns),
            _ => self.key_prefix(),
        }
    }
}

struct Def(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    bool,
);

// group, version, kind, plural, namespaced, shortNames, categories, status, scale
#[rustfmt::skip]
const BUILTIN: &[Def] = &[
    Def("", "v1", "Pod", "pods", true, &["po"], &["all"], true, false),
    Def("", "v1", "Service", "services", true, &["svc"], &["all"], true, false),
    Def("", "v1", "Endpoints", "endpoints", true, &["ep"], &[], false, false),
    Def("", "v1", "ConfigMap", "configmaps", true, &["cm"], &[], false, false),
    Def("", "v1", "Secret", "secrets", true, &[], &[], false, false),
    Def("", "v1", "Namespace", "namespaces", false, &["ns"], &[], true, false),
    Def("", "v1", "Node", "nodes", false, &["no"], &[], true, false),
    Def("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], &[], false, false),
    Def("", "v1", "Event", "events", true, &["ev"], &[], false, false),
    Def("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], &[], true, false),
    Def("", "v1", "PersistentVolume", "persistentvolumes", false, &["pv"], &[], true, false),
    Def("", "v1", "LimitRange", "limitranges", true, &["limits"], &[], false, false),
    Def("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"], &[], true, false),
    Def("", "v1", "ReplicationController", "replicationcontrollers", true, &["rc"], &["all"], true, true),
    Def("", "v1", "PodTemplate", "podtemplates", true, &[], &[], false, false),
    Def("apps", "v1", "Deployment", "deployments", true, &["deploy"], &["all"], true, true),
    Def("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"], &["all"], true, true),
    Def("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], &["all"], true, true),
    Def("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], &["all"], true, false),
    Def("apps", "v1", "ControllerRevision", "controllerrevisions", true, &[], &[], false, false),
    Def("batch", "v1", "Job", "jobs", true, &[], &["all"], true, false),
    Def("batch", "v1", "CronJob", "cronjobs", true, &["cj"], &["all"], true, false),
    Def("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], &["all"], true, false),
    Def("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], &["all"], true, false),
    Def("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"], &[], true, false),
    Def("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, &[], &[], false, false),
    Def("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"], &[], false, false),
    Def("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, &[], &[], false, false),
    Def("events.k8s.io", "v1", "Event", "events", true, &["ev"], &[], false, false),
    Def("coordination.k8s.io", "v1", "Lease", "leases", true, &[], &[], false, false),
    Def("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], &[], false, false),
    Def("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[], &[], false, false),
    Def("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[], &[], false, false),
    Def("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[], &[], false, false),
    Def("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"], &[], false, false),
    Def("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", false, &[], &[], false, false),
    Def("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], &[], true, false),
    Def("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, &["pc"], &[], false, false),
    Def("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, &["crd", "crds"], &[], true, false),
];

/// Groups in preference order for discovery.
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "metrics.k8s.io",
    "discovery.k8s.io",
];

fn builtin() -> Vec<ResourceType> {
    let mut out = Vec::new();
    for d in BUILTIN {
        let mut extra = Vec::new();
        if d.3 == "pods" {
            for (sub, kind) in [
                ("log", "Pod"),
                ("exec", "PodExecOptions"),
                ("attach", "PodAttachOptions"),
                ("portforward", "PodPortForwardOptions"),
                ("binding", "Binding"),
                ("eviction", "Eviction"),
                ("ephemeralcontainers", "Pod"),
            ] {
                let group = if sub == "eviction" { "policy" } else { "" };
                out_sub(&mut extra, sub, group, kind);
            }
        }
        if d.3 == "serviceaccounts" {
            out_sub(&mut extra, "token", "authentication.k8s.io", "TokenRequest");
        }
        if d.3 == "namespaces" {
            out_sub(&mut extra, "finalize", "", "Namespace");
        }
        if d.3 == "nodes" {
            out_sub(&mut extra, "proxy", "", "NodeProxyOptions");
        }
        // events.k8s.io/v1 Events share storage with core/v1 events.
        let storage_group = if d.0 == "events.k8s.io" { "" } else { d.0 };
        out.push(ResourceType {
            group: d.0.into(),
            version: d.1.into(),
            kind: d.2.into(),
            plural: d.3.into(),
            singular: d.2.to_lowercase(),
            namespaced: d.4,
            short_names: d.5.iter().map(|s| s.to_string()).collect(),
            categories: d.6.iter().map(|s| s.to_string()).collect(),
            has_status: d.7,
            has_scale: d.8,
            extra_subresources: extra,
            verbs: vec![],
            custom: false,
            storage_group: storage_group.into(),
        });
    }
    // authorization.k8s.io: create-only review resources.
    for (kind, plural, namespaced) in [
        ("SelfSubjectAccessReview", "selfsubjectaccessreviews", false),
        ("SelfSubjectRulesReview", "selfsubjectrulesreviews", false),
        ("SubjectAccessReview", "subjectaccessreviews", false),
        (
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            true,
        ),
    ] {
        out.push(create_only(
            "authorization.k8s.io",
            kind,
            plural,
            namespaced,
        ));
    }
    // metrics.k8s.io/v1beta1: read-only, computed from the kubelet's stats (kubectl top).
    for (kind, plural, namespaced) in [
        ("PodMetrics", "pods", true),
        ("NodeMetrics", "nodes", false),
    ] {
        let mut rt = create_only("metrics.k8s.io", kind, plural, namespaced);
        rt.version = "v1beta1".into();
        rt.verbs = vec!["get".into(), "list".into()];
        out.push(rt);
    }
    for (kind, plural) in [
        ("SelfSubjectReview", "selfsubjectreviews"),
        ("TokenReview", "tokenreviews"),
    ] {
        out.push(create_only("authentication.k8s.io", kind, plural, false));
    }
    out
}

fn create_only(group: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: vec![],
        categories: vec![],
        has_status: false,
        has_scale: false,
        extra_subresources: vec![],
        verbs: vec!["create".into()],
        custom: false,
        storage_group: group.into(),
    }
}

fn out_sub(extra: &mut Vec<(String, String, String, String)>, sub: &str, group: &str, kind: &str) {
    let version = "v1".to_string();
    extra.push((sub.into(), group.into(), version, kind.into()));
}

/// The set of resource types currently served (built-ins plus CRD-defined ones).
#[derive(Debug, Clone)]
pub struct Catalog {
    pub types: Vec<Arc<ResourceType>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            types: builtin().into_iter().map(Arc::new).collect(),
        }
    }
}

impl Catalog {
    /// Look a resource up by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }
    /// Look a type up by apiVersion and kind (as found in a request body).
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }
    /// Group versions served, in discovery preference order.
    pub fn group_versions(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) => {
                    if !vs.contains(&t.version) {
                        vs.push(t.version.clone());
                    }
                }
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        groups.sort_by_key(|(g, _)| {
            GROUP_ORDER
                .iter()
                .position(|o| o == g)
                .unwrap_or(GROUP_ORDER.len())
        });
        groups
    }
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_lookup() {
        let c = Catalog::default();
        let pods = c.find("", "v1", "pods").expect("pods");
        assert_eq!(pods.key("demo", "web"), "//pods/demo/web");
        let d = c.find_kind("apps/v1", "Deployment").expect("deploy");
        assert_eq!(d.key("a", "b"), "/apps/deployments/a/b");
        let ev = c.find("events.k8s.io", "v1", "events").expect("events");
        assert_eq!(ev.key_prefix(), "//events/");
        assert_eq!(c.group_versions()[0].0, "");
    }
}
