//! Objects every cluster starts with: the `default`, `kube-system`, `kube-public` and
//! `kube-node-lease` namespaces (each with its `default` ServiceAccount and `kube-root-ca.crt`),
//! the `kubernetes` Service, and upstream's default RBAC policy (`cluster-admin`, `admin`,
//! `edit`, `view` and the `system:` roles every authenticated user is bound to), and the
//! default StorageClass `local-path` served by the kubelet's local-path provisioner.

use serde_json::{json, Value};

use crate::handlers::Shared;
use crate::registry;
use crate::storage::StoreError;

/// The default StorageClass and its provisioner (the kubelet's `local_path`).
pub const LOCAL_PATH_CLASS: &str = "local-path";
pub const LOCAL_PATH_PROVISIONER: &str = "k1s.io/local-path";

/// Create `obj` at `key` unless something is there already.
pub async fn ensure_object(
    state: &Shared,
    group: &str,
    kind: &str,
    key: &str,
    obj: Value,
) -> Result<(), StoreError> {
    if state.store.get(key)?.is_some() {
        return Ok(());
    }
    let catalog = state.catalog();
    let Some(rt) = catalog
        .types
        .iter()
        .find(|t| t.kind == kind && t.group == group)
        .cloned()
    else {
        return Ok(());
    };
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let prepared = registry::prepare_create(&rt, ns.as_deref(), obj)
        .map_err(|e| StoreError::Io(format!("bootstrap object {key} is invalid: {e}")))?;
    match state.store.create(key, prepared).await {
        Ok(_) | Err(StoreError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn ensure(state: &Shared, port: u16) -> Result<(), StoreError> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}});
        ensure_object(state, "", "Namespace", &format!("//namespaces/{ns}"), obj).await?;
    }
    // Every namespace (also those of a data dir from before ServiceAccounts existed).
    let namespaces = state.store.list("//namespaces/", None, None, |n| {
        n.pointer("/metadata/deletionTimestamp").is_none()
    })?;
    for n in namespaces.items {
        crate::admission::namespace_defaults(state, registry::name_of(&n)).await?;
    }
    for (kind, name, obj) in crate::auth::policy::defaults() {
        let plural = if kind == "ClusterRole" {
            "clusterroles"
        } else {
            "clusterrolebindings"
        };
        let key = format!("/rbac.authorization.k8s.io/{plural}/{name}");
        ensure_object(state, "rbac.authorization.k8s.io", kind, &key, obj).await?;
    }
    let ip = state.service_cidr.nth(1).to_string();
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}});
    ensure_object(state, "", "Service", "//services/default/kubernetes", svc).await?;
    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS,
                     "annotations": {crate::admission::DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"});
    let key = format!("/storage.k8s.io/storageclasses/{LOCAL_PATH_CLASS}");
    ensure_object(state, "storage.k8s.io", "StorageClass", &key, sc).await?;
    Ok(())
}
