//! A pod's volumes on disk, under `<data-dir>/pods/<uid>/volumes/<name>`: emptyDir, hostPath
//! (type checked), persistentVolumeClaim (the bound volume's `local` or `hostPath` directory,
//! e.g. one from the `local_path` provisioner), and the API-backed ones (configMap, secret, downwardAPI, projected) written
//! through the `atomic_writer`, so that `refresh` can update them in running pods when their
//! ConfigMap or Secret changes, as upstream's kubelet does (subPath mounts keep the old file,
//! as upstream). emptyDirs are world-writable (0777) like upstream's, and `medium: Memory`
//! ones are a tmpfs of `sizeLimit` mounted there. With a pod `fsGroup`, emptyDirs (their
//! setgid root) and the API-backed volumes belong to that group (group read, and write for
//! emptyDirs), as upstream's `SetVolumeOwnership`. Building a container's mounts from these is
//! `container_config`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{KeyToPath, Pod, Volume};
use kube::Client;

use crate::atomic_writer::{self, File, Payload};
use crate::container_config::{field_value, pod_dir, service_account_token, source_data, Source};
use crate::KubeletConfig;

/// Which API object a change notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ConfigMap,
    Secret,
}

/// Whether volume `v` projects the ConfigMap or Secret `name` (of the pod's namespace).
pub fn references(v: &Volume, kind: Kind, name: &str) -> bool {
    let direct = match kind {
        Kind::ConfigMap => v.config_map.as_ref().is_some_and(|c| c.name == name),
        Kind::Secret => v
            .secret
            .as_ref()
            .is_some_and(|s| s.secret_name.as_deref() == Some(name)),
    };
    let projected = v
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
        .any(|s| match kind {
            Kind::ConfigMap => s.config_map.as_ref().is_some_and(|c| c.name == name),
            Kind::Secret => s.secret.as_ref().is_some_and(|c| c.name == name),
        });
    direct || projected
}

/// Whether every mount of `v` is read-only, as upstream mounts the API-backed volumes
/// (configMap, secret, downwardAPI, projected) and claims with `readOnly`.
pub fn always_read_only(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some()
        || v.persistent_volume_claim.as_ref().and_then(|c| c.read_only) == Some(true)
}

/// The directory of volume `name` of pod `uid`.
pub fn volume_dir(cfg: &KubeletConfig, uid: &str, name: &str) -> PathBuf {
    pod_dir(cfg, uid).join("volumes").join(name)
}

/// Add the keys of a ConfigMap or Secret (all, or `items`) to `out`.
fn project(
    out: &mut Payload,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    mode: i32,
    what: &str,
) -> Result<(), String> {
    let mut put = |path: &str, v: &Vec<u8>, mode: i32| {
        if !atomic_writer::valid_path(path) {
            return Err(format!("invalid path {path:?} in volume item"));
        }
        out.insert(
            path.to_string(),
            File {
                data: v.clone(),
                mode: mode as u32,
            },
        );
        Ok(())
    };
    match items {
        Some(items) => {
            for it in items {
                let Some(v) = data.get(&it.key) else {
                    return Err(format!(
                        "configmap references non-existent config key: {} ({what})",
                        it.key
                    ));
                };
                put(&it.path, v, it.mode.unwrap_or(mode))?;
            }
        }
        None => {
            for (k, v) in data {
                put(k, v, mode)?;
            }
        }
    }
    Ok(())
}

