//! `k1s server`: start every component in order of readiness and stop cleanly on SIGINT or
//! SIGTERM. Exits non-zero when a component fails (e.g. a store I/O error) so a supervisor
//! can restart it; running pods are not affected by a restart.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Folder for all state: the object store, TLS material, images, pods.
    #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Write the admin kubeconfig to this file.
    #[arg(
        long,
        default_value = "/etc/k1s/k1s.yaml",
        env = "K1S_KUBECONFIG_OUTPUT"
    )]
    pub write_kubeconfig: PathBuf,
    /// File mode of the kubeconfig, in octal.
    #[arg(long, default_value = "0600")]
    pub write_kubeconfig_mode: String,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// Extra host names or IPs for the serving certificate.
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Name of this node (defaults to the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Run the control plane only, without the node agent.
    #[arg(long)]
    pub disable_agent: bool,
    /// Events are kept in memory (gone after a restart) and deleted when not written for this
    /// long, as upstream's `--event-ttl`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: std::time::Duration,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, default_value = "info", env = "K1S_LOG")]
    pub log: String,
    /// CrashLoopBackOff: delay before the second restart of a crashed container (the first
    /// is immediate); doubles with each crash. Durations like 500ms, 10s, 5m.
    #[arg(long, default_value = "10s", value_parser = parse_duration, help_heading = "Kubelet tuning (for tests)")]
    pub kubelet_backoff_base: std::time::Duration,
    /// CrashLoopBackOff: the longest delay between restarts.
    #[arg(long, default_value = "5m", value_parser = parse_duration, help_heading = "Kubelet tuning (for tests)")]
    pub kubelet_backoff_max: std::time::Duration,
    /// CrashLoopBackOff: a container that ran this long before crashing restarts at once
    /// again.
    #[arg(long, default_value = "10m", value_parser = parse_duration, help_heading = "Kubelet tuning (for tests)")]
    pub kubelet_backoff_reset: std::time::Duration,
    /// Hard eviction thresholds, as upstream's kubelet: comma-separated `signal<value` with
    /// signals memory.available, nodefs.available, nodefs.inodesFree, imagefs.available,
    /// imagefs.inodesFree and values as quantities or percentages of the capacity. A list
    /// replaces the defaults entirely; "" disables eviction.
    #[arg(
        long,
        default_value = kubelet::eviction::threshold::DEFAULT_HARD,
        value_parser = valid_eviction_hard,
    )]
    pub eviction_hard: String,
    /// How long MemoryPressure / DiskPressure stay True after the last crossed threshold.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub eviction_pressure_transition_period: std::time::Duration,
}

/// Checks `--eviction-hard` while parsing the command line (errors print with the flag).
fn valid_eviction_hard(s: &str) -> Result<String, String> {
    kubelet::eviction::threshold::parse_hard(s).map(|_| s.to_string())
}

/// A duration like Go's: a sequence of numbers with units h, m, s, ms, us, ns (`1m30s`,
/// `500ms`, `1.5s`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?} (use e.g. 500ms, 10s, 5m)");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

pub fn main(args: ServerArgs) -> ExitCode {
    runtime::memory::tune();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .init();
    // Like upstream's kubelet: the OOM killer takes every container before k1s. Shims
    // inherit it; containers set their own score before exec.
    if let Err(e) = kubelet::qos::protect_self() {
        tracing::warn!(error = %e, "failed to set the oom_score_adj of k1s");
    }
    let rt = match crate::async_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("k1s: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("k1s: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let mode = u32::from_str_radix(args.write_kubeconfig_mode.trim_start_matches("0o"), 8)
        .with_context(|| {
            format!(
                "invalid --write-kubeconfig-mode {}",
                args.write_kubeconfig_mode
            )
        })?;
    let cancel = CancellationToken::new();
    let fatal = CancellationToken::new();
    let cfg = apiserver::ServerConfig {
        data_dir: args.data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        kubeconfig_path: Some(args.write_kubeconfig.clone()),
        kubeconfig_mode: mode,
        tls_sans: args.tls_san.clone(),
        service_cidr: Default::default(),
        event_ttl: args.event_ttl,
    };
    let running = apiserver::run(cfg, cancel.clone(), fatal.clone())
        .await
        .context("failed to start the API server")?;
    let client = loopback_client(&running.kubeconfig).await?;
    let tracker = tokio_util::task::TaskTracker::new();
    tracker.spawn(scheduler::run(client.clone(), cancel.child_token()));
    tracker.spawn(scheduler::pvc_protection::run(
        client.clone(),
        cancel.child_token(),
    ));
    tracker.spawn(runtime::memory::trim_periodically(cancel.child_token()));
    if !args.disable_agent {
        let node = args
            .node_name
            .clone()
            .unwrap_or_else(crate::agent::default_node_name);
        let (c, d, stop, fatal2) = (
            client.clone(),
            args.data_dir.clone(),
            cancel.child_token(),
            fatal.clone(),
        );
        let tuning = crate::agent::KubeletTuning {
            backoff_base: args.kubelet_backoff_base,
            backoff_max: args.kubelet_backoff_max,
            backoff_reset: args.kubelet_backoff_reset,
            eviction_hard: kubelet::eviction::threshold::parse_hard(&args.eviction_hard)
                .map_err(anyhow::Error::msg)?,
            eviction_transition: args.eviction_pressure_transition_period,
        };
        tracker.spawn(async move {
            if let Err(e) = crate::agent::run(c, d, node, tuning, stop).await {
                tracing::error!(error = %format!("{e:#}"), "the node agent failed");
                fatal2.cancel();
            }
        });
    }
    tracing::info!(kubeconfig = %args.write_kubeconfig.display(), addr = %running.addr, "k1s is ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    let code = tokio::select! {
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        _ = term.recv() => ExitCode::SUCCESS,
        _ = fatal.cancelled() => {
            tracing::error!("a component failed; stopping");
            ExitCode::FAILURE
        }
    };
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    let _ = running.done.await;
    Ok(code)
}

/// A kube-rs client for the in-process components, talking to the API server over loopback
/// HTTPS with the admin credential.
async fn loopback_client(kubeconfig: &str) -> anyhow::Result<kube::Client> {
    let kc =
        kube::config::Kubeconfig::from_yaml(kubeconfig).context("invalid generated kubeconfig")?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .context("invalid generated kubeconfig")?;
    kube::Client::try_from(cfg).context("failed to build the loopback client")
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
