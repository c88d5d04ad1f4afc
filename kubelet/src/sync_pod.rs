//! One pod's state machine as its worker drives it: `sync` (active deadline, sandbox, init
//! containers in order, sidecars, containers, restarts, probe workers, termination messages).
//! Each sync ends by writing the computed status when it changed. Starting one container is
//! `container_start`, when to restart one is `crash_loop`, termination is
//! `sync_terminating_pod`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container as KContainer, Pod, PodSpec};
use k8s_openapi::jiff::Timestamp;
use kube::Client;

use crate::container_config;
use crate::container_start::field_path;
use crate::crash_loop::RestartBackoff;
use crate::cri::{Container, Cri, CriError, RunState, Sandbox, SandboxSpec};
use crate::events::Recorder;
use crate::prober::{self, PodContext, Running};
use crate::status::{self, ContainerView, Observed, PodView};
use crate::sync_terminating_pod::KillScope;
use crate::termination_message;
use crate::KubeletConfig;

/// How long after a failed pod sandbox the next one is made.
pub(crate) const SANDBOX_RETRY: Duration = Duration::from_secs(5);

/// Why a container is not running: a start that failed before it ran (image, config,
/// runtime) or CrashLoopBackOff.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub reason: String,
    pub message: String,
    pub retry_at: Instant,
    pub delay: Duration,
}

pub struct PodState {
    pub client: Client,
    pub cri: Arc<dyn Cri>,
    pub(crate) cfg: Arc<KubeletConfig>,
    pub(crate) uid: String,
    pub(crate) sandbox: Option<Sandbox>,
    /// After a failed sandbox, no new one before this (wake-ups from other pods' container
    /// exits or status writes must not turn the retry into a loop).
    pub(crate) sandbox_retry_at: Option<Instant>,
    pub(crate) backoff: RestartBackoff,
    pub(crate) waiting: HashMap<String, Waiting>,
    /// Termination messages of exited instances, by container ID.
    messages: HashMap<String, String>,
    last_status: Option<serde_json::Value>,
    start_time: Option<Timestamp>,
    events: Option<Recorder>,
    pub(crate) failed: Option<(String, String)>,
    /// The DisruptionTarget message once the kubelet evicted the pod.
    pub(crate) disruption: Option<String>,
    /// The node's pressure, for admitting the pod before it first starts.
    pressure: tokio::sync::watch::Receiver<crate::eviction::Pressure>,
    admitted: bool,
    pub(crate) probes: prober::Manager,
}

fn is_sidecar(c: &KContainer) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn latest<'a>(cs: &'a [Container], name: &str) -> Option<&'a Container> {
    cs.iter()
        .filter(|c| c.name == name)
        .max_by_key(|c| c.attempt)
}

fn previous<'a>(cs: &'a [Container], name: &str) -> Option<&'a Container> {
    let last = latest(cs, name)?;
    cs.iter()
        .filter(|c| c.name == name && c.attempt < last.attempt)
        .max_by_key(|c| c.attempt)
}

fn observed(c: &Container) -> Observed {
    match &c.state {
        RunState::Created => Observed::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        },
        RunState::Running { started_at, .. } => Observed::Running {
            started_at: *started_at,
        },
        RunState::Exited {
            code,
            reason,
            message,
            started_at,
            finished_at,
        } => Observed::Terminated {
            exit_code: *code,
            signal: None,
            reason: reason.clone(),
            message: message.clone(),
            started_at: *started_at,
            finished_at: *finished_at,
        },
    }
}

impl PodState {
    pub fn new(
        client: Client,
        cri: Arc<dyn Cri>,
        cfg: Arc<KubeletConfig>,
        uid: String,
        pressure: tokio::sync::watch::Receiver<crate::eviction::Pressure>,
    ) -> Self {
        PodState {
            client,
            cri,
            uid,
            sandbox: None,
            sandbox_retry_at: None,
            backoff: RestartBackoff::new(cfg.backoff_base, cfg.backoff_max, cfg.backoff_reset),
            waiting: HashMap::new(),
            messages: HashMap::new(),
            last_status: None,
            start_time: None,
            events: None,
            failed: None,
            disruption: None,
            pressure,
            admitted: false,
            probes: prober::Manager::default(),
            cfg,
        }
    }

