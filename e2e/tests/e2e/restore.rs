//! Live restore: pods keep running while k1s is killed with SIGKILL and restarted, again and
//! again. Each round checks the same containers (ID, process start time, restart count 0),
//! and that a pod created and a pod deleted just before the kill are reconciled after it. At
//! the end every log holds an unbroken sequence (no lost lines).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::harness::{kubectl_versions, require_root, Cluster};

const IMAGE: &str = "k1s.local/busybox:latest";
const PODS: usize = 20;
const ROUNDS: usize = 10;

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: restore}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: Never\n    command: [sh, -c, 'i=0; while true; do echo seq $i; i=$((i+1)); sleep 0.1; done']\n"
    )
}

/// Per pod: container ID, restart count and the start time of its PID 1 (field 22 of
/// /proc/1/stat, in clock ticks since boot: another process would have another one).
#[derive(Debug, PartialEq, Clone)]
struct Identity {
    container_id: String,
    restarts: String,
    start_ticks: String,
}

fn identities(c: &Cluster, names: &[String]) -> Result<Vec<Identity>> {
    let mut out = Vec::new();
    for n in names {
        let id = c.kubectl(&[
            "get",
            "pod",
            n,
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}",
        ])?;
        let (container_id, restarts) = id.split_once(' ').context("no container status")?;
        let stat = c.kubectl(&["exec", n, "--", "cat", "/proc/1/stat"])?;
        let start_ticks = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(19))
            .context("no start time in /proc/1/stat")?
            .to_string();
        out.push(Identity {
            container_id: container_id.to_string(),
            restarts: restarts.to_string(),
            start_ticks,
        });
    }
    Ok(out)
}

fn all_running(c: &Cluster, names: &[String]) -> Result<bool> {
    let out = c.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=restore",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}",
    ])?;
    Ok(names
        .iter()
        .all(|n| out.lines().any(|l| l == format!("{n}=Running"))))
}

/// The kubectl these tests use, or None (skip) without root or the busybox image.
fn kubectl_version() -> Option<String> {
    if !require_root() || std::env::var("K1S_BUSYBOX_IMAGE").is_err() {
        eprintln!("skipping: needs root and K1S_BUSYBOX_IMAGE");
        return None;
    }
    kubectl_versions().into_iter().next()
}

#[test]
fn pods_survive_kill9_of_k1s() -> Result<()> {
    let Some(v) = kubectl_version() else {
        return Ok(());
    };
    let mut c = Cluster::start(&v, &[])?;
    let names: Vec<String> = (0..PODS).map(|i| format!("keep-{i}")).collect();
    let all: String = names.iter().map(|n| pod(n) + "---\n").collect();
    c.apply(&all)?;
    c.wait_for("20 pods Running", Duration::from_secs(120), || {
        all_running(&c, &names)
    })?;
    let before = identities(&c, &names)?;
    assert!(before.iter().all(|i| i.restarts == "0"), "{before:?}");

    let mut downtime = Vec::new();
    for round in 0..ROUNDS {
        // Changes the kubelet has not acted on yet when it dies.
        let new = format!("new-{round}");
        c.apply(&pod(&new))?;
        if round > 0 {
            c.kubectl(&[
                "delete",
                "pod",
                &format!("new-{}", round - 1),
                "--wait=false",
            ])?;
        }
        let t = Instant::now();
        c.restart()?;
        downtime.push(t.elapsed());
        let up = c.wait_for("the new pod Running", Duration::from_secs(60), || {
            Ok(c.kubectl(&["get", "pod", &new, "-o", "jsonpath={.status.phase}"])? == "Running")
        });
        if up.is_err() {
            eprintln!(
                "{}",
                c.kubectl(&["get", "pod", &new, "-o", "yaml"])
                    .unwrap_or_default()
            );
            eprintln!("{}", c.kubectl(&["get", "events"]).unwrap_or_default());
        }
        up?;
        if round > 0 {
            let gone = format!("new-{}", round - 1);
            c.wait_for("the deleted pod gone", Duration::from_secs(60), || {
                let o = c.kubectl_raw(&["get", "pod", &gone])?;
                Ok(!o.status.success())
            })?;
        }
        // A sample each round (all of them at the end).
        let sample = [names[round].clone(), names[PODS - 1 - round].clone()];
        let now = identities(&c, &sample)?;
        assert_eq!(now[0], before[round], "round {round}");
        assert_eq!(now[1], before[PODS - 1 - round], "round {round}");
    }
    assert_eq!(identities(&c, &names)?, before);
    for n in &names {
        let log = c.kubectl(&["logs", n])?;
        let seqs: Vec<u64> = log
            .lines()
            .filter_map(|l| l.strip_prefix("seq ").and_then(|v| v.parse().ok()))
            .collect();
        assert!(seqs.len() > 10, "{n}: {log}");
        for (i, s) in seqs.iter().enumerate() {
            assert_eq!(*s, i as u64, "{n}: a log line is missing or repeated");
        }
    }
    downtime.sort();
    eprintln!(
        "restart to ready: median {:?}, max {:?}",
        downtime[downtime.len() / 2],
        downtime[downtime.len() - 1]
    );
    Ok(())
}

