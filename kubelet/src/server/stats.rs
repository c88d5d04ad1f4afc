//! `GET /stats/summary`: CPU (nanocores, a rate) and memory working set of the node and of
//! every running container, for the API server's `metrics.k8s.io` (`kubectl top`).
//!
//! Nothing is sampled in the background (an idle node does no work for metrics): a request
//! takes a sample of the cumulative counters and computes rates against the previous sample;
//! when there is none recent enough it takes two, one second apart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::Mutex;

use super::{cri_error, Ctx};
use crate::cri::{Cri, CriError, RunState};

/// Shortest window a rate is computed over.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// An older previous sample is not used.
const MAX_WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct Sampler {
    last: Option<Sample>,
}

#[derive(Clone)]
struct Sample {
    at: Instant,
    node_cpu_ns: u64,
    node_memory: u64,
    /// container ID -> (pod UID, container name, cpu ns, memory bytes)
    containers: HashMap<String, (String, String, u64, u64)>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    pub window_seconds: f64,
    pub node: Usage,
    pub pods: Vec<PodStats>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Usage {
    pub cpu_nano_cores: u64,
    pub memory_working_set_bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodStats {
    pub uid: String,
    pub containers: Vec<ContainerUsage>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerUsage {
    pub name: String,
    #[serde(flatten)]
    pub usage: Usage,
}

/// Host CPU time in ns (all CPUs, non-idle) from /proc/stat and memory in use (total minus
/// available) from /proc/meminfo.
fn node_counters() -> (u64, u64) {
    let ticks_ns = 1_000_000_000 / 100; // USER_HZ is 100 on Linux
    let cpu = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_string();
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let busy: u64 = f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?;
            Some(busy * ticks_ns)
        })
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .map(|s| {
            let kb = |key: &str| {
                s.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            kb("MemTotal:").saturating_sub(kb("MemAvailable:")) * 1024
        })
        .unwrap_or(0);
    (cpu, mem)
}

async fn take(cri: &Arc<dyn Cri>) -> Result<Sample, CriError> {
    let mut containers = HashMap::new();
    for sb in cri.list_sandboxes().await? {
        for c in cri.list_containers(&sb.id).await? {
            if !matches!(c.state, RunState::Running { .. }) {
                continue;
            }
            if let Ok((cpu, mem)) = cri.container_stats(&c.id).await {
                containers.insert(c.id, (sb.pod_uid.clone(), c.name, cpu, mem));
            }
        }
    }
    let (node_cpu_ns, node_memory) = node_counters();
    Ok(Sample {
        at: Instant::now(),
        node_cpu_ns,
        node_memory,
        containers,
    })
}

fn rate(now: u64, before: u64, secs: f64) -> u64 {
    (now.saturating_sub(before) as f64 / secs) as u64
}

fn summarize(prev: &Sample, cur: &Sample) -> Summary {
    let secs = cur.at.duration_since(prev.at).as_secs_f64().max(0.001);
    let mut pods: HashMap<String, Vec<ContainerUsage>> = HashMap::new();
    for (id, (uid, name, cpu, mem)) in &cur.containers {
        let Some((_, _, cpu0, _)) = prev.containers.get(id) else {
            continue;
        };
        pods.entry(uid.clone()).or_default().push(ContainerUsage {
            name: name.clone(),
            usage: Usage {
                cpu_nano_cores: rate(*cpu, *cpu0, secs),
                memory_working_set_bytes: *mem,
            },
        });
    }
    let mut pods: Vec<PodStats> = pods
        .into_iter()
        .map(|(uid, mut containers)| {
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            PodStats { uid, containers }
        })
        .collect();
    pods.sort_by(|a, b| a.uid.cmp(&b.uid));
    Summary {
        window_seconds: secs,
        node: Usage {
            cpu_nano_cores: rate(cur.node_cpu_ns, prev.node_cpu_ns, secs),
            memory_working_set_bytes: cur.node_memory,
        },
        pods,
    }
}

pub(crate) async fn summary(State(ctx): State<Ctx>) -> Response {
    let mut sampler = ctx.stats.lock().await;
    let prev = match sampler.last.take() {
        Some(p) if p.at.elapsed() <= MAX_WINDOW => p,
        _ => match take(&ctx.cri).await {
            Ok(s) => s,
            Err(e) => return cri_error(e),
        },
    };
    let wait = MIN_WINDOW.saturating_sub(prev.at.elapsed());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let cur = match take(&ctx.cri).await {
        Ok(s) => s,
        Err(e) => return cri_error(e),
    };
    let out = summarize(&prev, &cur);
    sampler.last = Some(cur);
    axum::Json(out).into_response()
}

/// The shared sampler of one kubelet.
pub(crate) fn sampler() -> Arc<Mutex<Sampler>> {
    Arc::new(Mutex::new(Sampler::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_the_window() {
        let t0 = Instant::now();
        let mut a = Sample {
            at: t0,
            node_cpu_ns: 0,
            node_memory: 0,
            containers: HashMap::new(),
        };
        a.containers
            .insert("c1".into(), ("u1".into(), "app".into(), 1_000, 10));
        let mut b = a.clone();
        b.at = t0 + Duration::from_secs(2);
        b.node_cpu_ns = 4_000_000_000;
        b.containers
            .insert("c1".into(), ("u1".into(), "app".into(), 1_000_001_000, 20));
        b.containers
            .insert("c2".into(), ("u1".into(), "new".into(), 5, 5));
        let s = summarize(&a, &b);
        assert_eq!(s.node.cpu_nano_cores, 2_000_000_000);
        assert_eq!(s.pods.len(), 1);
        // c2 has no previous sample yet.
        assert_eq!(s.pods[0].containers.len(), 1);
        assert_eq!(s.pods[0].containers[0].usage.cpu_nano_cores, 500_000_000);
        assert_eq!(s.pods[0].containers[0].usage.memory_working_set_bytes, 20);
    }
}
