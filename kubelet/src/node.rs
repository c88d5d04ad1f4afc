//! Node registration and heartbeats: the Node object (capacity, allocatable, node info,
//! addresses, conditions) and its Lease in `kube-node-lease`, renewed every 10 s. The Node's
//! status is rewritten only when something changes or once a minute, to keep flash writes low.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use tokio_util::sync::CancellationToken;

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

fn condition(ty: &str, status: &str, reason: &str, msg: &str, now: Timestamp) -> NodeCondition {
    NodeCondition {
        type_: ty.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(msg.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The full desired status of the node.
pub fn node_status(cfg: &NodeConfig, host: &HostInfo) -> NodeStatus {
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
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                now,
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                now,
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                now,
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
                now,
            ),
        ]),
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
pub async fn register(client: &Client, cfg: &NodeConfig, host: &HostInfo) -> Result<(), Error> {
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
    let status = serde_json::json!({"status": node_status(cfg, host)});
    nodes
        .patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|source| Error::Api {
            what: format!("update node {} status", cfg.name),
            source,
        })?;
    Ok(())
}

/// Renew the node lease every 10 s and the node status every minute until cancelled.
pub async fn heartbeat(client: Client, cfg: NodeConfig, host: HostInfo, cancel: CancellationToken) {
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
            }
            _ = status_tick.tick() => {
                if let Err(e) = register(&client, &cfg, &host).await {
                    tracing::warn!(error = %e, "failed to update node status");
                }
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
