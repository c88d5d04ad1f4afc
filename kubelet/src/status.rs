//! Pod status computation: from what the runtime observed of each container to the
//! `PodStatus` upstream would report (phase, conditions, container statuses), as a pure
//! function so every rule is unit-tested. Writing it to the API is the status manager's job.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// What the kubelet knows of one container.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Not started yet (or restarting after a backoff): reason like ContainerCreating,
    /// PodInitializing, ErrImagePull, CrashLoopBackOff, CreateContainerConfigError.
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        message: Option<String>,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    pub name: String,
    pub state: Observed,
    pub last: Option<Observed>,
    pub restart_count: i32,
    pub ready: bool,
    pub started: Option<bool>,
    pub image: String,
    pub image_id: String,
    pub container_id: Option<String>,
}

/// Everything status computation needs besides the pod itself.
#[derive(Debug, Clone, Default)]
pub struct PodView {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub init: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    pub start_time: Option<Timestamp>,
    /// Set when the pod failed as a whole (e.g. DeadlineExceeded, Evicted).
    pub failed_reason: Option<(String, String)>,
    /// Set when the kubelet evicted the pod: the DisruptionTarget condition's message.
    pub disruption: Option<String>,
}

fn state_of(o: &Observed) -> ContainerState {
    match o {
        Observed::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        Observed::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        Observed::Terminated {
            exit_code,
            signal,
            reason,
            message,
            started_at,
            finished_at,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: *exit_code,
                signal: *signal,
                reason: Some(reason.clone()),
                message: message.clone(),
                started_at: started_at.map(Time),
                finished_at: Some(Time(*finished_at)),
                container_id: None,
            }),
            ..Default::default()
        },
    }
}

fn container_status(c: &ContainerView) -> ContainerStatus {
    let mut last = c.last.as_ref().map(state_of).unwrap_or_default();
    if let (Some(t), Some(id)) = (last.terminated.as_mut(), &c.container_id) {
        t.container_id = Some(id.clone());
    }
    let mut state = state_of(&c.state);
    if let (Some(t), Some(id)) = (state.terminated.as_mut(), &c.container_id) {
        t.container_id = Some(id.clone());
    }
    ContainerStatus {
        name: c.name.clone(),
        state: Some(state),
        last_state: Some(last),
        ready: c.ready,
        restart_count: c.restart_count,
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: c.container_id.clone(),
        started: c.started,
        ..Default::default()
    }
}

fn is_sidecar(pod: &Pod, name: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == name))
        .is_some_and(|c| c.restart_policy.as_deref() == Some("Always"))
}

/// Upstream's phase rules (kubelet `getPhase`); like upstream's kubelet, a terminal phase is
/// only reported once no container runs any more (sidecars are stopped after the regular
/// containers of a pod that completed).
pub fn phase(pod: &Pod, v: &PodView) -> &'static str {
    let p = computed_phase(pod, v);
    let running = v
        .init
        .iter()
        .chain(&v.containers)
        .any(|c| matches!(c.state, Observed::Running { .. }));
    if running && matches!(p, "Succeeded" | "Failed") {
        return "Running";
    }
    p
}

