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
    Ok(())
}
