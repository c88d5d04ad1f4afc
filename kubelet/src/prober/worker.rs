//! One probe of one container instance, run every `periodSeconds` from the container's start
//! until it is cancelled (the container stopped or the pod went away). Like upstream's
//! `prober/worker.go`: liveness and readiness wait for the startup probe; a result only
//! changes after `successThreshold`/`failureThreshold` consecutive runs; each failed run
//! records an `Unhealthy` event; a liveness or startup failure kills the container (the pod
//! worker then restarts it per restartPolicy) and ends the worker.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container as KContainer, Probe};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::handlers::{self, Outcome, Target};
use super::{Kind, Results};
use crate::cri::{Cri, CriError, RunState};
use crate::events::Recorder;
use crate::lifecycle::Hook;

/// What a liveness or startup failure does to the container.
#[derive(Debug, Clone)]
pub struct KillPolicy {
    /// The pod's terminationGracePeriodSeconds (the probe's own takes precedence).
    pub pod_grace: i64,
    /// Whether the container will be started again (restartPolicy, sidecar).
    pub restart: bool,
    /// `name_namespace(uid)`, for hook messages.
    pub pod_ref: String,
}

pub struct Worker {
    pub kind: Kind,
    pub probe: Probe,
    pub cri: Arc<dyn Cri>,
    pub events: Recorder,
    pub container: KContainer,
    pub container_id: String,
    pub field: String,
    pub pod_ip: String,
    pub started_at: Timestamp,
    pub results: Results,
    pub notify: Arc<watch::Sender<u64>>,
    pub kill: KillPolicy,
    /// (namespace, name, uid) of the pod, for `prober_probe_total`.
    pub pod: Arc<(String, String, String)>,
    pub cancel: CancellationToken,
}

enum Next {
    Continue,
    Stop,
    Kill,
}

/// Consecutive identical results, for the thresholds.
#[derive(Default)]
struct Run {
    last: Option<bool>,
    count: i32,
}

impl Worker {
    pub async fn run(self) {
        let period = Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64);
        // Readiness is probed as soon as the container runs (upstream triggers that probe
        // when it sees a running container without a result); liveness waits for its period,
        // as upstream's worker, kept across restarts, does for a restarted container: probed
        // at once, a container that creates what its probe checks failed a check of a
        // moment before it could.
        let first = match self.kind {
            Kind::Liveness => tokio::time::Instant::now() + period,
            Kind::Startup | Kind::Readiness => tokio::time::Instant::now(),
        };
        let mut ticker = tokio::time::interval_at(first, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut run = Run::default();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return,
                n = self.probe_once(&mut run) => n,
            };
            match next {
                Next::Continue => {}
                Next::Stop => return,
                // Not cancellable: a kill that has begun runs to its end.
                Next::Kill => return self.kill_container().await,
            }
        }
    }

    fn result(&self, kind: Kind) -> Option<bool> {
        self.results
            .lock()
            .ok()
            .and_then(|m| m.get(&(self.container_id.clone(), kind)).copied())
    }

    /// One tick: whether to keep probing, stop, or kill the container.
    async fn probe_once(&self, run: &mut Run) -> Next {
        let has_startup = self.container.startup_probe.is_some();
        match self.kind {
            Kind::Startup if self.result(Kind::Startup) == Some(true) => return Next::Stop,
            Kind::Liveness | Kind::Readiness
                if has_startup && self.result(Kind::Startup) != Some(true) =>
            {
                return Next::Continue
            }
            _ => {}
        }
        let delay = self.probe.initial_delay_seconds.unwrap_or(0).max(0) as i64;
        let ran_ms = Timestamp::now().as_millisecond() - self.started_at.as_millisecond();
        if ran_ms / 1000 < delay {
            return Next::Continue;
        }
        let target = Target {
            pod_ip: &self.pod_ip,
            container: &self.container,
            container_id: &self.container_id,
        };
        let outcome = handlers::run(self.cri.as_ref(), &self.probe, &target).await;
        if outcome != Outcome::Success && !self.still_running().await {
            // The container ended under the probe: not a probe failure; the pod sync
            // takes it from here and stops this worker.
            return Next::Stop;
        }
        let ok = outcome == Outcome::Success;
        let result = match &outcome {
            Outcome::Success => "successful",
            Outcome::Failure(_) => "failed",
            Outcome::Error(_) => "unknown",
        };
        let (ns, name, uid) = &*self.pod;
        crate::metrics::inc(
            crate::metrics::PROBE_TOTAL,
            &[
                ("probe_type", self.kind.name()),
                ("result", result),
                ("container", &self.container.name),
                ("pod", name),
                ("namespace", ns),
                ("pod_uid", uid),
            ],
        );
        match &outcome {
            Outcome::Success => {}
            Outcome::Failure(out) => {
                let msg = format!("{} probe failed: {out}", self.kind.name());
                self.event("Warning", "Unhealthy", &msg).await;
            }
            Outcome::Error(e) => {
                let msg = format!("{} probe errored: {e}", self.kind.name());
                self.event("Warning", "Unhealthy", &msg).await;
            }
        }
        if run.last == Some(ok) {
            run.count = run.count.saturating_add(1);
        } else {
            run.last = Some(ok);
            run.count = 1;
        }
        let success_threshold = match self.kind {
            Kind::Readiness => self.probe.success_threshold.unwrap_or(1).max(1),
            _ => 1,
        };
        let failure_threshold = self.probe.failure_threshold.unwrap_or(3).max(1);
        if (ok && run.count < success_threshold) || (!ok && run.count < failure_threshold) {
            return Next::Continue;
        }
        self.set(ok);
        match self.kind {
            Kind::Liveness | Kind::Startup if !ok => Next::Kill,
            Kind::Startup => Next::Stop,
            _ => Next::Continue,
        }
    }

    async fn still_running(&self) -> bool {
        match self.cri.container(&self.container_id).await {
            Ok(c) => matches!(c.state, RunState::Running { .. }),
            Err(CriError::NotFound(_)) => false,
            Err(_) => true,
        }
    }

    fn set(&self, ok: bool) {
        let prev = self
            .results
            .lock()
            .ok()
            .and_then(|mut m| m.insert((self.container_id.clone(), self.kind), ok));
        if prev != Some(ok) {
            self.notify.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    async fn event(&self, ty: &str, reason: &str, msg: &str) {
        self.events.event_for(ty, reason, msg, &self.field).await;
    }

    async fn kill_container(&self) {
        let mut msg = format!(
            "Container {} failed {} probe",
            self.container.name,
            self.kind.name().to_lowercase()
        );
        if self.kill.restart {
            msg.push_str(", will be restarted");
        }
        let grace = self
            .probe
            .termination_grace_period_seconds
            .unwrap_or(self.kill.pod_grace)
            .max(0);
        tracing::info!(container = %self.container_id, probe = self.kind.name(), grace, "killing a container that failed its probe");
        let hook = Hook {
            cri: self.cri.as_ref(),
            container: &self.container,
            container_id: &self.container_id,
            pod_ip: &self.pod_ip,
            pod_ref: &self.kill.pod_ref,
            events: &self.events,
            field: &self.field,
        };
        hook.kill(grace, &msg).await;
        self.notify.send_modify(|n| *n = n.wrapping_add(1));
    }
}
