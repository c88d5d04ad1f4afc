//! The node side of `k1s server`: container runtime, pod network and kubelet, plus the
//! airgap import of image archives found in `<data-dir>/images/` at start (like k3s).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub fn runtime_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runtime")
}

/// First global IPv4 address of the host, else the pods' gateway.
fn node_ip(fallback: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output();
    if let Ok(o) = out {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let mut parts = line.split_whitespace();
            let iface = parts.nth(1).unwrap_or("");
            if iface.starts_with("k1s") || iface.starts_with("veth") {
                continue;
            }
            if let Some(addr) = line.split_whitespace().skip_while(|w| *w != "inet").nth(1) {
                if let Some(ip) = addr.split('/').next() {
                    return ip.to_string();
                }
            }
        }
    }
    fallback.to_string()
}

pub fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "k1s".into())
}

/// Kubelet settings that `k1s server` flags override (tests shorten the timers).
#[derive(Debug, Clone)]
pub struct KubeletTuning {
    pub backoff_base: std::time::Duration,
    pub backoff_max: std::time::Duration,
    pub backoff_reset: std::time::Duration,
    pub eviction_hard: Vec<kubelet::eviction::threshold::Threshold>,
    pub eviction_transition: std::time::Duration,
}

/// Start runtime, network and kubelet; returns when `cancel` fires.
pub async fn run(
    client: kube::Client,
    data_dir: PathBuf,
    node_name: String,
    tuning: KubeletTuning,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let rdir = runtime_dir(&data_dir);
    let mut rcfg = runtime::RuntimeConfig::new(&rdir);
    // One shim kept started ahead of need takes a process start out of each pod's start.
    rcfg.spare_shim = true;
    let rt = Arc::new(
        runtime::Runtime::new(rcfg)
            .await
            .context("failed to start the container runtime")?,
    );
    import_airgap(&rt, &data_dir.join("images")).await;
    let ncfg = network::NetworkConfig::new(&data_dir);
    let gateway = ncfg.gateway().to_string();
    let net = network::PodNetwork::new(ncfg)
        .await
        .context("failed to open the pod network")?;
    net.ensure_host_setup()
        .await
        .context("failed to set up the pod network on the host")?;
    let adapter = kubelet::runtime_adapter::Adapter::new(
        rt.clone(),
        Some(Arc::new(net)),
        rdir,
        data_dir.join("pods"),
    );
    let mut cfg = kubelet::KubeletConfig::new(node_name, node_ip(&gateway), data_dir);
    cfg.backoff_base = tuning.backoff_base;
    cfg.backoff_max = tuning.backoff_max;
    cfg.backoff_reset = tuning.backoff_reset;
    cfg.eviction.hard = tuning.eviction_hard;
    cfg.eviction.transition_period = tuning.eviction_transition;
    let res = kubelet::run(client, adapter, cfg, cancel)
        .await
        .context("kubelet failed");
    rt.stop_spare_shim().await;
    res
}

async fn import_airgap(rt: &runtime::Runtime, dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            continue;
        }
        match rt.import_image(&p).await {
            Ok(imgs) => {
                tracing::info!(archive = %p.display(), images = imgs.len(), "imported images")
            }
            Err(e) => {
                tracing::warn!(archive = %p.display(), error = %e, "failed to import an image archive")
            }
        }
    }
}