    /// Resolves when a probe result of this pod changed: time to sync and write the status.
    pub async fn probe_changed(&mut self) {
        self.probes.changed().await
    }

    /// Start probe workers for running container instances, stop those of others.
    fn sync_probes(&mut self, pod: &Pod, sb: &Sandbox, containers: &[Container]) {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        let pod_ip = self.pod_ip(pod, sb);
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| is_sidecar(c))
            .map(|c| (c, format!("spec.initContainers{{{}}}", c.name), true));
        let regular = spec.containers.iter().map(|c| {
            (
                c,
                format!("spec.containers{{{}}}", c.name),
                policy != "Never",
            )
        });
        let mut running = Vec::new();
        for (c, field, restart) in sidecars.chain(regular) {
            if let Some(cur) = latest(containers, &c.name) {
                if let RunState::Running { started_at, .. } = cur.state {
                    running.push(Running {
                        spec: c,
                        id: &cur.id,
                        started_at,
                        restart,
                        field,
                    });
                }
            }
        }
        let events = self.recorder(pod).clone();
        let pod_ref = pod_ref(pod);
        let ctx = PodContext {
            cri: &self.cri,
            events: &events,
            pod,
            pod_ip: &pod_ip,
            pod_ref: &pod_ref,
        };
        self.probes.sync(&ctx, &running);
    }

    pub(crate) fn recorder(&mut self, pod: &Pod) -> &Recorder {
        self.events
            .get_or_insert_with(|| Recorder::new(self.client.clone(), pod, &self.cfg.node_name))
    }

    /// Records a sandbox that could not be created (or finished): an event, and no new
    /// attempt for `SANDBOX_RETRY`.
    pub(crate) async fn sandbox_failed(&mut self, pod: &Pod, e: &CriError) {
        self.sandbox = None;
        self.sandbox_retry_at = Some(Instant::now() + SANDBOX_RETRY);
        self.recorder(pod)
            .event(
                "Warning",
                "FailedCreatePodSandBox",
                &format!("Failed to create pod sandbox: {e}"),
            )
            .await;
    }

    async fn ensure_sandbox(&mut self, pod: &Pod) -> Result<Sandbox, CriError> {
        if let Some(sb) = &self.sandbox {
            return Ok(sb.clone());
        }
        // Re-adopt a sandbox left by a previous k1s process, unless its shim is gone (k1s was
        // killed while it was made): that one is replaced, as upstream replaces a sandbox that
        // is not ready.
        if let Ok(Some(sb)) = self.cri.find_sandbox(&self.uid).await {
            if sb.ready {
                self.sandbox = Some(sb.clone());
                return Ok(sb);
            }
            self.recorder(pod)
                .event(
                    "Normal",
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.",
                )
                .await;
            let _ = self.cri.stop_sandbox(&sb.id).await;
            if let Err(e) = self.cri.remove_sandbox(&sb.id).await {
                tracing::warn!(sandbox = %sb.id, error = %e, "failed to remove a sandbox whose shim is gone");
            }
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let hostname = spec
            .hostname
            .clone()
            .unwrap_or_else(|| name.chars().take(63).collect());
        let sb_spec = SandboxSpec {
            pod_uid: self.uid.clone(),
            name: name.clone(),
            namespace: ns.clone(),
            hostname: hostname.clone(),
            host_network: spec.host_network == Some(true),
            resolv_conf: container_config::resolv_conf(
                &self.cfg,
                &ns,
                container_config::dns_policy(&spec).as_deref(),
                spec.dns_config.as_ref(),
            ),
            hosts: container_config::host_aliases(&spec),
            domain: spec
                .subdomain
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| format!("{s}.{ns}.svc.{}", self.cfg.cluster_domain)),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
        };
        let t0 = Instant::now();
        let sb = self.cri.run_sandbox(sb_spec).await?;
        tracing::debug!(pod = %format!("{ns}/{name}"), ms = t0.elapsed().as_secs_f64() * 1e3, "sandbox created");
        self.sandbox = Some(sb.clone());
        Ok(sb)
    }

    /// Bring the pod toward its spec. Returns when to sync again at the latest.
    pub async fn sync(&mut self, pod: &Pod) -> Option<Duration> {
        let spec = pod.spec.clone().unwrap_or_default();
        if !self.admit(pod).await {
            return None;
        }
        if self.start_time.is_none() {
            self.start_time = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
                .or(Some(Timestamp::now()));
        }
        let terminal = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        );
        // A pod that failed as a whole before this worker (or this k1s) started stays so.
        if let (None, Some(st)) = (&self.failed, pod.status.as_ref()) {
            if st.phase.as_deref() == Some("Failed") {
                if let Some(reason) = st.reason.clone() {
                    self.failed = Some((reason, st.message.clone().unwrap_or_default()));
                }
            }
        }
        if let Some(ads) = spec.active_deadline_seconds {
            if let Some(st) = self.start_time {
                if Timestamp::now().as_millisecond() - st.as_millisecond() >= ads * 1000
                    && self.failed.is_none()
                    && !terminal
                {
                    self.failed = Some((
                        "DeadlineExceeded".into(),
                        "Pod was active on the node longer than the specified deadline".to_string(),
                    ));
                    self.recorder(pod)
                        .event(
                            "Normal",
                            "DeadlineExceeded",
                            "Pod was active on the node longer than the specified deadline",
                        )
                        .await;
                    // Like any termination that is not a deletion: the pod's grace period.
                    self.kill_all(pod, pod_grace(pod)).await;
                }
            }
        }
        if self.sandbox.is_none() {
            if let Some(at) = self.sandbox_retry_at {
                let now = Instant::now();
                if now < at {
                    return Some(at - now);
                }
            }
        }
        let sandbox = match self.ensure_sandbox(pod).await {
            Ok(sb) => sb,
            Err(e) => {
                self.sandbox_failed(pod, &e).await;
                self.write_status(pod, None, &[]).await;
                return Some(SANDBOX_RETRY);
            }
        };
        let mut containers = self
            .cri
            .list_containers(&sandbox.id)
            .await
            .unwrap_or_default();
        // A container is created and started within one `start` call, so one still in
        // Created state was left by a kubelet that died in between: create it again.
        let stale: Vec<String> = containers
            .iter()
            .filter(|c| c.state == RunState::Created)
            .map(|c| c.id.clone())
            .collect();
        if !stale.is_empty() {
            for id in &stale {
                if let Err(e) = self.cri.remove_container(id).await {
                    tracing::warn!(container = %id, error = %e, "failed to remove a container that was never started");
                }
            }
            containers.retain(|c| !stale.contains(&c.id));
        }
        let restart = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let mut next: Option<Duration> = None;
        let mut note = |d: Duration| next = Some(next.map_or(d, |n: Duration| n.min(d)));
        let completed = completed(&spec, &restart, &containers);
        if completed && self.failed.is_none() && !terminal {
            // Nothing restarts any more: stop the sidecars, the last ones first.
            let sidecar_running = spec.init_containers.iter().flatten().any(|c| {
                is_sidecar(c)
                    && latest(&containers, &c.name)
                        .is_some_and(|x| matches!(x.state, RunState::Running { .. }))
            });
            if sidecar_running {
                self.kill(pod, pod_grace(pod), KillScope::Sidecars).await;
                containers = self
                    .cri
                    .list_containers(&sandbox.id)
                    .await
                    .unwrap_or_default();
            }
        }
        if self.failed.is_none() && !terminal && !completed {
            // Init containers, in order; sidecars keep running.
            let mut init_done = true;
            for c in spec.init_containers.clone().unwrap_or_default() {
                let cur = latest(&containers, &c.name).cloned();
                match cur.as_ref().map(|x| &x.state) {
                    // A sidecar lets the next init container start once it has started
                    // (its startup probe succeeded, if it has one).
                    Some(RunState::Running { .. }) if is_sidecar(&c) => {
                        let started = cur.as_ref().is_some_and(|x| self.probes.started(&c, &x.id));
                        if started {
                            continue;
                        }
                        init_done = false;
                        break;
                    }
                    Some(RunState::Running { .. }) | Some(RunState::Created) => {
                        init_done = false;
                        break;
                    }
                    Some(RunState::Exited { code: 0, .. }) if !is_sidecar(&c) => continue,
                    Some(RunState::Exited { .. }) => {
                        // A failed init container with restartPolicy Never fails the pod
                        // (see status::phase); otherwise it is restarted with backoff.
                        if !is_sidecar(&c) && restart == "Never" {
                            init_done = false;
                            break;
                        }
                        let field = field_path(pod, &c.name);
                        let cur = cur.as_ref();
                        if let Some(d) = self.maybe_restart(pod, &sandbox, &c, cur, &field).await {
                            note(d);
                        }
                        init_done = false;
                        if !is_sidecar(&c) {
                            break;
                        }
                    }
                    None => {
                        if let Some(d) = self.start(pod, &sandbox, &c, 0).await {
                            note(d);
                        }
                        if !is_sidecar(&c) {
                            init_done = false;
                            break;
                        }
                    }
                }
            }
            if init_done {
                for c in spec.containers.clone() {
                    let cur = latest(&containers, &c.name).cloned();
                    match cur.as_ref().map(|x| &x.state) {
                        None => {
                            if let Some(d) = self.start(pod, &sandbox, &c, 0).await {
                                note(d);
                            }
                        }
                        Some(RunState::Exited { code, .. }) => {
                            let again = match restart.as_str() {
                                "Always" => true,
                                "OnFailure" => *code != 0,
                                _ => false,
                            };
                            let field = field_path(pod, &c.name);
                            let cur = cur.as_ref();
                            if again {
                                if let Some(d) =
                                    self.maybe_restart(pod, &sandbox, &c, cur, &field).await
                                {
                                    note(d);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            containers = self
                .cri
                .list_containers(&sandbox.id)
                .await
                .unwrap_or_default();
        }
        self.add_termination_messages(pod, &mut containers);
        self.sync_probes(pod, &sandbox, &containers);
        self.write_status(pod, Some(&sandbox), &containers).await;
        // Sync again when the active deadline passes.
        if let (Some(ads), Some(st), None, false) = (
            spec.active_deadline_seconds,
            self.start_time,
            &self.failed,
            terminal,
        ) {
            let left = st.as_millisecond() + ads * 1000 - Timestamp::now().as_millisecond();
            if left > 0 {
                note(Duration::from_millis(left as u64 + 1));
            }
        }
        next
    }

    /// Whether the pod may run: pods that never started are checked once against the
    /// node's pressure; a rejected one fails with reason Evicted (upstream's `rejectPod`).
    async fn admit(&mut self, pod: &Pod) -> bool {
        if self.admitted || self.failed.is_some() {
            return true;
        }
        let st = pod.status.as_ref();
        let started = st.is_some_and(|s| s.start_time.is_some())
            || matches!(
                st.and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
        if !started {
            let pressure = *self.pressure.borrow();
            if let Err(message) = crate::eviction::admit::admit(pod, pressure) {
                tracing::info!(pod = %pod_ref(pod), %message, "pod rejected under node pressure");
                self.recorder(pod)
                    .event("Warning", "Evicted", &message)
                    .await;
                self.failed = Some(("Evicted".into(), message));
                self.write_status(pod, None, &[]).await;
                return false;
            }
        }
        self.admitted = true;
        true
    }

    /// Append each exited instance's termination message (read once) to the runtime's.
    fn add_termination_messages(&mut self, pod: &Pod, containers: &mut [Container]) {
        let spec = pod.spec.clone().unwrap_or_default();
        let specs: Vec<&KContainer> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .collect();
        self.messages
            .retain(|id, _| containers.iter().any(|c| &c.id == id));
        for x in containers.iter_mut() {
            let Some(c) = specs.iter().find(|c| c.name == x.name) else {
                continue;
            };
            if !matches!(x.state, RunState::Exited { .. }) {
                continue;
            }
            let msg = self
                .messages
                .entry(x.id.clone())
                .or_insert_with(|| termination_message::read(&self.cfg, &self.uid, c, x))
                .clone();
            if let RunState::Exited { message, .. } = &mut x.state {
                if !msg.is_empty() {
                    *message = Some(match message.take() {
                        Some(m) if !m.is_empty() => format!("{m}: {msg}"),
                        _ => msg,
                    });
                }
            }
        }
    }

    pub(crate) fn pod_ip(&self, pod: &Pod, sb: &Sandbox) -> String {
        if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            self.cfg.node_ip.clone()
        } else {
            sb.ip.clone().unwrap_or_default()
        }
    }

    async fn write_status(&mut self, pod: &Pod, sb: Option<&Sandbox>, containers: &[Container]) {
        let spec = pod.spec.clone().unwrap_or_default();
        let view_of = |c: &KContainer,
                       waiting: &HashMap<String, Waiting>,
                       probes: &prober::Manager|
         -> ContainerView {
            let cur = latest(containers, &c.name);
            let state = match (cur, waiting.get(&c.name)) {
                (_, Some(w))
                    if cur.is_none_or(|x| !matches!(x.state, RunState::Running { .. })) =>
                {
                    Observed::Waiting {
                        reason: w.reason.clone(),
                        message: Some(w.message.clone()),
                    }
                }
                (Some(x), _) => observed(x),
                (None, _) => Observed::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
            };
            let last = match (cur, &state) {
                (Some(x), Observed::Waiting { .. })
                    if matches!(x.state, RunState::Exited { .. }) =>
                {
                    Some(observed(x))
                }
                _ => previous(containers, &c.name).map(observed),
            };
            let running = matches!(state, Observed::Running { .. });
            // `started` follows the startup probe, `ready` the readiness probe once started.
            let (started, ready) = match cur {
                Some(x) if running => {
                    let started = probes.started(c, &x.id);
                    (started, started && probes.ready(c, &x.id))
                }
                _ => (false, false),
            };
            ContainerView {
                name: c.name.clone(),
                state,
                last,
                restart_count: cur.map(|x| x.attempt as i32).unwrap_or(0),
                ready,
                started: Some(started),
                image: c.image.clone().unwrap_or_default(),
                image_id: cur.map(|x| x.image_id.clone()).unwrap_or_default(),
                container_id: cur.map(|x| format!("k1s://{}", x.id)),
            }
        };
        let view = PodView {
            sandbox_ready: sb.is_some_and(|s| s.ready),
            pod_ip: sb.and_then(|s| s.ip.clone()),
            host_ip: self.cfg.node_ip.clone(),
            init: spec
                .init_containers
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let mut v = view_of(c, &self.waiting, &self.probes);
                    if !is_sidecar(c) {
                        v.ready = matches!(v.state, Observed::Terminated { exit_code: 0, .. });
                    }
                    v
                })
                .collect(),
            containers: spec
                .containers
                .iter()
                .map(|c| {
                    let mut v = view_of(c, &self.waiting, &self.probes);
                    if sb.is_some()
                        && latest(containers, &c.name).is_none()
                        && !self.waiting.contains_key(&c.name)
                    {
                        let init_pending =
                            spec.init_containers.as_ref().is_some_and(|i| !i.is_empty());
                        if init_pending {
                            v.state = Observed::Waiting {
                                reason: "PodInitializing".into(),
                                message: None,
                            };
                        }
                    }
                    v
                })
                .collect(),
            start_time: self.start_time,
            failed_reason: self.failed.clone(),
            disruption: self.disruption.clone(),
        };
        let st = status::pod_status(pod, &view);
        let body = serde_json::json!({"status": st});
        let mut comparable = body.clone();
        strip_times(&mut comparable);
        if self.last_status.as_ref() == Some(&comparable) {
            return;
        }
        crate::status_manager::patch(&self.client, pod, &body).await;
        self.last_status = Some(comparable);
    }
}

/// Condition transition times change on every computation; compare without them.
fn strip_times(v: &mut serde_json::Value) {
    if let Some(cs) = v
        .pointer_mut("/status/conditions")
        .and_then(|c| c.as_array_mut())
    {
        for c in cs.iter_mut().filter_map(|c| c.as_object_mut()) {
            c.remove("lastTransitionTime");
        }
    }
}

/// Whether a pod with restartPolicy Never or OnFailure is done: every regular container
/// exited for good (OnFailure: with 0), or an init container failed under Never.
fn completed(spec: &PodSpec, restart: &str, containers: &[Container]) -> bool {
    let exit = |name: &str| match latest(containers, name).map(|x| &x.state) {
        Some(RunState::Exited { code, .. }) => Some(*code),
        _ => None,
    };
    match restart {
        "Never" => {
            let init_failed = spec
                .init_containers
                .iter()
                .flatten()
                .any(|c| !is_sidecar(c) && exit(&c.name).is_some_and(|code| code != 0));
            init_failed || spec.containers.iter().all(|c| exit(&c.name).is_some())
        }
        "OnFailure" => spec.containers.iter().all(|c| exit(&c.name) == Some(0)),
        _ => false,
    }
}

/// The pod's terminationGracePeriodSeconds (default 30).
pub(crate) fn pod_grace(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

pub(crate) fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default()
    )
}
