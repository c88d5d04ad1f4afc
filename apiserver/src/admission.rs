//! Admission steps that need stored state, run on create after defaulting: the ServiceAccount
//! plugin for pods (the account must exist; its token, the cluster CA and the namespace are
//! mounted at `/var/run/secrets/kubernetes.io/serviceaccount` through a projected
//! `kube-api-access-*` volume), and the per-namespace objects every namespace gets at creation
//! (the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap; upstream's
//! serviceaccount and root-ca-cert-publisher controllers). For PersistentVolumeClaims, the
//! DefaultStorageClass plugin (a claim without `storageClassName` gets the default class) and
//! StorageObjectInUseProtection (the `kubernetes.io/pvc-protection` finalizer).

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult, Subject};
use crate::handlers::Shared;
use crate::storage::StoreError;

pub const SA_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Five characters from upstream's name-suffix alphabet (no vowels, no look-alikes).
fn suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The ServiceAccount admission plugin, for a pod being created in `ns`.
pub fn pod(state: &Shared, ns: &str, pod: &mut Value) -> ApiResult<()> {
    let sa_name = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    pod["spec"]["serviceAccountName"] = json!(sa_name);
    pod["spec"]["serviceAccount"] = json!(sa_name);
    let pod_name = crate::registry::name_of(pod).to_string();
    let sa = state
        .store
        .get(&format!("//serviceaccounts/{ns}/{sa_name}"))
        .map_err(|e| ApiError::Storage(e.to_string()))?
        .ok_or_else(|| {
            ApiError::ForbiddenFor(
                Subject::new("pods", "", &pod_name),
                format!(
                    "error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
                ),
            )
        })?;
    // The ServiceAccount's imagePullSecrets, unless the pod names its own.
    let pod_secrets = pod
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if let Some(sa_secrets) = sa
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && !pod_secrets)
    {
        pod["spec"]["imagePullSecrets"] = Value::Array(sa_secrets.clone());
    }
    let automount = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    let lists = ["initContainers", "containers", "ephemeralContainers"];
    let already = lists.iter().any(|l| {
        pod.pointer(&format!("/spec/{l}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("volumeMounts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(SA_MOUNT_PATH))
    });
    if already {
        return Ok(());
    }
    let volume_name = format!("kube-api-access-{}", suffix());
    let volume = json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    });
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    match spec.get_mut("volumes").and_then(Value::as_array_mut) {
        Some(v) => v.push(volume),
        None => {
            spec.insert("volumes".into(), json!([volume]));
        }
    }
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": SA_MOUNT_PATH});
    for l in lists {
        for c in spec
            .get_mut(l)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                Some(m) => m.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
        }
    }
    Ok(())
}

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// The DefaultStorageClass and StorageObjectInUseProtection plugins, for a claim being
/// created: a claim that leaves `storageClassName` unset gets the default StorageClass (the
/// newest, if several are marked default), and every claim gets the pvc-protection finalizer.
pub fn persistent_volume_claim(state: &Shared, pvc: &mut Value) -> ApiResult<()> {
    let unset = pvc
        .pointer("/spec/storageClassName")
        .is_none_or(Value::is_null);
    if unset {
        let classes = state
            .store
            .list("/storage.k8s.io/storageclasses/", None, None, |c| {
                c.pointer(&format!(
                    "/metadata/annotations/{}",
                    DEFAULT_CLASS_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
                    == Some("true")
            })
            .map_err(|e| ApiError::Storage(e.to_string()))?;
        let newest = classes.items.iter().max_by_key(|c| {
            let created = c
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str);
            (
                created.unwrap_or_default().to_string(),
                crate::registry::name_of(c).to_string(),
            )
        });
        if let (Some(class), Some(spec)) =
            (newest, pvc.get_mut("spec").and_then(Value::as_object_mut))
        {
            spec.insert(
                "storageClassName".into(),
                json!(crate::registry::name_of(class)),
            );
        }
    }
    let Some(meta) = crate::registry::meta_mut(pvc) else {
        return Ok(());
    };
    let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(list) = finalizers.as_array_mut() {
        if !list.iter().any(|f| f.as_str() == Some(PVC_PROTECTION)) {
            list.push(json!(PVC_PROTECTION));
        }
    }
    Ok(())
}

/// Create what every namespace holds from its start (idempotent).
pub async fn namespace_defaults(state: &Shared, ns: &str) -> Result<(), StoreError> {
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": ns}});
    crate::bootstrap::ensure_object(
        state,
        "",
        "ServiceAccount",
        &format!("//serviceaccounts/{ns}/default"),
        sa,
    )
    .await?;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns, "annotations": {
            "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": state.ca_cert_pem}});
    crate::bootstrap::ensure_object(
        state,
        "",
        "ConfigMap",
        &format!("//configmaps/{ns}/{ROOT_CA_CONFIGMAP}"),
        cm,
    )
    .await
}

