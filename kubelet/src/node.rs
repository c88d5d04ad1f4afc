//! Node registration and heartbeats: the Node object (capacity, allocatable, node info,
//! addresses, conditions) and its Lease in `kube-node-lease`, renewed every 10 s. The Node's
//! status is rewritten only when something changes or once a minute, to keep flash writes low.
//! MemoryPressure / DiskPressure follow the eviction manager's `Pressure`: a change is written
//! at once, with the matching `node.kubernetes.io/*-pressure:NoSchedule` taint (what
//! upstream's node lifecycle controller adds), so the scheduler places no new pods here.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerImage, Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::eviction::Pressure;
use crate::Error;

/// Host facts read once at start.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub boot_id: String,
    pub machine_id: String,
    pub kernel: String,
    pub os_image: String,
    pub ephemeral_bytes: u64,
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl HostInfo {
    pub fn read(data_dir: &std::path::Path) -> HostInfo {
        let memory_kb = read_trim("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0);
        let os_image = read_trim("/etc/os-release")
            .lines()
            .find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        let ephemeral_bytes = statvfs_total(data_dir).unwrap_or(0);
        HostInfo {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            memory_bytes: memory_kb * 1024,
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            machine_id: read_trim("/etc/machine-id"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            os_image,
            ephemeral_bytes,
        }
    }
}

fn statvfs_total(p: &std::path::Path) -> Option<u64> {
    let mut cur = p.to_path_buf();
    while !cur.exists() {
        cur = cur.parent()?.to_path_buf();
    }
    let out = std::process::Command::new("df")
        .arg("-B1")
        .arg("--output=size")
        .arg(&cur)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

pub struct NodeConfig {
    pub name: String,
    pub internal_ip: String,
    pub max_pods: u32,
    pub runtime_version: String,
}

fn q(s: String) -> Quantity {
    Quantity(s)
}

fn condition(
    ty: &str,
    status: &str,
    reason: &str,
    msg: &str,
    now: Timestamp,
    since: Timestamp,
) -> NodeCondition {
    NodeCondition {
        type_: ty.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(msg.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(since)),
    }
}

/// The pressure conditions and when each last changed.
#[derive(Debug, Clone, Copy)]
pub struct Conditions {
    pub pressure: Pressure,
    memory_since: Timestamp,
    disk_since: Timestamp,
    ready_since: Timestamp,
}

impl Conditions {
    pub fn new(pressure: Pressure) -> Self {
        let now = Timestamp::now();
        Conditions {
            pressure,
            memory_since: now,
            disk_since: now,
            ready_since: now,
        }
    }

    /// Takes a new pressure, moving the transition times of what changed.
    pub fn update(&mut self, p: Pressure) {
        let now = Timestamp::now();
        if p.memory != self.pressure.memory {
            self.memory_since = now;
        }
        if p.disk != self.pressure.disk {
            self.disk_since = now;
        }
        self.pressure = p;
    }
}

fn bool_status(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The node's conditions with upstream's reasons and messages.
fn conditions(c: &Conditions, now: Timestamp) -> Vec<NodeCondition> {
    let p = c.pressure;
    let (mem_reason, mem_msg) = if p.memory {
        (
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        )
    } else {
        (
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        )
    };
    let (disk_reason, disk_msg) = if p.disk {
        ("KubeletHasDiskPressure", "kubelet has disk pressure")
    } else {
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")
    };
    vec![
        condition(
            "MemoryPressure",
            bool_status(p.memory),
            mem_reason,
            mem_msg,
            now,
            c.memory_since,
        ),
        condition(
            "DiskPressure",
            bool_status(p.disk),
            disk_reason,
            disk_msg,
            now,
            c.disk_since,
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now,
            c.ready_since,
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
            now,
            c.ready_since,
        ),
    ]
}

pub const MEMORY_PRESSURE_TAINT: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE_TAINT: &str = "node.kubernetes.io/disk-pressure";

/// The node's taints with the pressure taints made to match `p`; None when nothing changes.
pub fn pressure_taints(current: &[Taint], p: Pressure) -> Option<Vec<Taint>> {
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| t.key != MEMORY_PRESSURE_TAINT && t.key != DISK_PRESSURE_TAINT)
        .cloned()
        .collect();
    for (on, key) in [
        (p.memory, MEMORY_PRESSURE_TAINT),
        (p.disk, DISK_PRESSURE_TAINT),
    ] {
        if on {
            let kept = current
                .iter()
                .find(|t| t.key == key && t.effect == "NoSchedule");
            out.push(kept.cloned().unwrap_or(Taint {
                key: key.into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }));
        }
    }
    let same = out.len() == current.len() && out.iter().all(|t| current.contains(t));
    (!same).then_some(out)
}

/// Adds or removes the pressure taints; a conflicting write is retried on the next change
/// or status update.
pub async fn sync_taints(client: &Client, name: &str, p: Pressure) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(name).await?;
    let current = node.spec.and_then(|s| s.taints).unwrap_or_default();
    let Some(taints) = pressure_taints(&current, p) else {
        return Ok(());
    };
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"taints": taints},
    });
    nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::info!(
        memory = p.memory,
        disk = p.disk,
        "updated the node's pressure taints"
    );
    Ok(())
}