/// The files of an API-backed volume, or None for another type.
async fn payload(
    client: &Client,
    cfg: &KubeletConfig,
    pod: &Pod,
    v: &Volume,
) -> Result<Option<Payload>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Payload::new();
    let downward = |out: &mut Payload,
                    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
                    mode: i32|
     -> Result<(), String> {
        for it in items {
            if let Some(f) = &it.field_ref {
                let data = field_value(pod, f, &cfg.node_ip)?.into_bytes();
                if !atomic_writer::valid_path(&it.path) {
                    return Err(format!("invalid path {:?} in volume item", it.path));
                }
                let mode = it.mode.unwrap_or(mode) as u32;
                out.insert(it.path.clone(), File { data, mode });
            }
        }
        Ok(())
    };
    if let Some(src) = &v.config_map {
        let mode = src.default_mode.unwrap_or(0o644);
        let data = source_data(client, &ns, Source::ConfigMap, &src.name, src.optional).await?;
        if let Some(data) = data {
            project(&mut out, &data, src.items.as_ref(), mode, &src.name)?;
        }
    } else if let Some(src) = &v.secret {
        let name = src.secret_name.clone().unwrap_or_default();
        let mode = src.default_mode.unwrap_or(0o644);
        if let Some(data) = source_data(client, &ns, Source::Secret, &name, src.optional).await? {
            project(&mut out, &data, src.items.as_ref(), mode, &name)?;
        }
    } else if let Some(src) = &v.downward_api {
        let mode = src.default_mode.unwrap_or(0o644);
        downward(&mut out, src.items.as_deref().unwrap_or_default(), mode)?;
    } else if let Some(src) = &v.projected {
        let mode = src.default_mode.unwrap_or(0o644);
        for s in src.sources.iter().flatten() {
            if let Some(cm) = &s.config_map {
                let data =
                    source_data(client, &ns, Source::ConfigMap, &cm.name, cm.optional).await?;
                if let Some(data) = data {
                    project(&mut out, &data, cm.items.as_ref(), mode, &cm.name)?;
                }
            }
            if let Some(sec) = &s.secret {
                let data =
                    source_data(client, &ns, Source::Secret, &sec.name, sec.optional).await?;
                if let Some(data) = data {
                    project(&mut out, &data, sec.items.as_ref(), mode, &sec.name)?;
                }
            }
            if let Some(d) = &s.downward_api {
                downward(&mut out, d.items.as_deref().unwrap_or_default(), mode)?;
            }
            if let Some(t) = &s.service_account_token {
                let token = service_account_token(client, pod, t).await?;
                let file = File {
                    data: token.into_bytes(),
                    mode: mode as u32,
                };
                out.insert(t.path.clone(), file);
            }
        }
    } else {
        return Ok(None);
    }
    Ok(Some(out))
}

fn host_path(hp: &k8s_openapi::api::core::v1::HostPathVolumeSource) -> Result<PathBuf, String> {
    let p = PathBuf::from(&hp.path);
    let ty = hp.type_.as_deref().unwrap_or("");
    let ok = match ty {
        "" => true,
        "DirectoryOrCreate" => {
            std::fs::create_dir_all(&p)
                .map_err(|e| format!("failed to create {}: {e}", p.display()))?;
            true
        }
        "Directory" => p.is_dir(),
        "FileOrCreate" => {
            if !p.exists() {
                std::fs::write(&p, b"").map_err(|e| e.to_string())?;
            }
            true
        }
        "File" => p.is_file(),
        "Socket" | "CharDevice" | "BlockDevice" => p.exists(),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "hostPath type check failed: {} is not a {ty}",
            hp.path
        ));
    }
    Ok(p)
}

/// The directory of the volume bound to claim `ns/name`, with upstream's messages when the
/// claim is missing or not bound yet.
async fn claimed_path(client: &Client, ns: &str, name: &str) -> Result<PathBuf, String> {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let claims: kube::Api<PersistentVolumeClaim> = kube::Api::namespaced(client.clone(), ns);
    let pvc = claims
        .get_opt(name)
        .await
        .map_err(|e| format!("error processing PVC {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("persistentvolumeclaim \"{name}\" not found"))?;
    let phase = pvc
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if phase != "Bound" || volume.is_empty() {
        return Err(format!(
            "PVC {ns}/{name} has non-bound phase (\"{phase}\") or empty pvc.Spec.VolumeName (\"{volume}\")"
        ));
    }
    let pvs: kube::Api<PersistentVolume> = kube::Api::all(client.clone());
    let pv = pvs
        .get_opt(&volume)
        .await
        .map_err(|e| format!("error processing PVC {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("persistentvolume \"{volume}\" not found"))?;
    let spec = pv.spec.unwrap_or_default();
    let path = match (spec.local, spec.host_path) {
        (Some(l), _) => PathBuf::from(l.path),
        (None, Some(h)) => PathBuf::from(h.path),
        _ => {
            return Err(format!(
                "persistentvolume {volume} has a type k1s does not support yet (local and hostPath are)"
            ))
        }
    };
    if !path.is_dir() {
        return Err(format!(
            "path {} of persistentvolume {volume} does not exist",
            path.display()
        ));
    }
    Ok(path)
}

