//! The local-path provisioner (`k1s.io/local-path`, the default StorageClass `local-path`):
//! for a claim of a class it serves, once the scheduler picked this node
//! (`volume.kubernetes.io/selected-node`, WaitForFirstConsumer) or at once for an `Immediate`
//! class, it creates a directory `<data-dir>/storage/pvc-<uid>` and a `local` PersistentVolume
//! with node affinity to this node, and binds claim and volume both ways as upstream's
//! PV controller does. When the claim is gone, a volume it provisioned is released and, with
//! reclaimPolicy Delete, its directory and the PersistentVolume are removed. Keeping a claim in
//! use from being deleted is `scheduler::pvc_protection`; mounting is `volumes`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Event as CoreEvent, EventSource, LocalVolumeSource, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub const PROVISIONER: &str = "k1s.io/local-path";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {what}: {source}")]
    Api { what: String, source: kube::Error },
    #[error("failed to {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

struct Ctx {
    client: Client,
    node: String,
    storage: PathBuf,
    /// Claims told WaitForFirstConsumer already (by uid), so the event is written once.
    told_waiting: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Ctx {
    /// A core/v1 Event about `pvc`, from upstream's PV controller (`binder`) or from the
    /// external provisioner.
    async fn event(&self, binder: bool, pvc: &PersistentVolumeClaim, reason: &str, note: String) {
        let ns = pvc.metadata.namespace.clone().unwrap_or_default();
        let component = if binder {
            "persistentvolume-controller".to_string()
        } else {
            format!("{PROVISIONER}_{}", self.node)
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        let ev = CoreEvent {
            metadata: ObjectMeta {
                generate_name: Some(format!(
                    "{}.",
                    pvc.metadata.name.as_deref().unwrap_or("pvc")
                )),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: pvc.object_ref(&()),
            reason: Some(reason.into()),
            message: Some(note),
            type_: Some("Normal".into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            reporting_component: Some(component.clone()),
            reporting_instance: Some(self.node.clone()),
            action: Some(if binder { "Binding" } else { "Provisioning" }.into()),
            source: Some(EventSource {
                component: Some(component),
                host: None,
            }),
            ..Default::default()
        };
        let api: Api<CoreEvent> = Api::namespaced(self.client.clone(), &ns);
        if let Err(e) = api.create(&PostParams::default(), &ev).await {
            tracing::debug!(error = %e, "failed to record an event");
        }
    }
}

/// Run the provisioner for `node` until `cancel` fires.
pub async fn run(client: Client, node: String, data_dir: &Path, cancel: CancellationToken) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        storage: data_dir.join("storage"),
        node,
        told_waiting: Default::default(),
    });
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let provision = Controller::new(claims.clone(), watcher::Config::default())
        .graceful_shutdown_on(cancel.clone().cancelled_owned())
        .run(provision, error_policy, ctx.clone())
        .for_each(|_| async {});
    // A claim that goes away (its delete event) brings its volume back to `reclaim`.
    let reclaim = Controller::new(volumes, watcher::Config::default())
        .watches(claims, watcher::Config::default(), |pvc| {
            pvc.spec
                .and_then(|s| s.volume_name)
                .filter(|v| !v.is_empty())
                .map(|v| ObjectRef::new(&v))
        })
        .graceful_shutdown_on(cancel.cancelled_owned())
        .run(reclaim, error_policy, ctx)
        .for_each(|_| async {});
    futures::join!(provision, reclaim);
}

fn error_policy<K>(_obj: Arc<K>, e: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %e, "local-path provisioner: retrying");
    Action::requeue(Duration::from_secs(5))
}

/// Provision and bind an unbound claim of a class this provisioner serves.
async fn provision(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let spec = pvc.spec.clone().unwrap_or_default();
    let bound = spec.volume_name.as_deref().is_some_and(|v| !v.is_empty());
    if bound || pvc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(class_name) = spec.storage_class_name.clone().filter(|c| !c.is_empty()) else {
        return Ok(Action::await_change());
    };
    let classes: Api<StorageClass> = Api::all(ctx.client.clone());
    let class = classes
        .get_opt(&class_name)
        .await
        .map_err(api_err(format!("get StorageClass {class_name}")))?;
    let Some(class) = class.filter(|c| c.provisioner == PROVISIONER) else {
        return Ok(Action::await_change());
    };
    let selected = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE));
    let wait = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    match selected {
        Some(n) if *n != ctx.node => return Ok(Action::await_change()),
        None if wait => {
            let uid = pvc.metadata.uid.clone().unwrap_or_default();
            let first = ctx
                .told_waiting
                .lock()
                .map(|mut t| t.insert(uid))
                .unwrap_or(false);
            if !first {
                return Ok(Action::await_change());
            }
            let note = "waiting for first consumer to be created before binding".to_string();
            ctx.event(true, &pvc, "WaitForFirstConsumer", note).await;
            return Ok(Action::await_change());
        }
        _ => {}
    }
    let claim = format!(
        "{}/{}",
        pvc.metadata.namespace.as_deref().unwrap_or_default(),
        pvc.metadata.name.as_deref().unwrap_or_default()
    );
    let note = format!("External provisioner is provisioning volume for claim {claim:?}");
    ctx.event(false, &pvc, "Provisioning", note).await;
    let pv = create_volume(&pvc, &class, &ctx).await?;
    let pv_name = pv.metadata.name.clone().unwrap_or_default();
    let note = format!("Successfully provisioned volume {pv_name}");
    ctx.event(false, &pvc, "ProvisioningSucceeded", note).await;
    bind(&pvc, &pv, &ctx).await?;
    Ok(Action::await_change())
}

