//! Volumes through kubectl 1.35 and 1.32: a changed ConfigMap and Secret reach the files of
//! a running pod (atomic `..data` swap; a subPath mount keeps the old file, as upstream).

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";

/// A shell loop that exits at once on SIGTERM.
const IDLE: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

fn start(version: &str) -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(Some(version), &[])
}

fn jsonpath(c: &Cluster, name: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", name, "-o", &format!("jsonpath={path}")])
        .unwrap_or_default()
}

fn sources(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg}}\ndata: {{a: \"{value}\"}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: sec}}\nstringData: {{p: \"s{value}\"}}\n"
    )
}

fn exec_cat(c: &Cluster, pod: &str, path: &str) -> String {
    c.kubectl(&["exec", pod, "--", "cat", path])
        .unwrap_or_default()
}

fn configmap_and_secret_updates_reach_the_pod(c: &Cluster) -> Result<()> {
    c.apply(&sources("1"))?;
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: watcher}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {IDLE:?}]\n    volumeMounts:\n    - {{name: cfg, mountPath: /cfg}}\n    - {{name: sec, mountPath: /sec}}\n    - {{name: cfg, mountPath: /sub/a, subPath: a}}\n    - {{name: all, mountPath: /all}}\n  volumes:\n  - {{name: cfg, configMap: {{name: cfg}}}}\n  - {{name: sec, secret: {{secretName: sec}}}}\n  - name: all\n    projected:\n      sources:\n      - configMap: {{name: cfg, items: [{{key: a, path: cm/a}}]}}\n      - secret: {{name: sec}}\n"
    ))?;
    c.wait_for("watcher Running", Duration::from_secs(60), || {
        Ok(jsonpath(c, "watcher", "{.status.phase}") == "Running")
    })?;
    assert_eq!(exec_cat(c, "watcher", "/cfg/a"), "1");
    assert_eq!(exec_cat(c, "watcher", "/sec/p"), "s1");
    assert_eq!(exec_cat(c, "watcher", "/all/cm/a"), "1");
    assert_eq!(exec_cat(c, "watcher", "/sub/a"), "1");
    // Upstream's layout: the key is a symlink through `..data`.
    let link = c.kubectl(&["exec", "watcher", "--", "readlink", "/cfg/a"])?;
    assert_eq!(link.trim(), "..data/a");
    // API-backed volumes are read-only in the container, as upstream mounts them.
    let denied = c.kubectl_fail(&["exec", "watcher", "--", "touch", "/cfg/new"], None)?;
    assert!(denied.contains("Read-only file system"), "{denied}");
    let t0 = Instant::now();
    c.apply(&sources("2"))?;
    c.wait_for("configMap file updated", Duration::from_secs(60), || {
        Ok(exec_cat(c, "watcher", "/cfg/a") == "2")
    })?;
    let cm_delay = t0.elapsed();
    c.wait_for("secret file updated", Duration::from_secs(60), || {
        Ok(exec_cat(c, "watcher", "/sec/p") == "s2")
    })?;
    c.wait_for("projected files updated", Duration::from_secs(60), || {
        Ok(exec_cat(c, "watcher", "/all/cm/a") == "2" && exec_cat(c, "watcher", "/all/p") == "s2")
    })?;
    eprintln!(
        "configMap update reached the pod after {} ms, secret after {} ms",
        cm_delay.as_millis(),
        t0.elapsed().as_millis()
    );
    // subPath mounts are not updated, as upstream.
    assert_eq!(exec_cat(c, "watcher", "/sub/a"), "1");
    c.kubectl(&["delete", "pod", "watcher", "--timeout=60s"])?;
    Ok(())
}

fn volumes(version: &str) -> Result<()> {
    let Some(c) = start(version)? else {
        return Ok(());
    };
    configmap_and_secret_updates_reach_the_pod(&c)
}

#[test]
fn volumes_kubectl_1_35() -> Result<()> {
    volumes("1.35")
}

#[test]
fn volumes_kubectl_1_32() -> Result<()> {
    volumes("1.32")
}