/// How many images a node status lists, and names per image (upstream's
/// `nodeStatusMaxImages` default and `MaxNamesPerImageInNodeStatus`).
const MAX_IMAGES: usize = 50;
const MAX_NAMES_PER_IMAGE: usize = 5;

/// `status.images` as upstream reports it: the largest images first, each with its digest
/// and tag names.
fn node_images(mut images: Vec<(Vec<String>, u64)>) -> Vec<ContainerImage> {
    images.sort_by_key(|i| std::cmp::Reverse(i.1));
    images
        .into_iter()
        .filter(|(names, _)| !names.is_empty())
        .take(MAX_IMAGES)
        .map(|(mut names, size)| {
            names.truncate(MAX_NAMES_PER_IMAGE);
            ContainerImage {
                names: Some(names),
                size_bytes: i64::try_from(size).ok(),
            }
        })
        .collect()
}

/// The full desired status of the node.
pub fn node_status(
    cfg: &NodeConfig,
    host: &HostInfo,
    conds: &Conditions,
    images: Vec<(Vec<String>, u64)>,
) -> NodeStatus {
    let now = Timestamp::now();
    // System reserved like upstream's eviction threshold: 100Mi of memory.
    let reserved = 100 * 1024 * 1024;
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".into(), q(host.cpus.to_string()));
    capacity.insert(
        "memory".into(),
        q(format!("{}Ki", host.memory_bytes / 1024)),
    );
    capacity.insert("pods".into(), q(cfg.max_pods.to_string()));
    capacity.insert(
        "ephemeral-storage".into(),
        q(format!("{}Ki", host.ephemeral_bytes / 1024)),
    );
    let mut allocatable = capacity.clone();
    allocatable.insert(
        "memory".into(),
        q(format!(
            "{}Ki",
            host.memory_bytes.saturating_sub(reserved) / 1024
        )),
    );
    allocatable.insert(
        "ephemeral-storage".into(),
        q(format!("{}", host.ephemeral_bytes / 10 * 9)),
    );
    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: cfg.internal_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: cfg.name.clone(),
            },
        ]),
        conditions: Some(conditions(conds, now)),
        images: Some(node_images(images)),
        node_info: Some(NodeSystemInfo {
            architecture: arch().into(),
            boot_id: host.boot_id.clone(),
            machine_id: host.machine_id.clone(),
            system_uuid: host.machine_id.clone(),
            container_runtime_version: cfg.runtime_version.clone(),
            kernel_version: host.kernel.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: "v1.35.0-k1s".into(),
            operating_system: "linux".into(),
            os_image: host.os_image.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Create the Node if missing and set its status.
pub async fn register(
    client: &Client,
    cfg: &NodeConfig,
    host: &HostInfo,
    conds: &Conditions,
    images: Vec<(Vec<String>, u64)>,
) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_string(), cfg.name.clone());
    labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
    labels.insert("kubernetes.io/arch".to_string(), arch().to_string());
    labels.insert(
        "node-role.kubernetes.io/control-plane".to_string(),
        "true".to_string(),
    );
    let node = Node {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(source) => {
            return Err(Error::Api {
                what: format!("register node {}", cfg.name),
                source,
            })
        }
    }
    let status = serde_json::json!({"status": node_status(cfg, host, conds, images)});
    nodes
        .patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|source| Error::Api {
            what: format!("update node {} status", cfg.name),
            source,
        })?;
    Ok(())
}

