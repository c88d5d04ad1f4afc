//! The node agent seen from outside: k1s protects itself from the OOM killer (-999) and each
//! container gets upstream's oom_score_adj for its QoS class (BestEffort 1000, Guaranteed
//! -997, Burstable from its memory request); the kubelet's Prometheus `/metrics`, read
//! through the API server's node proxy, counts running pods and containers and probe results.

use std::time::Duration;

use anyhow::Result;

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";
const IDLE: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

fn pod(name: &str, resources: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {IDLE:?}]\n    resources: {resources}\n{extra}---\n"
    )
}

fn running(c: &Cluster, name: &str) -> bool {
    c.kubectl(&["get", "pod", name, "-o", "jsonpath={.status.phase}"])
        .is_ok_and(|p| p == "Running")
}

/// Whether this process (and so the server it starts) holds CAP_SYS_RESOURCE.
fn privileged() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let v = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&v, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

fn oom_score_adj(c: &Cluster) -> Result<()> {
    c.apply(&pod("besteffort", "{}", ""))?;
    c.apply(&pod(
        "guaranteed",
        "{limits: {cpu: 100m, memory: 64Mi}}",
        "",
    ))?;
    c.apply(&pod("burstable", "{requests: {memory: 1Mi}}", ""))?;
    for name in ["besteffort", "guaranteed", "burstable"] {
        c.wait_for(&format!("{name} Running"), Duration::from_secs(60), || {
            Ok(running(c, name))
        })?;
    }
    let adj = |name: &str| -> Result<String> {
        Ok(
            c.kubectl(&["exec", name, "--", "cat", "/proc/1/oom_score_adj"])?
                .trim()
                .to_string(),
        )
    };
    assert_eq!(adj("besteffort")?, "1000");
    // Without CAP_SYS_RESOURCE (tests in an unprivileged container) nothing can go below
    // the score it started with: k1s then clamps containers to its own.
    let guaranteed = if privileged() { "-997" } else { "0" };
    assert_eq!(adj("guaranteed")?, guaranteed);
    // 1Mi of the host's memory: just under BestEffort.
    let burstable: i32 = adj("burstable")?.parse()?;
    assert!((900..=999).contains(&burstable), "burstable {burstable}");
    // A process started by exec gets the container's score too.
    let exec = c.kubectl(&[
        "exec",
        "guaranteed",
        "--",
        "sh",
        "-c",
        "cat /proc/self/oom_score_adj",
    ])?;
    assert_eq!(exec.trim(), guaranteed);
    Ok(())
}

/// A sample's value from the exposition, by its full series text.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn metrics(c: &Cluster) -> Result<()> {
    c.apply(&pod(
        "probed",
        "{}",
        "    readinessProbe: {exec: {command: [\"true\"]}, periodSeconds: 1}\n",
    ))?;
    c.wait_for("probed Ready", Duration::from_secs(60), || {
        Ok(c.kubectl(&[
            "get",
            "pod",
            "probed",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])? == "True")
    })?;
    let node = c.kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])?;
    // The node reports its images (the pods' busybox among them), with their size.
    c.wait_for(
        "busybox in the node's images",
        Duration::from_secs(30),
        || {
            let images = c.kubectl(&[
                "get",
                "node",
                &node,
                "-o",
                "jsonpath={range .status.images[*]}{.names} {.sizeBytes}{\"\\n\"}{end}",
            ])?;
            Ok(images
                .lines()
                .any(|l| l.contains("k1s.local/busybox:latest") && !l.ends_with(" 0")))
        },
    )?;
    let path = format!("/api/v1/nodes/{node}/proxy/metrics");
    let text = c.kubectl(&["get", "--raw", &path])?;
    assert!(text.contains("# TYPE kubelet_running_pods gauge"), "{text}");
    // besteffort, guaranteed, burstable, probed.
    assert_eq!(value(&text, "kubelet_running_pods"), Some(4.0), "{text}");
    assert_eq!(
        value(
            &text,
            "kubelet_running_containers{container_state=\"running\"}"
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "kubelet_container_restarts{namespace=\"default\",pod=\"probed\",container=\"c\"}"
        ),
        Some(0.0),
        "{text}"
    );
    let uid = c.kubectl(&["get", "pod", "probed", "-o", "jsonpath={.metadata.uid}"])?;
    let series = format!(
        "prober_probe_total{{probe_type=\"Readiness\",result=\"successful\",container=\"c\",pod=\"probed\",namespace=\"default\",pod_uid=\"{uid}\"}}"
    );
    assert!(
        value(&text, &series).is_some_and(|v| v >= 1.0),
        "{series} in\n{text}"
    );
    let rss = value(&text, "process_resident_memory_bytes").unwrap_or(0.0);
    assert!(rss > 1e6, "{text}");
    assert!(text.contains("# TYPE kubelet_evictions counter"), "{text}");
    // Only the read-only endpoints are proxied.
    let denied = c.kubectl_fail(
        &["get", "--raw", &format!("/api/v1/nodes/{node}/proxy/pods")],
        None,
    )?;
    assert!(
        denied.contains("NotFound") || denied.contains("not found"),
        "{denied}"
    );
    let missing = c.kubectl_fail(&["get", "--raw", "/api/v1/nodes/nope/proxy/metrics"], None)?;
    assert!(missing.contains("not found"), "{missing}");
    Ok(())
}

#[test]
fn oom_scores_and_metrics() -> Result<()> {
    let Some(mut c) = crate::harness::pod_cluster(None, &[])? else {
        return Ok(());
    };
    let pid = c.server_pid().expect("server running");
    let own = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))?;
    if privileged() {
        assert_eq!(own.trim(), "-999");
    } else {
        assert!(c.logs().contains("failed to set the oom_score_adj of k1s"));
    }
    oom_score_adj(&c)?;
    metrics(&c)?;
    Ok(())
}
