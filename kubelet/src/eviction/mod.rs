//! The eviction manager (upstream `pkg/kubelet/eviction`, hard thresholds only): every 10 s
//! it observes memory and disk signals, reports MemoryPressure / DiskPressure (kept True for
//! the pressure transition period after the last crossing), and while a threshold is crossed
//! evicts one pod per cycle: ranked by `rank`, killed with upstream's 1 s grace period,
//! status Failed / Evicted with a DisruptionTarget condition and an `Evicted` event.
//!
//! New pods are checked against the pressure before they start (`admit`).
//!
//! It owns neither the Node object (`node` writes conditions and taints from the `Pressure`
//! it publishes) nor the pods (their workers kill them, see `evict_pod`).

pub mod admit;
mod evict_pod;
pub mod observe;
pub mod rank;
pub mod threshold;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::cri::{Cri, RunState};
use crate::events::Recorder;
use observe::{Observation, Observations};
use rank::Candidate;
use threshold::{format_amount, Signal, Threshold};

/// Upstream's `immediateEvictionGracePeriodSeconds` for hard thresholds.
pub const EVICTION_GRACE_SECONDS: i64 = 1;
/// How long to wait for an evicted pod's containers to stop (upstream's podCleanupTimeout).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Entries looked at per pod when measuring its disk use under disk pressure.
const DISK_WALK_LIMIT: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub hard: Vec<Threshold>,
    /// How long a condition stays True after its threshold was last crossed.
    pub transition_period: Duration,
    /// How often signals are observed (upstream's housekeeping interval).
    pub interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hard: threshold::parse_hard(threshold::DEFAULT_HARD).unwrap_or_default(),
            transition_period: Duration::from_secs(300),
            interval: Duration::from_secs(10),
        }
    }
}

/// The node conditions the manager reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
}

/// What the eviction manager asks of the pod workers.
pub enum WorkerRequest {
    /// The pods bound to this node, as their workers last saw them.
    Pods(oneshot::Sender<Vec<Pod>>),
    /// Evict pod `uid`; answers whether it was (once its containers stopped).
    Evict {
        uid: String,
        message: String,
        done: oneshot::Sender<bool>,
    },
}

pub struct Manager {
    pub client: Client,
    pub cri: Arc<dyn Cri>,
    pub cfg: Arc<crate::KubeletConfig>,
    pub workers: mpsc::Sender<WorkerRequest>,
    pub pressure: watch::Sender<Pressure>,
    last_memory: Option<Instant>,
    last_disk: Option<Instant>,
    node_events: Option<Recorder>,
}

