//! Container lifecycle hooks, as upstream's `lifecycle` handler runner: `postStart` right after
//! a container starts (a failure records `FailedPostStartHook` and the caller kills the
//! container), `preStop` before SIGTERM within the grace period (a failure records
//! `FailedPreStopHook`; the container is stopped either way). Handlers: exec, httpGet, sleep.
//! `kill` is the one way a container is stopped on purpose: `Killing` event, preStop, then
//! SIGTERM with what is left of the grace period (pod termination, probe and hook failures);
//! `kill_in_turn` also waits for its turn in the pod's termination order (sidecars last).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container as KContainer, LifecycleHandler};

use crate::cri::Cri;
use crate::events::Recorder;
use crate::prober::handlers::{exec_output, http_status, resolve_port};

/// The User-Agent upstream sends for httpGet hooks.
const USER_AGENT: &str = "kube-lifecycle/1.35";

/// Upstream never leaves less than this for SIGTERM after a preStop hook.
const MIN_GRACE_AFTER_PRE_STOP: i64 = 2;

/// An HTTP hook has no timeout of its own upstream; this bounds a postStart that hangs.
const POST_START_HTTP_TIMEOUT: Duration = Duration::from_secs(300);

/// The container a hook runs for.
pub struct Hook<'a> {
    pub cri: &'a dyn Cri,
    pub container: &'a KContainer,
    pub container_id: &'a str,
    pub pod_ip: &'a str,
    /// `name_namespace(uid)`, as upstream names the pod in hook messages.
    pub pod_ref: &'a str,
    pub events: &'a Recorder,
    /// `spec.containers{name}`.
    pub field: &'a str,
}

impl Hook<'_> {
    /// Run a handler to its end; the error is upstream's message for the event.
    async fn run(&self, h: &LifecycleHandler, http_timeout: Duration) -> Result<(), String> {
        let who = format!(
            "for Container {:?} in Pod {:?}",
            self.container.name, self.pod_ref
        );
        if let Some(e) = &h.exec {
            let cmd = e.command.clone().unwrap_or_default();
            let shown = format!("[{}]", cmd.join(" "));
            let res = exec_output(self.cri, self.container_id, cmd.clone()).await;
            return match res {
                Ok((0, _)) => Ok(()),
                Ok((code, out)) => Err(format!(
                    "Exec lifecycle hook ({shown}) {who} failed - error: command '{}' exited with {code}: {out}, message: {out:?}",
                    cmd.join(" ")
                )),
                Err(e) => Err(format!(
                    "Exec lifecycle hook ({shown}) {who} failed - error: {e}, message: \"\""
                )),
            };
        }
        if let Some(g) = &h.http_get {
            let path = g.path.clone().unwrap_or_default();
            let fail =
                |e: String| format!("HTTP lifecycle hook ({path}) {who} failed - error: {e}");
            let port = resolve_port(&g.port, self.container).map_err(fail)?;
            let host = g.host.clone().unwrap_or_else(|| self.pod_ip.to_string());
            let headers: Vec<(String, String)> = g
                .http_headers
                .iter()
                .flatten()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect();
            // Like upstream, only a failed request fails the hook, not the status code.
            return http_status(&host, port, &path, &headers, USER_AGENT, http_timeout)
                .await
                .map(|_| ())
                .map_err(fail);
        }
        if let Some(s) = &h.sleep {
            tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
            return Ok(());
        }
        Err(format!(
            "Cannot run handler: unsupported lifecycle handler {who}"
        ))
    }

    /// Run postStart, if any. On failure the event is recorded and the caller kills the
    /// container (`FailedPostStartHook`).
    pub async fn post_start(&self) -> Result<(), String> {
        let Some(h) = self
            .container
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref())
        else {
            return Ok(());
        };
        let res = self.run(h, POST_START_HTTP_TIMEOUT).await;
        if let Err(msg) = &res {
            self.events
                .event_for("Warning", "FailedPostStartHook", msg, self.field)
                .await;
        }
        res
    }

    /// Run preStop, if any, within `grace` seconds; returns the grace left for SIGTERM.
    pub async fn pre_stop(&self, grace: i64) -> i64 {
        let Some(h) = self
            .container
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
        else {
            return grace;
        };
        if grace <= 0 {
            return grace;
        }
        let budget = Duration::from_secs(grace as u64);
        let t0 = Instant::now();
        match tokio::time::timeout(budget, self.run(h, budget)).await {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => {
                self.events
                    .event_for("Warning", "FailedPreStopHook", &msg, self.field)
                    .await;
            }
            Err(_) => {
                tracing::info!(container = %self.container_id, grace, "preStop hook did not complete within the grace period");
            }
        }
        (grace - t0.elapsed().as_secs() as i64).max(MIN_GRACE_AFTER_PRE_STOP)
    }

    /// Stop the container like upstream's `killContainer`: a `Killing` event with `message`,
    /// preStop within `grace`, then SIGTERM and SIGKILL after the rest of the grace period.
    pub async fn kill(&self, grace: i64, message: &str) {
        self.kill_in_turn(grace, message, std::future::ready(()))
            .await
    }

    /// `kill`, but SIGTERM waits after preStop until `turn` resolves (upstream's termination
    /// ordering: a sidecar is signalled once the containers after it have exited), for at
    /// most what is left of the grace period; SIGTERM then gets the rest, at least 2 s.
    pub async fn kill_in_turn(
        &self,
        grace: i64,
        message: &str,
        turn: impl std::future::Future<Output = ()>,
    ) {
        self.events
            .event_for("Normal", "Killing", message, self.field)
            .await;
        let mut left = self.pre_stop(grace.max(0)).await;
        // A zero grace period (forced deletion) kills at once, without waiting for a turn.
        if left > 0 {
            let t0 = Instant::now();
            let budget = Duration::from_secs(left as u64);
            let _ = tokio::time::timeout(budget, turn).await;
            left = (left - t0.elapsed().as_secs() as i64).max(MIN_GRACE_AFTER_PRE_STOP);
        }
        if let Err(e) = self.cri.stop_container(self.container_id, left).await {
            tracing::warn!(container = %self.container_id, error = %e, "failed to stop a container");
        }
    }
}
