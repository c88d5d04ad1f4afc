//! Container probes through kubectl 1.35 and 1.32: an exec readiness probe flips Ready with a
//! file both ways; httpGet (by named port, against busybox httpd) and tcpSocket probes pass;
//! a missing named port and a 404 fail with upstream's messages; a liveness failure kills and
//! restarts the container with `Unhealthy` and `Killing` events; a startup probe holds off
//! liveness until it succeeds, and a startup probe that never succeeds restarts the container.
//! Lifecycle hooks on the same cluster: postStart runs before the container counts as ready
//! and its failure kills the container; preStop runs before a probe kill and on deletion, and
//! its failure is a `FailedPreStopHook` event.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";

/// A shell loop that exits at once on SIGTERM.
const IDLE: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

fn start(version: &str) -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(Some(version), &[])
}

/// A one-container pod running `script`, with `extra` YAML (probes, ports) under the container.
fn pod(name: &str, script: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {script:?}]\n{extra}---\n"
    )
}

fn jsonpath(c: &Cluster, name: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", name, "-o", &format!("jsonpath={path}")])
        .unwrap_or_default()
}

fn ready(c: &Cluster, name: &str) -> String {
    jsonpath(c, name, "{.status.conditions[?(@.type==\"Ready\")].status}")
}

fn restarts(c: &Cluster, name: &str) -> i64 {
    jsonpath(c, name, "{.status.containerStatuses[0].restartCount}")
        .parse()
        .unwrap_or(0)
}

/// "reason: message" lines of the events about `name`.
fn events(c: &Cluster, name: &str) -> String {
    c.events_about(
        name,
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    )
    .unwrap_or_default()
}

fn readiness_and_network_probes(c: &Cluster) -> Result<()> {
    let exec_ready = "    readinessProbe:\n      exec: {command: [cat, /tmp/ready]}\n      periodSeconds: 1\n      failureThreshold: 1\n";
    let web = "    ports: [{name: http, containerPort: 8080}]\n    readinessProbe:\n      httpGet: {path: /index.html, port: http, httpHeaders: [{name: X-Probe, value: k1s}]}\n      periodSeconds: 1\n    livenessProbe:\n      tcpSocket: {port: 8080}\n      initialDelaySeconds: 1\n      periodSeconds: 1\n      failureThreshold: 2\n";
    let badport =
        "    readinessProbe:\n      httpGet: {path: /, port: nope}\n      periodSeconds: 1\n";
    let notfound = "    readinessProbe:\n      httpGet: {path: /missing, port: 8080}\n      periodSeconds: 1\n";
    let serve = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www";
    let mut all = pod("ready", IDLE, exec_ready);
    all.push_str(&pod("web", serve, web));
    all.push_str(&pod("badport", IDLE, badport));
    all.push_str(&pod("notfound", serve, notfound));
    c.apply(&all)?;
    let t = Duration::from_secs(60);
    c.wait_for("ready Running", t, || {
        Ok(jsonpath(c, "ready", "{.status.phase}") == "Running")
    })?;
    // Running and started, but not ready until the probe's file exists.
    assert_eq!(
        jsonpath(c, "ready", "{.status.containerStatuses[0].started}"),
        "true"
    );
    assert_eq!(ready(c, "ready"), "False");
    assert_eq!(
        jsonpath(c, "ready", "{.status.containerStatuses[0].ready}"),
        "false"
    );
    c.kubectl(&["exec", "ready", "--", "touch", "/tmp/ready"])?;
    let t0 = Instant::now();
    c.wait_for("ready Ready=True", t, || Ok(ready(c, "ready") == "True"))?;
    eprintln!("readiness false->true after {:?}", t0.elapsed());
    assert_eq!(
        jsonpath(c, "ready", "{.status.containerStatuses[0].ready}"),
        "true"
    );
    assert_eq!(
        jsonpath(
            c,
            "ready",
            "{.status.conditions[?(@.type==\"ContainersReady\")].status}"
        ),
        "True"
    );
    c.kubectl(&["exec", "ready", "--", "rm", "/tmp/ready"])?;
    let t0 = Instant::now();
    c.wait_for("ready Ready=False", t, || Ok(ready(c, "ready") == "False"))?;
    eprintln!("readiness true->false after {:?}", t0.elapsed());
    let table = c.kubectl(&["get", "pod", "ready"])?;
    assert!(
        table.contains("0/1") && table.contains("Running"),
        "{table}"
    );
    let ev = events(c, "ready");
    assert!(ev.contains("Unhealthy: Readiness probe failed:"), "{ev}");

    c.wait_for("web Ready=True", t, || Ok(ready(c, "web") == "True"))?;
    c.wait_for("badport probe error event", t, || {
        Ok(events(c, "badport").contains("Readiness probe errored: port nope not found"))
    })?;
    c.wait_for("notfound 404 event", t, || {
        Ok(events(c, "notfound")
            .contains("Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 404"))
    })?;
    for name in ["badport", "notfound"] {
        assert_eq!(ready(c, name), "False", "{name}");
        assert_eq!(jsonpath(c, name, "{.status.phase}"), "Running", "{name}");
    }
    // The tcpSocket liveness probe never failed on the serving pod (it starts after httpd
    // had a second to listen).
    assert_eq!(restarts(c, "web"), 0);
    let ev = events(c, "web");
    assert!(
        !ev.contains("Liveness probe failed") && !ev.contains("Killing"),
        "{ev}"
    );
    Ok(())
}

