//! How the kubelet reports and restarts containers that end, as upstream: CrashLoopBackOff
//! timing (first restart at once, then the base delay doubling to the cap, measured inside
//! the container) with upstream's BackOff event and waiting message, events deduplicated into
//! counts; OOMKilled with exit code 137 and a restart; termination messages from the file and
//! from the log tail (`FallbackToLogsOnError`); activeDeadlineSeconds failing the pod.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";

/// Time from the kubelet deciding to restart until the new instance runs its first command
/// (events written, runtime create and start, `sh` exec), plus the exit being noticed. A
/// measured gap may exceed its back-off by 10% plus this, or plus what the immediate first
/// restart took in this run and 250 ms when that is more (a debug build on a loaded machine).
const START_SLACK: Duration = Duration::from_millis(500);
/// The first restart is immediate: it must come within this.
const FIRST_RESTART_MAX: Duration = Duration::from_millis(1500);

fn cluster(args: &[&str]) -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(None, args)
}

fn jsonpath(c: &Cluster, name: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", name, "-o", &format!("jsonpath={path}")])
        .unwrap_or_default()
}

/// The pod's Events as JSON objects.
fn events(c: &Cluster, name: &str) -> Result<Vec<serde_json::Value>> {
    let out = c.events_about(name, "json")?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["items"].as_array().cloned().unwrap_or_default())
}

/// Reads the container start times (seconds of /proc/uptime) each instance appended.
fn starts(path: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn crash_loop_backoff_is_immediate_then_doubles_to_the_cap() -> Result<()> {
    let args = [
        "--kubelet-backoff-base",
        "1s",
        "--kubelet-backoff-max",
        "4s",
    ];
    let Some(c) = cluster(&args)? else {
        return Ok(());
    };
    let dir = c.dir.path().join("starts");
    let file = dir.join("log");
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: crash}}\nspec:\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n    command: [\"sh\", \"-c\", \"cut -d' ' -f1 /proc/uptime >> /starts/log; exit 1\"]\n    volumeMounts: [{{name: s, mountPath: /starts}}]\n  volumes: [{{name: s, hostPath: {{path: {}, type: DirectoryOrCreate}}}}]\n",
        dir.display()
    ))?;
    // Six instances: five gaps of 0, 1, 2, 4 and 4 s (plus start-up), ~11 s in all.
    c.wait_for("six container starts", Duration::from_secs(60), || {
        Ok(starts(&file).len() >= 6)
    })?;
    let t = starts(&file);
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("measured gaps between container starts (s): {gaps:?}");
    let first = gaps.first().copied().unwrap_or_default();
    assert!(
        first <= FIRST_RESTART_MAX.as_secs_f64(),
        "the first restart took {first:.3}s; all gaps {gaps:?}"
    );
    let slack = START_SLACK.as_secs_f64().max(first + 0.25);
    for (i, (got, want)) in gaps
        .iter()
        .zip([0.0, 1.0, 2.0, 4.0, 4.0])
        .enumerate()
        .skip(1)
    {
        assert!(
            *got >= want * 0.9 && *got <= want * 1.1 + slack,
            "gap {i} is {got:.3}s, want {want}s (-10%, +10% + {slack}s); all gaps {gaps:?}"
        );
    }
    let uid = jsonpath(&c, "crash", "{.metadata.uid}");
    let pod_ref = format!("crash_default({uid})");
    // The waiting state names the current delay, like upstream.
    c.wait_for("CrashLoopBackOff", Duration::from_secs(20), || {
        Ok(jsonpath(
            &c,
            "crash",
            "{.status.containerStatuses[0].state.waiting.reason}",
        ) == "CrashLoopBackOff")
    })?;
    let msg = jsonpath(
        &c,
        "crash",
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert!(
        ["1s", "2s", "4s"]
            .iter()
            .any(|d| msg == format!("back-off {d} restarting failed container=c pod={pod_ref}")),
        "{msg}"
    );
    // One BackOff Event whose count grows; a bounded number of Events in all.
    let evs = events(&c, "crash")?;
    let backoff: Vec<_> = evs.iter().filter(|e| e["reason"] == "BackOff").collect();
    assert_eq!(backoff.len(), 1, "{backoff:?}");
    let b = backoff[0];
    assert_eq!(
        b["message"],
        format!("Back-off restarting failed container c in pod {pod_ref}")
    );
    assert_eq!(b["type"], "Warning");
    assert_eq!(b["involvedObject"]["fieldPath"], "spec.containers{c}");
    assert!(b["count"].as_i64().unwrap_or(0) > 1, "{b}");
    let started = evs
        .iter()
        .find(|e| e["reason"] == "Started")
        .context("no Started event")?;
    // Counted, not repeated; upstream's spam filter (25 events per pod, then one per five
    // minutes) stops the writes after about five restarts.
    assert!(started["count"].as_i64().unwrap_or(0) >= 3, "{started}");
    let reasons: Vec<&str> = evs.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(evs.len() <= 6, "too many Events: {reasons:?}");
    Ok(())
}