/// A test that fails while its server is down must not leak containers: dropping the cluster
/// kills the shims' containers and removes their cgroups.
#[test]
fn dropping_a_cluster_with_its_server_down_leaves_no_containers() -> Result<()> {
    let Some(v) = kubectl_version() else {
        return Ok(());
    };
    let marker = format!("leak-check-{}", std::process::id());
    let uid;
    {
        let mut c = Cluster::start(&v, &[])?;
        c.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: orphan}}\nspec:\n  containers:\n  - name: c\n    image: k1s.local/busybox:latest\n    command: [\"sh\", \"-c\", \"while true; do sleep 1; done\", \"{marker}\"]\n"
        ))?;
        c.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pod/orphan",
            "--timeout=60s",
        ])?;
        uid = c.kubectl(&["get", "pod", "orphan", "-o", "jsonpath={.metadata.uid}"])?;
        c.kill9()?;
    }
    let leaked: Vec<String> = std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert!(leaked.is_empty(), "leaked: {leaked:?}");
    for ctl in ["memory", "pids", "cpu"] {
        let dir = format!("/sys/fs/cgroup/{ctl}/k1s/pod{uid}");
        assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
    }
    Ok(())
}

/// A pod whose shim died while k1s was down (or whose sandbox k1s was killed in the middle of
/// making) gets a new sandbox, with a SandboxChanged event, and runs again; its worker used to
/// fail on the dead shim forever.
#[test]
fn a_sandbox_whose_shim_died_while_k1s_was_down_is_replaced() -> Result<()> {
    let Some(v) = kubectl_version() else {
        return Ok(());
    };
    let mut c = Cluster::start(&v, &[])?;
    c.apply(&pod("lost"))?;
    c.kubectl(&["wait", "--for=condition=Ready", "pod/lost", "--timeout=60s"])?;
    let container = "jsonpath={.status.containerStatuses[0].containerID}";
    let before = c.kubectl(&["get", "pod", "lost", "-o", container])?;
    c.restart_with(|c| {
        let sandboxes = c.dir.path().join("data/runtime/state/sandboxes");
        for e in std::fs::read_dir(sandboxes)?.flatten() {
            let pid: i32 = std::fs::read_to_string(e.path().join("shim.pid"))?
                .trim()
                .parse()?;
            let st = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()?;
            anyhow::ensure!(st.success(), "kill -9 {pid}");
        }
        Ok(())
    })?;
    c.wait_for("a new container Ready", Duration::from_secs(60), || {
        let now = c.kubectl(&["get", "pod", "lost", "-o", container])?;
        let ready = c.kubectl(&[
            "get",
            "pod",
            "lost",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])?;
        Ok(!now.is_empty() && now != before && ready == "True")
    })?;
    let events = c.events_about("lost", "jsonpath={.items[*].reason}")?;
    assert!(events.contains("SandboxChanged"), "{events}");
    Ok(())
}
