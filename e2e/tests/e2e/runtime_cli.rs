//! `k1s runtime` next to a running `k1s server` on the same data dir: it sees the kubelet's
//! pods, and a container it runs itself survives a restart of the server (the kubelet's
//! clean-up of orphaned sandboxes leaves sandboxes that are no pod's alone).

use anyhow::{bail, Context, Result};

use crate::harness::{k1s_bin, pod_cluster, Cluster};

const IMAGE: &str = "k1s.local/busybox:latest";

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: Never\n    command: [sleep, '600']\n"
    )
}

/// `k1s runtime <verb> --data-dir <the server's> <rest...>` in the server's network namespace.
fn k1s(c: &Cluster, args: &[&str]) -> Result<String> {
    let data = c.dir.path().join("data").to_string_lossy().into_owned();
    let (verb, rest) = args.split_at(2);
    let mut full: Vec<&str> = verb.to_vec();
    full.extend(["--data-dir", &data]);
    full.extend(rest);
    let o = c.in_netns(&k1s_bin()?, &full, None)?;
    if !o.status.success() {
        bail!(
            "k1s {} failed: {}{}",
            full.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn ready(c: &Cluster, name: &str) -> Result<()> {
    c.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=60s",
    ])
    .map(drop)
}

#[test]
fn runtime_cli_next_to_the_server() -> Result<()> {
    let Some(mut c) = pod_cluster(None, &[])? else {
        return Ok(());
    };
    c.apply(&pod("kubelet-pod"))?;
    ready(&c, "kubelet-pod")?;
    let ps = k1s(&c, &["runtime", "ps"])?;
    assert!(
        ps.lines()
            .any(|l| l.contains(IMAGE) && l.contains("Running") && l.contains(" c ")),
        "the kubelet's container is missing:\n{ps}"
    );
    let sandboxes = k1s(&c, &["runtime", "sandboxes"])?;
    assert!(
        sandboxes
            .lines()
            .any(|l| l.contains("kubelet-pod") && l.contains("default") && l.contains("Ready")),
        "{sandboxes}"
    );

    let cid = k1s(&c, &["runtime", "run", "-d", IMAGE, "sleep", "600"])?
        .trim()
        .to_string();
    c.restart()?;
    // The kubelet removes orphaned sandboxes when its first pod list is in, before it handles
    // later pod events: once a pod created now runs, that clean-up is behind us.
    c.apply(&pod("after-restart"))?;
    ready(&c, "after-restart")?;
    let running = k1s(&c, &["runtime", "ps", "-q"])?;
    assert!(
        running.lines().any(|l| l == cid),
        "the server removed a container it does not own:\n{running}"
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&k1s(&c, &["runtime", "inspect", &cid])?)?;
    let sid = inspect["status"]["sandbox_id"]
        .as_str()
        .context("no sandbox id")?
        .to_string();
    k1s(&c, &["runtime", "rmp", &sid])?;
    let all = k1s(&c, &["runtime", "ps", "-a", "-q"])?;
    assert!(!all.contains(&cid), "{all}");
    Ok(())
}
