//! OCI bundles for the `runc`/`crun` RuntimeClass handlers: the same `ContainerSpec` the
//! built-in runtime executes, expressed as an OCI runtime `config.json` (typed and checked
//! by `oci-spec`). The two paths act as each other's correctness oracle in tests.
//! Not covered yet: seccomp in the bundle (runc then runs without a filter).

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;
use serde_json::json;

use crate::container::rootfs::{MASKED_PATHS, READONLY_PATHS};
use crate::container::spec::ContainerSpec;
use crate::container::user;
use crate::safe_path::open_in_root;

/// Reads a file of the image without ever leaving its rootfs (symlinks resolve inside).
fn reader(root: &OwnedFd) -> impl Fn(&str) -> String + '_ {
    move |p: &str| {
        open_in_root(root, Path::new(p), OFlag::O_RDONLY)
            .ok()
            .and_then(|fd| std::io::read_to_string(std::fs::File::from(fd)).ok())
            .unwrap_or_default()
    }
}

/// `ns` lists (OCI namespace type, path) for the namespaces joined from the pod.
pub fn oci_spec(
    spec: &ContainerSpec,
    etc_dir: &Path,
    ns: &[(&str, &Path)],
) -> Result<oci_spec::runtime::Spec, String> {
    let rootfs = spec.rootfs();
    let root = nix::fcntl::open(
        &rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open rootfs {}: {e}", rootfs.display()))?;
    let id = user::resolve_with(
        &reader(&root),
        &spec.image_user,
        spec.run_as_user,
        spec.run_as_group,
    )?
    .with_groups(&spec.supplemental_groups);
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            id.home
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/".into())
        ));
    }
    let caps: Vec<String> = spec
        .capabilities
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    let sys_flags = if spec.privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_flags}),
    ];
    for m in &spec.mounts {
        let mut opts = vec!["rbind", "rprivate"];
        if m.readonly {
            opts.push("ro");
        }
        mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": opts}));
    }
    for f in ["hosts", "hostname", "resolv.conf"] {
        let dst = format!("/etc/{f}");
        if !spec.mounts.iter().any(|m| m.destination == dst) && etc_dir.join(f).exists() {
            mounts.push(json!({"destination": dst, "type": "bind", "source": etc_dir.join(f), "options": ["rbind", "rprivate"]}));
        }
    }
    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "mount"})];
    for (kind, path) in ns {
        namespaces.push(json!({"type": kind, "path": path}));
    }
    let r = &spec.resources;
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(m) = r.memory_limit_bytes {
        resources["memory"] = json!({"limit": m, "swap": m});
    }
    let mut cpu = serde_json::Map::new();
    if let Some(s) = r.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(q) = r.cpu_quota.filter(|q| *q > 0) {
        cpu.insert("quota".into(), json!(q));
        cpu.insert("period".into(), json!(r.cpu_period.unwrap_or(100_000)));
    }
    if !cpu.is_empty() {
        resources["cpu"] = serde_json::Value::Object(cpu);
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        resources["pids"] = json!({"limit": p});
    }
    let (masked, readonly): (Vec<&str>, Vec<&str>) = if spec.privileged {
        (vec![], vec![])
    } else {
        (MASKED_PATHS.to_vec(), READONLY_PATHS.to_vec())
    };
    let mut value = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": id.uid, "gid": id.gid, "additionalGids": id.groups},
            "args": spec.argv,
            "env": env,
            "cwd": if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps},
            "noNewPrivileges": spec.no_new_privs,
        },
        "root": {"path": rootfs, "readonly": spec.read_only_rootfs},
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": format!("/{}", spec.cgroup),
            "resources": resources,
            "maskedPaths": masked,
            "readonlyPaths": readonly,
        },
    });
    if let Some(adj) = r.oom_score_adj {
        value["process"]["oomScoreAdj"] = json!(adj);
    }
    serde_json::from_value(value).map_err(|e| format!("build OCI spec: {e}"))
}