pub const SA_TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// Legacy ServiceAccount token Secrets (upstream's tokens controller, done at create): a
/// Secret of type `kubernetes.io/service-account-token` naming an existing ServiceAccount gets
/// `token` (a non-expiring token bound to this Secret, so deleting the Secret or the account
/// revokes it), `ca.crt` and `namespace`, and the account's uid annotation. Returns warnings.
pub fn secret(state: &Shared, ns: &str, secret: &mut Value) -> ApiResult<Vec<String>> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use crate::auth::token::{Claims, K8sClaim, Ref, ISSUER};

    if secret.get("type").and_then(Value::as_str) != Some(SA_TOKEN_SECRET_TYPE) {
        return Ok(Vec::new());
    }
    let name = crate::registry::name_of(secret).to_string();
    let annotation = |key: &str| {
        secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let sa_name = annotation(SA_NAME_ANNOTATION);
    if sa_name.is_empty() {
        return Err(ApiError::Invalid {
            kind: "Secret".into(),
            group: String::new(),
            name,
            causes: vec![crate::error::Cause::required(&format!(
                "metadata.annotations[{SA_NAME_ANNOTATION}]"
            ))],
        });
    }
    let sa = state
        .store
        .get(&format!("//serviceaccounts/{ns}/{sa_name}"))
        .map_err(|e| ApiError::Storage(e.to_string()))?;
    let sa_uid = sa
        .as_ref()
        .and_then(|s| s.pointer("/metadata/uid"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let want_uid = annotation(SA_UID_ANNOTATION);
    if sa_uid.is_empty() || (!want_uid.is_empty() && want_uid != sa_uid) {
        return Ok(vec![format!(
            "serviceaccount {ns}/{sa_name} does not exist; the token of secret {name} will not be populated"
        )]);
    }
    let k8s = K8sClaim {
        namespace: ns.into(),
        serviceaccount: Ref {
            name: sa_name,
            uid: sa_uid.clone(),
        },
        pod: None,
        secret: Some(Ref {
            name,
            uid: secret
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }),
    };
    // Legacy tokens do not expire; they die with the Secret or the account.
    let claims = Claims::new(
        k8s,
        vec![ISSUER.into()],
        chrono::Utc::now().timestamp(),
        100 * 365 * 24 * 3600,
    );
    let token = state
        .authn
        .signer
        .issue(&claims)
        .map_err(ApiError::Internal)?;
    let Some(obj) = secret.as_object_mut() else {
        return Ok(Vec::new());
    };
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    meta["annotations"][SA_UID_ANNOTATION] = json!(sa_uid);
    let data = obj.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    data["token"] = json!(STANDARD.encode(token));
    data["ca.crt"] = json!(STANDARD.encode(&state.ca_cert_pem));
    data["namespace"] = json!(STANDARD.encode(ns));
    Ok(Vec::new())
}