#[test]
fn oom_killed_container_reports_137_and_restarts() -> Result<()> {
    let Some(c) = cluster(&["--kubelet-backoff-base", "1s"])? else {
        return Ok(());
    };
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: oom}}\nspec:\n  restartPolicy: OnFailure\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"head -c 64m /dev/zero | tail\"]\n    resources: {{limits: {{memory: 16Mi}}}}\n"
    ))?;
    c.wait_for("OOMKilled and restarted", Duration::from_secs(60), || {
        let reason = jsonpath(
            &c,
            "oom",
            "{.status.containerStatuses[0].lastState.terminated.reason}",
        );
        let restarts = jsonpath(&c, "oom", "{.status.containerStatuses[0].restartCount}");
        Ok(reason == "OOMKilled" && restarts.parse::<i32>().unwrap_or(0) >= 1)
    })?;
    let code = jsonpath(
        &c,
        "oom",
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    );
    assert_eq!(code, "137");
    assert_eq!(jsonpath(&c, "oom", "{.status.phase}"), "Running");
    // Right after a restart the new instance runs until it is killed again: the STATUS
    // column shows Running in between.
    c.wait_for(
        "STATUS OOMKilled or CrashLoopBackOff",
        Duration::from_secs(60),
        || {
            let table = c.kubectl(&["get", "pod", "oom"])?;
            Ok(table.contains("OOMKilled") || table.contains("CrashLoopBackOff"))
        },
    )?;
    Ok(())
}

#[test]
fn termination_message_from_file_and_log_tail() -> Result<()> {
    let Some(c) = cluster(&[])? else {
        return Ok(());
    };
    let pod = |name: &str, script: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {script:?}]\n{extra}---\n"
        )
    };
    let big = "for i in $(seq 1 100); do echo log line $i; done";
    let yaml = [
        pod("file", "echo -n 'all done' > /dev/termination-log", ""),
        pod(
            "custom",
            "echo bye > /tmp/msg; exit 2",
            "    terminationMessagePath: /tmp/msg\n",
        ),
        pod(
            "fallback",
            &format!("{big}; exit 3"),
            "    terminationMessagePolicy: FallbackToLogsOnError\n",
        ),
        pod(
            "fallback-ok",
            &format!("{big}; exit 0"),
            "    terminationMessagePolicy: FallbackToLogsOnError\n",
        ),
        pod(
            "long",
            "head -c 5000 /dev/zero | tr '\\0' x > /dev/termination-log",
            "",
        ),
    ]
    .concat();
    c.apply(&yaml)?;
    let msg = |name: &str| {
        jsonpath(
            &c,
            name,
            "{.status.containerStatuses[0].state.terminated.message}",
        )
    };
    for (name, phase) in [
        ("file", "Succeeded"),
        ("custom", "Failed"),
        ("fallback", "Failed"),
        ("fallback-ok", "Succeeded"),
        ("long", "Succeeded"),
    ] {
        c.wait_for(&format!("{name} {phase}"), Duration::from_secs(60), || {
            Ok(jsonpath(&c, name, "{.status.phase}") == phase)
        })?;
    }
    assert_eq!(msg("file"), "all done");
    assert_eq!(msg("custom"), "bye\n");
    let tail = msg("fallback");
    assert!(
        tail.starts_with("log line 21\n") && tail.ends_with("log line 100\n"),
        "{tail}"
    );
    assert_eq!(msg("fallback-ok"), "");
    assert_eq!(msg("long").len(), 4096);
    Ok(())
}

#[test]
fn active_deadline_fails_the_pod_and_kills_its_containers() -> Result<()> {
    let Some(c) = cluster(&[])? else {
        return Ok(());
    };
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: deadline}}\nspec:\n  activeDeadlineSeconds: 3\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n"
    ))?;
    c.wait_for("pod Failed", Duration::from_secs(30), || {
        Ok(jsonpath(&c, "deadline", "{.status.phase}") == "Failed")
    })?;
    assert_eq!(
        jsonpath(&c, "deadline", "{.status.reason}"),
        "DeadlineExceeded"
    );
    assert_eq!(
        jsonpath(&c, "deadline", "{.status.message}"),
        "Pod was active on the node longer than the specified deadline"
    );
    c.wait_for("container terminated", Duration::from_secs(30), || {
        Ok(!jsonpath(
            &c,
            "deadline",
            "{.status.containerStatuses[0].state.terminated.reason}",
        )
        .is_empty())
    })?;
    let evs = events(&c, "deadline")?;
    assert!(
        evs.iter().any(|e| e["reason"] == "DeadlineExceeded"
            && e["message"] == "Pod was active on the node longer than the specified deadline"),
        "{evs:?}"
    );
    Ok(())
}
