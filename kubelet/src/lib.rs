//! The k1s kubelet: registers the node, keeps its lease, and runs the pods bound to it
//! through the container runtime (`cri::Cri`), reporting their status like upstream's kubelet.

pub mod atomic_writer;
pub mod container_config;
pub mod container_start;
pub mod crash_loop;
pub mod cri;
pub mod events;
pub mod eviction;
pub mod lifecycle;
pub mod local_path;
pub mod metrics;
pub mod node;
pub mod pod_workers;
pub mod prober;
pub mod qos;
pub mod runtime_adapter;
pub mod server;
pub mod status;
pub mod status_manager;
pub mod sync_pod;
pub mod sync_terminating_pod;
pub mod termination_message;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {what}: {source}")]
    Api { what: String, source: kube::Error },
}

/// Settings of the node agent.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    pub node_ip: String,
    pub data_dir: PathBuf,
    pub cluster_dns: String,
    pub cluster_domain: String,
    pub api_service_ip: String,
    pub max_pods: u32,
    /// CrashLoopBackOff: first delay, cap, and how long a container must run to reset it.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub backoff_reset: Duration,
    pub node_cpus: u64,
    pub node_memory: u64,
    pub runtime_version: String,
    /// Hard eviction thresholds and timers.
    pub eviction: eviction::Config,
    /// Containers' oom_score_adj is at least this (see `qos::oom_score_adj_floor`).
    pub oom_score_adj_floor: i32,
    /// The cluster's Services, for the service links in containers' environment (`run` fills
    /// it with a reflector; None: only the `kubernetes` service's variables).
    pub services: Option<kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Service>>,
}

impl KubeletConfig {
    pub fn new(node_name: String, node_ip: String, data_dir: PathBuf) -> Self {
        let host = node::HostInfo::read(&data_dir);
        KubeletConfig {
            node_name,
            node_ip,
            data_dir,
            cluster_dns: "10.43.0.10".into(),
            cluster_domain: "cluster.local".into(),
            api_service_ip: "10.43.0.1".into(),
            max_pods: 110,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            backoff_reset: Duration::from_secs(600),
            node_cpus: host.cpus,
            node_memory: host.memory_bytes,
            runtime_version: format!("k1s://{}", env!("CARGO_PKG_VERSION")),
            eviction: eviction::Config::default(),
            oom_score_adj_floor: qos::oom_score_adj_floor(),
            services: None,
        }
    }
}

/// Register the node and run pods until `cancel` fires.
pub async fn run(
    client: Client,
    cri: Arc<dyn cri::Cri>,
    cfg: KubeletConfig,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let host = node::HostInfo::read(&cfg.data_dir);
    // One directory per pod below: spread over the filesystem (see create_spread_dir).
    let pods_dir = cfg.data_dir.join("pods");
    if let Err(e) = runtime::layout::create_spread_dir(&pods_dir) {
        tracing::warn!(dir = %pods_dir.display(), error = %e, "could not create the pods directory");
    }
    let ncfg = node::NodeConfig {
        name: cfg.node_name.clone(),
        internal_ip: cfg.node_ip.clone(),
        max_pods: cfg.max_pods,
        runtime_version: cfg.runtime_version.clone(),
    };
    let (pressure_tx, pressure) = tokio::sync::watch::channel(eviction::Pressure::default());
    let initial = node::Conditions::new(*pressure.borrow());
    node::register(&client, &ncfg, &host, &initial, cri.images().await).await?;
    let hb = tokio::spawn(node::heartbeat(
        client.clone(),
        ncfg,
        host,
        cri.clone(),
        pressure.clone(),
        cancel.child_token(),
    ));
    // Services for the containers' service links, kept by a reflector.
    let (services, services_task) = {
        use futures::StreamExt;
        use kube::runtime::{reflector, watcher, WatchStreamExt};
        let (reader, writer) = reflector::store();
        let api: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::all(client.clone());
        let stream = reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .touched_objects();
        let cancel = cancel.child_token();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    ev = stream.next() => if ev.is_none() { return },
                }
            }
        });
        (reader, task)
    };
    let mut cfg = cfg;
    cfg.services = Some(services);
    let cfg = Arc::new(cfg);
    let (requests_tx, requests) = tokio::sync::mpsc::channel(4);
    let evictions = {
        let m = eviction::Manager::new(
            client.clone(),
            cri.clone(),
            cfg.clone(),
            requests_tx,
            pressure_tx,
        );
        tokio::spawn(m.run(cancel.child_token()))
    };
    let streaming = {
        let (cri, dir, cancel) = (cri.clone(), cfg.data_dir.clone(), cancel.child_token());
        tokio::spawn(async move {
            if let Err(e) = server::serve(cri, &dir, cancel).await {
                tracing::error!(error = %e, "the kubelet streaming endpoint failed");
            }
        })
    };
    let provisioner = {
        let (client, node, dir) = (client.clone(), cfg.node_name.clone(), cfg.data_dir.clone());
        let cancel = cancel.child_token();
        tokio::spawn(async move { local_path::run(client, node, &dir, cancel).await })
    };
    let workers = pod_workers::Workers::new(client, cri, cfg, pressure, cancel.child_token());
    workers.run(requests).await;
    let _ = evictions.await;
    let _ = provisioner.await;
    let _ = hb.await;
    let _ = services_task.await;
    streaming.abort();
    Ok(())
}