/// Renew the node lease every 10 s and the node status every minute, and at once when the
/// pressure or the set of images changes (looked at with each lease renewal), until
/// cancelled.
pub async fn heartbeat(
    client: Client,
    cfg: NodeConfig,
    host: HostInfo,
    cri: std::sync::Arc<dyn crate::cri::Cri>,
    mut pressure: watch::Receiver<Pressure>,
    cancel: CancellationToken,
) {
    let mut conds = Conditions::new(*pressure.borrow_and_update());
    let mut images = cri.images().await;
    // Taints left by a previous run under pressure go.
    let mut taints_synced = sync_taints(&client, &cfg.name, conds.pressure)
        .await
        .is_ok();
    let mut watching = true;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut lease_tick = tokio::time::interval(Duration::from_secs(10));
    let mut status_tick = tokio::time::interval(Duration::from_secs(60));
    status_tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&leases, &cfg.name).await {
                    tracing::warn!(error = %e, "failed to renew the node lease");
                }
                let now = cri.images().await;
                if now != images {
                    images = now;
                    if let Err(e) = register(&client, &cfg, &host, &conds, images.clone()).await {
                        tracing::warn!(error = %e, "failed to update node status");
                    }
                }
            }
            _ = status_tick.tick() => {
                if let Err(e) = register(&client, &cfg, &host, &conds, images.clone()).await {
                    tracing::warn!(error = %e, "failed to update node status");
                }
                if !taints_synced {
                    taints_synced = sync_taints(&client, &cfg.name, conds.pressure).await.is_ok();
                }
            }
            r = pressure.changed(), if watching => {
                if r.is_err() {
                    // The eviction manager is gone (no thresholds): nothing will change.
                    watching = false;
                    continue;
                }
                conds.update(*pressure.borrow_and_update());
                if let Err(e) = register(&client, &cfg, &host, &conds, images.clone()).await {
                    tracing::warn!(error = %e, "failed to update node status");
                }
                taints_synced = match sync_taints(&client, &cfg.name, conds.pressure).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to update the node's pressure taints");
                        false
                    }
                };
            }
        }
    }
}

async fn renew_lease(leases: &Api<Lease>, node: &str) -> Result<(), kube::Error> {
    let now = MicroTime(Timestamp::now());
    let spec = LeaseSpec {
        holder_identity: Some(node.into()),
        lease_duration_seconds: Some(40),
        renew_time: Some(now),
        ..Default::default()
    };
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(node.into()),
            namespace: Some("kube-node-lease".into()),
            ..Default::default()
        },
        spec: Some(spec),
    };
    let pp = PatchParams::apply("kubelet").force();
    leases
        .patch(node, &pp, &Patch::Apply(&lease))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_largest_first_with_capped_names() {
        let names = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let mut images: Vec<(Vec<String>, u64)> = (0..60)
            .map(|i| (names(1, &format!("img{i}:")), i as u64))
            .collect();
        images.push((names(8, "big:"), 1000));
        images.push((Vec::new(), 5000));
        let out = node_images(images);
        assert_eq!(out.len(), MAX_IMAGES);
        assert_eq!(out[0].size_bytes, Some(1000));
        assert_eq!(
            out[0].names.as_ref().map(Vec::len),
            Some(MAX_NAMES_PER_IMAGE)
        );
        assert_eq!(out[1].names, Some(vec!["img59:0".to_string()]));
        assert!(out.windows(2).all(|w| w[0].size_bytes >= w[1].size_bytes));
    }
}