/// The directory and the PersistentVolume for `pvc` (idempotent: an existing one is reused).
async fn create_volume(
    pvc: &PersistentVolumeClaim,
    class: &StorageClass,
    ctx: &Ctx,
) -> Result<PersistentVolume, Error> {
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    let name = format!("pvc-{uid}");
    let dir = ctx.storage.join(&name);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: "create volume directory",
        path: dir.clone(),
        source,
    })?;
    // Like the upstream local-path provisioner: any container user may write.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
    let spec = pvc.spec.clone().unwrap_or_default();
    let capacity: BTreeMap<_, _> = spec
        .resources
        .and_then(|r| r.requests)
        .and_then(|r| r.get("storage").cloned())
        .map(|q| ("storage".to_string(), q))
        .into_iter()
        .collect();
    let pv = PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            annotations: Some([(PROVISIONED_BY.to_string(), PROVISIONER.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(capacity),
            access_modes: spec.access_modes.clone(),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
            ),
            storage_class_name: spec.storage_class_name.clone(),
            volume_mode: Some("Filesystem".into()),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: pvc.metadata.namespace.clone(),
                name: pvc.metadata.name.clone(),
                uid: pvc.metadata.uid.clone(),
                resource_version: pvc.metadata.resource_version.clone(),
                ..Default::default()
            }),
            local: Some(LocalVolumeSource {
                path: dir.display().to_string(),
                fs_type: None,
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "kubernetes.io/hostname".into(),
                            operator: "In".into(),
                            values: Some(vec![ctx.node.clone()]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match api.create(&PostParams::default(), &pv).await {
        Ok(pv) => {
            tracing::info!(volume = %name, path = %dir.display(), "provisioned a local-path volume");
            Ok(pv)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => api
            .get(&name)
            .await
            .map_err(api_err(format!("get PersistentVolume {name}"))),
        Err(e) => Err(api_err(format!("create PersistentVolume {name}"))(e)),
    }
}

/// Bind volume and claim both ways, with the status and annotations upstream's PV controller
/// writes.
async fn bind(pvc: &PersistentVolumeClaim, pv: &PersistentVolume, ctx: &Ctx) -> Result<(), Error> {
    let pv_name = pv.metadata.name.clone().unwrap_or_default();
    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
    let name = pvc.metadata.name.clone().unwrap_or_default();
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let bound = json!({"status": {"phase": "Bound"}});
    pvs.patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&bound))
        .await
        .map_err(api_err(format!("mark PersistentVolume {pv_name} Bound")))?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let claim = json!({
        "metadata": {"annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.kubernetes.io/storage-provisioner": PROVISIONER,
            "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
        }},
        "spec": {"volumeName": pv_name},
    });
    claims
        .patch(&name, &PatchParams::default(), &Patch::Merge(&claim))
        .await
        .map_err(api_err(format!("bind PersistentVolumeClaim {ns}/{name}")))?;
    let pv_spec = pv.spec.clone().unwrap_or_default();
    let status = json!({"status": {
        "phase": "Bound",
        "accessModes": pv_spec.access_modes,
        "capacity": pv_spec.capacity,
    }});
    claims
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(api_err(format!(
            "mark PersistentVolumeClaim {ns}/{name} Bound"
        )))?;
    tracing::info!(claim = %format!("{ns}/{name}"), volume = %pv_name, "bound");
    Ok(())
}

/// A volume this provisioner made whose claim is gone: Released, and with reclaimPolicy
/// Delete its directory and the PersistentVolume removed.
async fn reclaim(pv: Arc<PersistentVolume>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ours = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .is_some_and(|p| p == PROVISIONER);
    let spec = pv.spec.clone().unwrap_or_default();
    let Some(claim) = spec.claim_ref.clone().filter(|_| ours) else {
        return Ok(Action::await_change());
    };
    let ns = claim.namespace.clone().unwrap_or_default();
    let claim_name = claim.name.clone().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let current = claims.get_opt(&claim_name).await.map_err(api_err(format!(
        "get PersistentVolumeClaim {ns}/{claim_name}"
    )))?;
    if current.is_some_and(|c| c.metadata.uid == claim.uid) {
        return Ok(Action::await_change());
    }
    let name = pv.metadata.name.clone().unwrap_or_default();
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Released") {
        let released = json!({"status": {"phase": "Released"}});
        pvs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&released))
            .await
            .map_err(api_err(format!("release PersistentVolume {name}")))?;
    }
    if spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete") {
        return Ok(Action::await_change());
    }
    // Only ever remove a directory of our own storage folder.
    let dir = ctx.storage.join(&name);
    let declared = spec.local.map(|l| PathBuf::from(l.path));
    if declared.as_deref() == Some(dir.as_path()) {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "remove volume directory",
                    path: dir,
                    source,
                })
            }
        }
    }
    match pvs.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(api_err(format!("delete PersistentVolume {name}"))(e)),
    }
    tracing::info!(volume = %name, "deleted a released local-path volume");
    Ok(Action::await_change())
}