/// Prepare a volume on disk; returns the host path to mount.
pub async fn prepare(
    client: &Client,
    cfg: &KubeletConfig,
    pod: &Pod,
    v: &Volume,
) -> Result<PathBuf, String> {
    if let Some(hp) = &v.host_path {
        return host_path(hp);
    }
    if let Some(claim) = &v.persistent_volume_claim {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        return claimed_path(client, &ns, &claim.claim_name).await;
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let base = volume_dir(cfg, &uid, &v.name);
    std::fs::create_dir_all(&base)
        .map_err(|e| format!("failed to create {}: {e}", base.display()))?;
    let fs_group = fs_group(pod);
    if let Some(ed) = &v.empty_dir {
        if ed.medium.as_deref() == Some("Memory") {
            let size = ed
                .size_limit
                .as_ref()
                .and_then(|q| crate::container_config::parse_quantity(&q.0))
                .map(|b| b as u64);
            mount_tmpfs(&base, size)
                .map_err(|e| format!("failed to mount a tmpfs for volume {}: {e}", v.name))?;
        }
        // rwx for all, keeping a setgid bit from the fsGroup below.
        let mode = std::fs::metadata(&base)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if mode & 0o777 != 0o777 {
            std::fs::set_permissions(
                &base,
                std::fs::Permissions::from_mode(mode & 0o7000 | 0o777),
            )
            .map_err(|e| format!("failed to set the mode of {}: {e}", base.display()))?;
        }
        // The root only, while it lacks the group (upstream's OnRootMismatch): what the
        // containers create inherits the group from the setgid directory. Their content is
        // never walked: a container could swap a directory for a symlink into the host.
        if let Some(gid) = fs_group.filter(|g| !owned_by(&base, *g)) {
            set_ownership(&base, gid, false, false)
                .map_err(|e| format!("failed to set the group of volume {}: {e}", v.name))?;
        }
        return Ok(base);
    }
    let Some(files) = payload(client, cfg, pod, v).await? else {
        return Err(format!(
            "volume {} has a type k1s does not support yet",
            v.name
        ));
    };
    let dir = base.clone();
    tokio::task::spawn_blocking(move || write_owned(&dir, &files, fs_group))
        .await
        .map_err(|e| format!("volume writer failed: {e}"))?
        .map_err(|e| format!("failed to write volume {}: {e}", v.name))?;
    Ok(base)
}

/// `atomic_writer::write`, then the pod's fsGroup on what it wrote (a new timestamped
/// directory each time the content changes).
fn write_owned(dir: &Path, files: &Payload, fs_group: Option<u32>) -> std::io::Result<bool> {
    let changed = atomic_writer::write(dir, files)?;
    if let Some(gid) = fs_group {
        // Written by the kubelet and mounted read-only: no container can change the tree.
        set_ownership(dir, gid, true, true)?;
    }
    Ok(changed)
}

/// The pod's `securityContext.fsGroup`.
fn fs_group(pod: &Pod) -> Option<u32> {
    pod.spec
        .as_ref()?
        .security_context
        .as_ref()?
        .fs_group
        .and_then(|g| u32::try_from(g).ok())
}

/// Whether `dir` already has group `gid` and the setgid bit.
fn owned_by(dir: &Path, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).is_ok_and(|m| m.gid() == gid && m.mode() & 0o2000 != 0)
}