fn liveness_and_startup(c: &Cluster) -> Result<()> {
    let live = "    livenessProbe:\n      exec: {command: [cat, /tmp/alive]}\n      periodSeconds: 1\n      failureThreshold: 2\n";
    // Liveness alone would kill this container in its first seconds; the startup probe waits.
    let gated = "    startupProbe:\n      exec: {command: [cat, /tmp/alive]}\n      periodSeconds: 1\n      failureThreshold: 30\n    livenessProbe:\n      exec: {command: [cat, /tmp/alive]}\n      periodSeconds: 1\n      failureThreshold: 1\n";
    let never = "    startupProbe:\n      exec: {command: [\"false\"]}\n      periodSeconds: 1\n      failureThreshold: 2\n      terminationGracePeriodSeconds: 1\n";
    let mut all = pod("live", &format!("touch /tmp/alive; {IDLE}"), live);
    all.push_str(&pod(
        "gated",
        &format!("sleep 6; touch /tmp/alive; {IDLE}"),
        gated,
    ));
    all.push_str(&pod("never", IDLE, never));
    c.apply(&all)?;
    let t = Duration::from_secs(60);
    c.wait_for("gated Running", t, || {
        Ok(jsonpath(c, "gated", "{.status.phase}") == "Running")
    })?;
    // Not started (nor ready) until the startup probe succeeds.
    assert_eq!(
        jsonpath(c, "gated", "{.status.containerStatuses[0].started}"),
        "false"
    );
    assert_eq!(ready(c, "gated"), "False");
    c.wait_for("gated started", t, || {
        Ok(jsonpath(c, "gated", "{.status.containerStatuses[0].started}") == "true")
    })?;
    c.wait_for("gated Ready", t, || Ok(ready(c, "gated") == "True"))?;

    c.wait_for("live Ready", t, || Ok(ready(c, "live") == "True"))?;
    c.kubectl(&["exec", "live", "--", "rm", "/tmp/alive"])?;
    let t0 = Instant::now();
    c.wait_for("live restarted", t, || Ok(restarts(c, "live") >= 1))?;
    eprintln!("liveness failure to restart after {:?}", t0.elapsed());
    let ev = events(c, "live");
    assert!(ev.contains("Unhealthy: Liveness probe failed:"), "{ev}");
    assert!(
        ev.contains("Killing: Container c failed liveness probe, will be restarted"),
        "{ev}"
    );
    assert!(
        !jsonpath(
            c,
            "live",
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        )
        .is_empty(),
        "no lastState after the liveness kill"
    );
    // The new instance has the file again (the script touches it) and becomes ready.
    c.wait_for("live Ready again", t, || Ok(ready(c, "live") == "True"))?;

    c.wait_for("never restarted", t, || Ok(restarts(c, "never") >= 1))?;
    let ev = events(c, "never");
    assert!(ev.contains("Unhealthy: Startup probe failed:"), "{ev}");
    assert!(
        ev.contains("Killing: Container c failed startup probe, will be restarted"),
        "{ev}"
    );

    // Liveness never ran before the startup probe succeeded: no kill, no restart.
    assert_eq!(restarts(c, "gated"), 0);
    let ev = events(c, "gated");
    assert!(
        !ev.contains("Killing") && !ev.contains("Liveness probe failed"),
        "{ev}"
    );
    Ok(())
}

