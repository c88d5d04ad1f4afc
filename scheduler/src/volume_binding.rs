//! Upstream's VolumeBinding plugin, for the pod's PersistentVolumeClaims: PreFilter (every
//! claim exists and is not being deleted), Filter (a bound volume's node affinity allows the
//! node; a claim of an `Immediate` class must already be bound) and PreBind (a claim of a
//! `WaitForFirstConsumer` class gets the `volume.kubernetes.io/selected-node` annotation, which
//! tells its provisioner where to create the volume; the pod is bound once every claim is,
//! the claim watch bringing it back).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use serde_json::json;

pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// A claim of the pod, with its StorageClass's binding mode when it is not bound yet.
pub struct Claim {
    pvc: PersistentVolumeClaim,
    volume: Option<PersistentVolume>,
    wait_for_consumer: bool,
}

/// The names of the claims the pod's volumes use.
pub(crate) fn claim_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .collect()
}

/// PreFilter: the pod's claims, or upstream's message for the first missing or deleted one.
pub async fn claims(client: &Client, pod: &Pod) -> Result<Result<Vec<Claim>, String>, kube::Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let mut out = Vec::new();
    for name in claim_names(pod) {
        let Some(pvc) = pvcs.get_opt(&name).await? else {
            return Ok(Err(format!("persistentvolumeclaim \"{name}\" not found")));
        };
        if pvc.metadata.deletion_timestamp.is_some() {
            return Ok(Err(format!(
                "persistentvolumeclaim \"{name}\" is being deleted"
            )));
        }
        let volume_name = pvc.spec.as_ref().and_then(|s| s.volume_name.clone());
        let (volume, wait_for_consumer) = match volume_name.filter(|v| !v.is_empty()) {
            Some(v) => (
                Api::<PersistentVolume>::all(client.clone())
                    .get_opt(&v)
                    .await?,
                false,
            ),
            None => {
                let class = pvc
                    .spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.clone())
                    .unwrap_or_default();
                let sc = if class.is_empty() {
                    None
                } else {
                    Api::<StorageClass>::all(client.clone())
                        .get_opt(&class)
                        .await?
                };
                let wffc = sc.and_then(|c| c.volume_binding_mode).as_deref()
                    == Some("WaitForFirstConsumer");
                (None, wffc)
            }
        };
        out.push(Claim {
            pvc,
            volume,
            wait_for_consumer,
        });
    }
    Ok(Ok(out))
}

/// Filter: why `node` cannot take the pod's volumes, worded like upstream, or None.
pub fn fits(claims: &[Claim], node: &Node) -> Option<String> {
    let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
    for c in claims {
        let bound = c.volume.is_some()
            || c.pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .is_some_and(|v| !v.is_empty());
        if !bound && !c.wait_for_consumer {
            return Some("1 pod has unbound immediate PersistentVolumeClaims".into());
        }
        let terms = c
            .volume
            .as_ref()
            .and_then(|v| v.spec.as_ref())
            .and_then(|s| s.node_affinity.as_ref())
            .and_then(|a| a.required.as_ref())
            .map(|r| r.node_selector_terms.clone());
        if let Some(terms) = terms {
            let matches = terms.iter().any(|t| {
                t.match_expressions.iter().flatten().all(|e| {
                    let v = labels.get(&e.key);
                    let vals = e.values.clone().unwrap_or_default();
                    match e.operator.as_str() {
                        "In" => v.is_some_and(|v| vals.contains(v)),
                        "NotIn" => v.is_none_or(|v| !vals.contains(v)),
                        "Exists" => v.is_some(),
                        "DoesNotExist" => v.is_none(),
                        _ => false,
                    }
                })
            });
            if !matches {
                return Some("1 node(s) had volume node affinity conflict".into());
            }
        }
    }
    None
}

/// PreBind: annotate the unbound `WaitForFirstConsumer` claims with the chosen node. Returns
/// whether every claim is bound (the pod may be bound to the node now).
pub async fn pre_bind(client: &Client, claims: &[Claim], node: &str) -> Result<bool, kube::Error> {
    let mut all_bound = true;
    for c in claims {
        let bound = c
            .pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_some_and(|v| !v.is_empty());
        if bound {
            continue;
        }
        all_bound = false;
        let selected = c
            .pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SELECTED_NODE));
        if selected.map(String::as_str) == Some(node) {
            continue;
        }
        let ns = c.pvc.metadata.namespace.clone().unwrap_or_default();
        let name = c.pvc.metadata.name.clone().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        let patch = json!({"metadata": {"annotations": {SELECTED_NODE: node}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::debug!(claim = %format!("{ns}/{name}"), node, "selected the node for a claim");
    }
    Ok(all_bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaimSpec,
        PersistentVolumeSpec, VolumeNodeAffinity,
    };
    use kube::api::ObjectMeta;

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn bound_to(host: &str) -> Claim {
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: "kubernetes.io/hostname".into(),
                operator: "In".into(),
                values: Some(vec![host.into()]),
            }]),
            match_fields: None,
        };
        Claim {
            pvc: PersistentVolumeClaim {
                spec: Some(PersistentVolumeClaimSpec {
                    volume_name: Some("pv".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            volume: Some(PersistentVolume {
                spec: Some(PersistentVolumeSpec {
                    node_affinity: Some(VolumeNodeAffinity {
                        required: Some(NodeSelector {
                            node_selector_terms: vec![term],
                        }),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            wait_for_consumer: false,
        }
    }

    #[test]
    fn filter_messages_like_upstream() {
        assert_eq!(fits(&[bound_to("a")], &node("a")), None);
        assert_eq!(
            fits(&[bound_to("b")], &node("a")).as_deref(),
            Some("1 node(s) had volume node affinity conflict")
        );
        let unbound = |wait_for_consumer| Claim {
            pvc: PersistentVolumeClaim::default(),
            volume: None,
            wait_for_consumer,
        };
        assert_eq!(
            fits(&[unbound(false)], &node("a")).as_deref(),
            Some("1 pod has unbound immediate PersistentVolumeClaims")
        );
        assert_eq!(fits(&[unbound(true)], &node("a")), None);
    }
}