impl Manager {
    pub fn new(
        client: Client,
        cri: Arc<dyn Cri>,
        cfg: Arc<crate::KubeletConfig>,
        workers: mpsc::Sender<WorkerRequest>,
        pressure: watch::Sender<Pressure>,
    ) -> Self {
        Manager {
            client,
            cri,
            cfg,
            workers,
            pressure,
            last_memory: None,
            last_disk: None,
            node_events: None,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        if self.cfg.eviction.hard.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(self.cfg.eviction.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let t0 = Instant::now();
            let evicted = tokio::select! {
                _ = cancel.cancelled() => return,
                e = self.synchronize() => e,
            };
            tracing::debug!(
                us = t0.elapsed().as_micros() as u64,
                evicted,
                "eviction manager cycle"
            );
        }
    }

    /// One cycle: observe, publish pressure, evict at most one pod. Returns whether it did.
    async fn synchronize(&mut self) -> bool {
        let (mem, data, images) = (
            self.cfg.node_memory,
            self.cfg.data_dir.clone(),
            self.cfg.data_dir.join("runtime"),
        );
        let obs = tokio::task::spawn_blocking(move || observe::observe(mem, &data, &images))
            .await
            .unwrap_or_default();
        let met = thresholds_met(&self.cfg.eviction.hard, &obs);
        let now = Instant::now();
        if met.iter().any(|(t, _)| t.signal.is_memory()) {
            self.last_memory = Some(now);
        }
        if met.iter().any(|(t, _)| !t.signal.is_memory()) {
            self.last_disk = Some(now);
        }
        let period = self.cfg.eviction.transition_period;
        let within = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) < period);
        let pressure = Pressure {
            memory: within(self.last_memory),
            disk: within(self.last_disk),
        };
        self.pressure.send_if_modified(|p| {
            let changed = *p != pressure;
            if changed {
                tracing::info!(
                    memory = pressure.memory,
                    disk = pressure.disk,
                    "node pressure changed"
                );
            }
            *p = pressure;
            changed
        });
        // Memory first, like upstream's byEvictionPriority.
        let Some((threshold, observation)) = met.first().copied() else {
            return false;
        };
        let resource = threshold.signal.resource();
        tracing::info!(signal = %threshold.signal, resource, "eviction threshold met; attempting to reclaim");
        self.node_recorder()
            .event(
                "Warning",
                "EvictionThresholdMet",
                &format!("Attempting to reclaim {resource}"),
            )
            .await;
        self.evict_one(threshold, observation).await
    }

    fn node_recorder(&mut self) -> &Recorder {
        let (client, node) = (self.client.clone(), self.cfg.node_name.clone());
        self.node_events
            .get_or_insert_with(|| Recorder::for_node(client, &node))
    }

    async fn active_pods(&self) -> Vec<Pod> {
        let (tx, rx) = oneshot::channel();
        if self.workers.send(WorkerRequest::Pods(tx)).await.is_err() {
            return Vec::new();
        }
        let pods = rx.await.unwrap_or_default();
        pods.into_iter()
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                p.metadata.deletion_timestamp.is_none()
                    && !matches!(phase, Some("Succeeded" | "Failed"))
                    && !rank::is_critical(p)
            })
            .collect()
    }

    async fn evict_one(&self, threshold: Threshold, observation: Observation) -> bool {
        let pods = self.active_pods().await;
        if pods.is_empty() {
            tracing::warn!("eviction thresholds have been met, but no pods are active to evict");
            return false;
        }
        let usage = self.usage(threshold.signal, &pods).await;
        let resource = threshold.signal.resource();
        let mut candidates: Vec<Candidate> = pods
            .into_iter()
            .map(|pod| {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                Candidate {
                    usage: usage.get(&uid).map(|u| u.values().sum()),
                    request: rank::pod_request(&pod, resource),
                    priority: rank::priority(&pod),
                    pod,
                }
            })
            .collect();
        rank::rank(&mut candidates);
        for c in candidates {
            let uid = c.pod.metadata.uid.clone().unwrap_or_default();
            let per_container = usage.get(&uid).cloned().unwrap_or_default();
            let message = message(&threshold, &observation, &c.pod, &per_container);
            tracing::info!(pod = %crate::sync_pod::pod_ref(&c.pod), %message, "evicting pod");
            let (done, answer) = oneshot::channel();
            let req = WorkerRequest::Evict { uid, message, done };
            if self.workers.send(req).await.is_err() {
                return false;
            }
            match tokio::time::timeout(CLEANUP_TIMEOUT, answer).await {
                Ok(Ok(true)) => {
                    crate::metrics::inc(
                        crate::metrics::EVICTIONS,
                        &[("eviction_signal", threshold.signal.name())],
                    );
                    return true;
                }
                Ok(_) => continue,
                Err(_) => {
                    tracing::info!("timed out waiting for an evicted pod to be cleaned up");
                    return true;
                }
            }
        }
        tracing::info!("unable to evict any pods from the node");
        false
    }

    /// Per pod UID, each container's use of the signal's resource (working set for memory,
    /// writable layer for disk, plus the pod's volumes and logs as `""`).
    async fn usage(&self, signal: Signal, pods: &[Pod]) -> HashMap<String, HashMap<String, u64>> {
        let mut out: HashMap<String, HashMap<String, u64>> = HashMap::new();
        let Ok(sandboxes) = self.cri.list_sandboxes().await else {
            return out;
        };
        let wanted: std::collections::HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        for sb in sandboxes
            .iter()
            .filter(|s| wanted.contains(s.pod_uid.as_str()))
        {
            let containers = self.cri.list_containers(&sb.id).await.unwrap_or_default();
            let entry = out.entry(sb.pod_uid.clone()).or_default();
            if signal.is_memory() {
                for c in containers
                    .iter()
                    .filter(|c| matches!(c.state, RunState::Running { .. }))
                {
                    if let Ok((_, mem)) = self.cri.container_stats(&c.id).await {
                        *entry.entry(c.name.clone()).or_default() += mem;
                    }
                }
                continue;
            }
            let pod_dir = self.cfg.data_dir.join("pods").join(&sb.pod_uid);
            let layers: Vec<(String, PathBuf)> = containers
                .iter()
                .map(|c| (c.name.clone(), self.cri.writable_layer(&sb.id, &c.id)))
                .collect();
            let measured = tokio::task::spawn_blocking(move || {
                let mut m: HashMap<String, u64> = HashMap::new();
                m.insert(String::new(), observe::dir_usage(&pod_dir, DISK_WALK_LIMIT));
                for (name, upper) in layers {
                    *m.entry(name).or_default() += observe::dir_usage(&upper, DISK_WALK_LIMIT);
                }
                m
            })
            .await
            .unwrap_or_default();
            entry.extend(measured);
        }
        out
    }
}

