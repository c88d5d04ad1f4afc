//! Sidecars (init containers with `restartPolicy: Always`) through kubectl 1.35 and 1.32: on
//! deletion the regular container gets SIGTERM and exits before the sidecar is signalled; a
//! pod with restartPolicy Never whose main container completes has its sidecar stopped and
//! reaches Succeeded.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";

fn start(version: &str) -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(Some(version), &[])
}

fn jsonpath(c: &Cluster, name: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", name, "-o", &format!("jsonpath={path}")])
        .unwrap_or_default()
}

/// A loop that appends `<who>-term` to /out/log on SIGTERM, then (after `linger`) `<who>-exit`.
fn on_term(who: &str, linger: &str) -> String {
    format!(
        "trap 'echo {who}-term >> /out/log; sleep {linger}; echo {who}-exit >> /out/log; exit 0' TERM; echo {who}-up >> /out/log; while true; do sleep 1; done"
    )
}

fn sidecar_is_stopped_after_the_main_container(c: &Cluster) -> Result<()> {
    let out = c.dir.path().join("order");
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: ordered}}\nspec:\n  terminationGracePeriodSeconds: 20\n  initContainers:\n  - name: early\n    image: {IMAGE}\n    restartPolicy: Always\n    command: [\"sh\", \"-c\", {early:?}]\n    volumeMounts: [{{name: out, mountPath: /out}}]\n  - name: late\n    image: {IMAGE}\n    restartPolicy: Always\n    command: [\"sh\", \"-c\", {late:?}]\n    volumeMounts: [{{name: out, mountPath: /out}}]\n  containers:\n  - name: main\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {main:?}]\n    volumeMounts: [{{name: out, mountPath: /out}}]\n  volumes:\n  - name: out\n    hostPath: {{path: {path:?}, type: DirectoryOrCreate}}\n",
        early = on_term("early", "0"),
        late = on_term("late", "0"),
        main = on_term("main", "1"),
        path = out.display().to_string(),
    ))?;
    c.wait_for("ordered Running", Duration::from_secs(60), || {
        Ok(jsonpath(c, "ordered", "{.status.phase}") == "Running"
            && std::fs::read_to_string(out.join("log")).is_ok_and(|l| l.contains("main-up")))
    })?;
    let t0 = Instant::now();
    c.kubectl(&["delete", "pod", "ordered", "--timeout=60s"])?;
    let deleted_after = t0.elapsed();
    let log = std::fs::read_to_string(out.join("log"))?;
    let events: Vec<&str> = log.lines().filter(|l| !l.ends_with("-up")).collect();
    assert_eq!(
        events,
        [
            "main-term",
            "main-exit",
            "late-term",
            "late-exit",
            "early-term",
            "early-exit"
        ],
        "{log}"
    );
    eprintln!(
        "pod with two sidecars deleted in {} ms",
        deleted_after.as_millis()
    );
    assert!(deleted_after < Duration::from_secs(20), "{deleted_after:?}");
    Ok(())
}

fn job_like_pod_with_a_sidecar_succeeds(c: &Cluster) -> Result<()> {
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: joblike}}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 5\n  initContainers:\n  - name: proxy\n    image: {IMAGE}\n    restartPolicy: Always\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n  containers:\n  - name: work\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"sleep 1; echo done\"]\n"
    ))?;
    c.wait_for("joblike Succeeded", Duration::from_secs(60), || {
        Ok(jsonpath(c, "joblike", "{.status.phase}") == "Succeeded")
    })?;
    let sidecar = jsonpath(
        c,
        "joblike",
        "{.status.initContainerStatuses[0].state.terminated.reason}",
    );
    assert!(!sidecar.is_empty(), "the sidecar is not terminated");
    let work = jsonpath(
        c,
        "joblike",
        "{.status.containerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(work, "Completed");
    let table = c.kubectl(&["get", "pod", "joblike"])?;
    assert!(table.contains("Completed"), "{table}");
    Ok(())
}

fn sidecars(version: &str) -> Result<()> {
    let Some(c) = start(version)? else {
        return Ok(());
    };
    sidecar_is_stopped_after_the_main_container(&c)?;
    job_like_pod_with_a_sidecar_succeeds(&c)
}

#[test]
fn sidecars_kubectl_1_35() -> Result<()> {
    sidecars("1.35")
}

#[test]
fn sidecars_kubectl_1_32() -> Result<()> {
    sidecars("1.32")
}