fn lifecycle_hooks(c: &Cluster) -> Result<()> {
    let post = "    lifecycle:\n      postStart:\n        exec: {command: [sh, -c, \"echo hooked > /tmp/hook\"]}\n    readinessProbe:\n      exec: {command: [cat, /tmp/hook]}\n      periodSeconds: 1\n";
    let bad_post =
        "    lifecycle:\n      postStart:\n        exec: {command: [sh, -c, \"exit 3\"]}\n";
    let bad_pre =
        "    lifecycle:\n      preStop:\n        exec: {command: [sh, -c, \"echo no; exit 1\"]}\n";
    let mut all = pod("poststart", IDLE, post);
    all.push_str(&pod("badpost", IDLE, bad_post));
    all.push_str(&pod("badpre", IDLE, bad_pre));
    // preStop appends to an emptyDir, which outlives the container a liveness probe kills.
    all.push_str(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: prestop}}
spec:
  terminationGracePeriodSeconds: 5
  volumes: [{{name: shared, emptyDir: {{}}}}]
  containers:
  - name: c
    image: {IMAGE}
    command: ["sh", "-c", "touch /tmp/alive; {IDLE}"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
    livenessProbe:
      exec: {{command: [cat, /tmp/alive]}}
      periodSeconds: 1
      failureThreshold: 1
    lifecycle:
      preStop:
        exec: {{command: [sh, -c, "echo prestop-ran >> /shared/log"]}}
"#
    ));
    c.apply(&all)?;
    let t = Duration::from_secs(60);
    c.wait_for("poststart Ready", t, || Ok(ready(c, "poststart") == "True"))?;
    let out = c.kubectl(&["exec", "poststart", "--", "cat", "/tmp/hook"])?;
    assert_eq!(out.trim(), "hooked");

    c.wait_for("badpost hook failure events", t, || {
        let ev = events(c, "badpost");
        Ok(
            ev.contains("FailedPostStartHook: Exec lifecycle hook ([sh -c exit 3])")
                && ev.contains("Killing: FailedPostStartHook"),
        )
    })?;
    c.wait_for("badpost restarted", t, || Ok(restarts(c, "badpost") >= 1))?;

    c.wait_for("prestop Running", t, || {
        Ok(jsonpath(c, "prestop", "{.status.phase}") == "Running")
    })?;
    c.kubectl(&["exec", "prestop", "--", "rm", "/tmp/alive"])?;
    c.wait_for("prestop restarted", t, || Ok(restarts(c, "prestop") >= 1))?;
    c.wait_for("prestop running again", t, || {
        Ok(!jsonpath(c, "prestop", "{.status.containerStatuses[0].state.running}").is_empty())
    })?;
    let log = c.kubectl(&["exec", "prestop", "--", "cat", "/shared/log"])?;
    assert_eq!(log.trim(), "prestop-ran");

    c.wait_for("badpre Running", t, || {
        Ok(jsonpath(c, "badpre", "{.status.phase}") == "Running")
    })?;
    c.kubectl(&["delete", "pod", "badpre", "--timeout=60s"])?;
    let ev = events(c, "badpre");
    assert!(
        ev.contains("FailedPreStopHook: Exec lifecycle hook ([sh -c echo no; exit 1])"),
        "{ev}"
    );
    assert!(ev.contains("Killing: Stopping container c"), "{ev}");
    Ok(())
}

fn probes(version: &str) -> Result<()> {
    let Some(c) = start(version)? else {
        return Ok(());
    };
    readiness_and_network_probes(&c)?;
    liveness_and_startup(&c)?;
    lifecycle_hooks(&c)?;
    Ok(())
}

#[test]
fn probes_kubectl_1_35() -> Result<()> {
    probes("1.35")
}

#[test]
fn probes_kubectl_1_32() -> Result<()> {
    probes("1.32")
}