fn computed_phase(pod: &Pod, v: &PodView) -> &'static str {
    if v.failed_reason.is_some() {
        return "Failed";
    }
    let restart = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let mut pending_init = false;
    for c in &v.init {
        if is_sidecar(pod, &c.name) {
            if !matches!(c.state, Observed::Running { .. }) || c.started == Some(false) {
                pending_init = true;
            }
            continue;
        }
        match &c.state {
            Observed::Terminated { exit_code: 0, .. } => {}
            Observed::Terminated { .. } if restart == "Never" => return "Failed",
            _ => pending_init = true,
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &v.containers {
        match &c.state {
            Observed::Running { .. } => running += 1,
            Observed::Terminated { exit_code, .. } => {
                stopped += 1;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            Observed::Waiting { .. } => {
                if let Some(Observed::Terminated { exit_code, .. }) = &c.last {
                    stopped += 1;
                    if *exit_code == 0 {
                        succeeded += 1;
                    }
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if pending_init && running == 0 && stopped == 0 {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 && stopped == v.containers.len() {
        if restart == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn cond(
    ty: &str,
    ok: bool,
    reason: Option<&str>,
    now: Timestamp,
    prev: &[PodCondition],
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = prev
        .iter()
        .find(|c| c.type_ == ty && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: ty.into(),
        status: status.into(),
        reason: if ok { None } else { reason.map(str::to_string) },
        last_transition_time: Some(since),
        ..Default::default()
    }
}

/// The status to report for `pod`.
pub fn pod_status(pod: &Pod, v: &PodView) -> PodStatus {
    let now = Timestamp::now();
    let prev = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let phase = phase(pod, v);
    let init_done = v.init.iter().all(|c| {
        if is_sidecar(pod, &c.name) {
            c.started == Some(true) || matches!(c.state, Observed::Running { .. })
        } else {
            matches!(c.state, Observed::Terminated { exit_code: 0, .. })
        }
    });
    let terminal = phase == "Succeeded" || phase == "Failed";
    let containers_ready = !terminal
        && !v.containers.is_empty()
        && v.containers.iter().all(|c| c.ready)
        && v.init
            .iter()
            .filter(|c| is_sidecar(pod, &c.name))
            .all(|c| c.ready);
    let ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let init_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotInitialized"
    };
    let mut conditions = vec![
        cond(
            "PodReadyToStartContainers",
            v.sandbox_ready,
            None,
            now,
            &prev,
        ),
        cond("Initialized", init_done, Some(init_reason), now, &prev),
        cond("Ready", containers_ready, Some(ready_reason), now, &prev),
        cond(
            "ContainersReady",
            containers_ready,
            Some(ready_reason),
            now,
            &prev,
        ),
    ];
    if let Some(s) = prev.iter().find(|c| c.type_ == "PodScheduled") {
        conditions.push(s.clone());
    }
    match (
        &v.disruption,
        prev.iter().find(|c| c.type_ == "DisruptionTarget"),
    ) {
        (Some(msg), prev_dt) => conditions.push(PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("TerminationByKubelet".into()),
            message: Some(msg.clone()),
            last_transition_time: prev_dt
                .filter(|c| c.status == "True")
                .and_then(|c| c.last_transition_time.clone())
                .or(Some(Time(now))),
            ..Default::default()
        }),
        (None, Some(dt)) => conditions.push(dt.clone()),
        (None, None) => {}
    }
    let not_ready: Vec<String> = v
        .containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.clone())
        .collect();
    if !containers_ready && !terminal && !not_ready.is_empty() {
        let msg = format!("containers with unready status: [{}]", not_ready.join(" "));
        for c in conditions
            .iter_mut()
            .filter(|c| c.type_ == "Ready" || c.type_ == "ContainersReady")
        {
            c.message = Some(msg.clone());
        }
    }
    let (reason, message) = match &v.failed_reason {
        Some((r, m)) => (Some(r.clone()), Some(m.clone())),
        None => (None, None),
    };
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(v.host_ip.clone()),
        host_ips: Some(vec![HostIP {
            ip: v.host_ip.clone(),
        }]),
        pod_ip: v.pod_ip.clone(),
        pod_ips: v.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        start_time: v.start_time.map(Time),
        container_statuses: Some(v.containers.iter().map(container_status).collect()),
        init_container_statuses: if v.init.is_empty() {
            None
        } else {
            Some(v.init.iter().map(container_status).collect())
        },
        qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        reason,
        message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(restart: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(restart.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn c(state: Observed, last: Option<Observed>) -> ContainerView {
        ContainerView {
            name: "c".into(),
            state,
            last,
            restart_count: 0,
            ready: false,
            started: None,
            image: "i".into(),
            image_id: String::new(),
            container_id: None,
        }
    }

    fn term(code: i32) -> Observed {
        Observed::Terminated {
            exit_code: code,
            signal: None,
            reason: if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            message: None,
            started_at: None,
            finished_at: Timestamp::now(),
        }
    }

    #[test]
    fn restart_policy_matrix() {
        let waiting = Observed::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: None,
        };
        for (policy, code, want) in [
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
            ("OnFailure", 0, "Succeeded"),
            ("OnFailure", 1, "Running"),
            ("Always", 0, "Running"),
            ("Always", 1, "Running"),
        ] {
            let v = PodView {
                containers: vec![c(term(code), None)],
                ..Default::default()
            };
            assert_eq!(phase(&pod(policy), &v), want, "{policy} {code}");
        }
        let v = PodView {
            containers: vec![c(waiting, Some(term(1)))],
            ..Default::default()
        };
        assert_eq!(phase(&pod("Always"), &v), "Running");
        let v = PodView {
            containers: vec![c(
                Observed::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                None,
            )],
            ..Default::default()
        };
        assert_eq!(phase(&pod("Always"), &v), "Pending");
    }

    #[test]
    fn completed_pod_stays_running_while_a_sidecar_runs() {
        let mut p = pod("Never");
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![k8s_openapi::api::core::v1::Container {
                name: "proxy".into(),
                restart_policy: Some("Always".into()),
                ..Default::default()
            }]);
        }
        let mut sidecar = c(
            Observed::Running {
                started_at: Timestamp::now(),
            },
            None,
        );
        sidecar.name = "proxy".into();
        let mut v = PodView {
            init: vec![sidecar],
            containers: vec![c(term(0), None)],
            ..Default::default()
        };
        assert_eq!(phase(&p, &v), "Running");
        v.init[0].state = term(143);
        assert_eq!(phase(&p, &v), "Succeeded");
    }
}