/// Upstream's `SetVolumeOwnership`: `dir` (and with `recursive` every entry under it, symlinks
/// not followed) gets group `gid`, group read (and write unless `read_only`), directories also
/// the setgid bit and group search. Only for trees no container can write to while this runs.
fn set_ownership(dir: &Path, gid: u32, read_only: bool, recursive: bool) -> std::io::Result<()> {
    let mask = if read_only { 0o440 } else { 0o660 };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p)?;
        std::os::unix::fs::lchown(&p, None, Some(gid))?;
        if md.file_type().is_symlink() {
            continue;
        }
        let mut mode = md.permissions().mode() & 0o7777 | mask;
        if md.is_dir() {
            mode |= 0o2000 | 0o110;
            if recursive {
                for e in std::fs::read_dir(&p)? {
                    stack.push(e?.path());
                }
            }
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Mounts a tmpfs of `size` bytes (the kernel's default, half the memory, without one) at
/// `dir`, unless one is there already (the kubelet restarted).
fn mount_tmpfs(dir: &Path, size: Option<u64>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let here = std::fs::metadata(dir)?.dev();
    let parent = std::fs::metadata(dir.join(".."))?.dev();
    if here != parent {
        return Ok(());
    }
    let opts = size.map(|b| format!("size={b}"));
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        opts.as_deref(),
    )
    .map_err(std::io::Error::from)
}

/// Unmounts what `prepare` mounted under the pod's volumes (memory-backed emptyDirs), before
/// the pod's directory is deleted.
pub fn unmount_all(cfg: &KubeletConfig, uid: &str) {
    let dir = pod_dir(cfg, uid).join("volumes");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        // EINVAL for a directory that is not a mount point.
        let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Rewrite the volumes of a running pod that project ConfigMap or Secret `name`; volumes not
/// set up yet are left to container start. Returns the names of the volumes that changed.
pub async fn refresh(
    client: &Client,
    cfg: &KubeletConfig,
    pod: &Pod,
    kind: Kind,
    name: &str,
) -> Vec<String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut changed = Vec::new();
    let gid = fs_group(pod);
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in volumes.iter().filter(|v| references(v, kind, name)) {
        let dir = volume_dir(cfg, &uid, &v.name);
        if !dir.exists() {
            continue;
        }
        let files = match payload(client, cfg, pod, v).await {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(volume = %v.name, error = %e, "failed to refresh a volume");
                continue;
            }
        };
        let d = dir.clone();
        match tokio::task::spawn_blocking(move || write_owned(&d, &files, gid)).await {
            Ok(Ok(true)) => changed.push(v.name.clone()),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(volume = %v.name, error = %e, "failed to refresh a volume")
            }
            Err(e) => tracing::warn!(volume = %v.name, error = %e, "volume writer failed"),
        }
    }
    changed
}

/// The host path for `subPath` `sp` of a volume at `base`: it must stay inside the volume,
/// also through symlinks (the atomic writer's links resolve into its timestamped directory).
pub fn sub_path(base: &Path, sp: &str) -> Result<PathBuf, String> {
    if sp.split('/').any(|p| p == "..") || sp.starts_with('/') {
        return Err(format!("invalid subPath {sp:?}"));
    }
    let host = base.join(sp);
    if std::fs::symlink_metadata(&host).is_err() {
        std::fs::create_dir_all(&host).map_err(|e| e.to_string())?;
    }
    let real = host
        .canonicalize()
        .map_err(|e| format!("failed to resolve subPath {sp:?}: {e}"))?;
    let root = base
        .canonicalize()
        .map_err(|e| format!("failed to resolve {}: {e}", base.display()))?;
    if !real.starts_with(&root) {
        return Err(format!("subPath {sp:?} resolves outside the volume"));
    }
    Ok(real)
}