/// Crossed thresholds with their observations, memory first.
fn thresholds_met(hard: &[Threshold], obs: &Observations) -> Vec<(Threshold, Observation)> {
    let mut met: Vec<(Threshold, Observation)> = hard
        .iter()
        .filter_map(|t| {
            let o = obs.get(&t.signal)?;
            t.met(o.available, o.capacity).then_some((*t, *o))
        })
        .collect();
    met.sort_by_key(|(t, _)| t.signal);
    met
}

/// Upstream's eviction message: the resource, the threshold and what was available, and
/// each container using more than it requested.
pub fn message(
    t: &Threshold,
    o: &Observation,
    pod: &Pod,
    per_container: &HashMap<String, u64>,
) -> String {
    let resource = t.signal.resource();
    let mut msg = format!(
        "The node was low on resource: {resource}. Threshold quantity: {}, available: {}. ",
        format_amount(t.signal, t.quantity(o.capacity)),
        format_amount(t.signal, o.available),
    );
    if resource == "inodes" {
        return msg;
    }
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let Some(usage) = per_container.get(&c.name) else {
            continue;
        };
        let written = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .map(|q| q.0.clone());
        let request = written
            .as_deref()
            .and_then(crate::container_config::parse_quantity)
            .unwrap_or(0.0) as u64;
        if *usage > request {
            msg.push_str(&format!(
                "Container {} was using {}, request is {}, has larger consumption of {resource}. ",
                c.name,
                threshold::format_bytes(*usage),
                written.unwrap_or_else(|| "0".into()),
            ));
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_is_reclaimed_first() {
        let hard =
            threshold::parse_hard("nodefs.available<100%,memory.available<1Ti").expect("parses");
        let mut obs = Observations::new();
        obs.insert(
            Signal::MemoryAvailable,
            Observation {
                available: 1 << 30,
                capacity: 2 << 30,
            },
        );
        obs.insert(
            Signal::NodeFsAvailable,
            Observation {
                available: 10,
                capacity: 100,
            },
        );
        let met = thresholds_met(&hard, &obs);
        assert_eq!(met.len(), 2);
        assert_eq!(met[0].0.signal, Signal::MemoryAvailable);
    }

    #[test]
    fn upstream_message() {
        let pod: Pod = serde_json::from_value(json!({"spec": {"containers": [
            {"name": "hog", "resources": {"requests": {"memory": "10Mi"}}},
            {"name": "quiet", "resources": {"requests": {"memory": "100Mi"}}}]}}))
        .expect("pod");
        let t = threshold::parse_hard("memory.available<100Mi").expect("parses")[0];
        let o = Observation {
            available: 50 << 20,
            capacity: 1 << 30,
        };
        let usage = HashMap::from([
            ("hog".to_string(), 20 << 20),
            ("quiet".to_string(), 1 << 20),
        ]);
        assert_eq!(
            message(&t, &o, &pod, &usage),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container hog was using 20Mi, request is 10Mi, has larger consumption of memory. "
        );
        let t = threshold::parse_hard("nodefs.available<10%").expect("parses")[0];
        let o = Observation {
            available: 1024,
            capacity: 1 << 20,
        };
        assert!(message(&t, &o, &pod, &HashMap::new()).starts_with(
            "The node was low on resource: ephemeral-storage. Threshold quantity: 104857, available: 1Ki. "
        ));
    }
}
