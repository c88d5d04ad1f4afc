//! PersistentVolumeClaims with the built-in local-path provisioner, through kubectl 1.35 and
//! 1.32: the default StorageClass, a claim without a class bound on its first consumer, data
//! kept across pods, a pod naming a missing claim held Pending with the scheduler's message
//! until the claim appears, pvc-protection while a pod uses the claim, and the volume and its
//! directory removed with the claim (reclaimPolicy Delete).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";

fn start(version: &str) -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(Some(version), &[])
}

fn get(c: &Cluster, what: &str, path: &str) -> String {
    c.kubectl(&["get", what, "-o", &format!("jsonpath={path}")])
        .unwrap_or_default()
}

fn claim(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 64Mi}}}}\n"
    )
}

fn pod_with_claim(name: &str, claim: &str, restart: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {script:?}]\n    volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes:\n  - name: data\n    persistentVolumeClaim: {{claimName: {claim}}}\n"
    )
}

fn phase(c: &Cluster, pod: &str) -> String {
    get(c, &format!("pod/{pod}"), "{.status.phase}")
}

fn default_class(c: &Cluster) -> Result<()> {
    let table = c.kubectl(&["get", "sc"])?;
    let row = table
        .lines()
        .find(|l| l.starts_with("local-path"))
        .unwrap_or_default();
    for want in [
        "local-path (default)",
        "k1s.io/local-path",
        "Delete",
        "WaitForFirstConsumer",
    ] {
        assert!(row.contains(want), "{want} missing from:\n{table}");
    }
    Ok(())
}

/// A claim is bound when its first pod is scheduled; the data outlives the pod.
fn claim_bound_and_data_kept(c: &Cluster) -> Result<PathBuf> {
    // The provisioner runs with the kubelet: a claim it first sees already given a node
    // (the writer below scheduled) never waited, and has no WaitForFirstConsumer event.
    c.wait_node_ready()?;
    c.apply(&claim("data"))?;
    assert_eq!(get(c, "pvc/data", "{.spec.storageClassName}"), "local-path");
    assert_eq!(get(c, "pvc/data", "{.status.phase}"), "Pending");
    assert!(get(c, "pvc/data", "{.metadata.finalizers}").contains("kubernetes.io/pvc-protection"));
    c.apply(&pod_with_claim(
        "writer",
        "data",
        "Never",
        "echo hello > /data/f",
    ))?;
    c.wait_for("writer Succeeded", Duration::from_secs(60), || {
        Ok(phase(c, "writer") == "Succeeded")
    })?;
    assert_eq!(get(c, "pvc/data", "{.status.phase}"), "Bound");
    let uid = get(c, "pvc/data", "{.metadata.uid}");
    let pv = format!("pvc-{uid}");
    assert_eq!(get(c, "pvc/data", "{.spec.volumeName}"), pv);
    let ann = get(c, "pvc/data", "{.metadata.annotations}");
    assert!(
        ann.contains("pv.kubernetes.io/bind-completed")
            && ann.contains("volume.kubernetes.io/selected-node"),
        "{ann}"
    );
    assert_eq!(get(c, &format!("pv/{pv}"), "{.status.phase}"), "Bound");
    assert_eq!(get(c, &format!("pv/{pv}"), "{.spec.claimRef.name}"), "data");
    assert_eq!(
        get(c, &format!("pv/{pv}"), "{.spec.capacity.storage}"),
        "64Mi"
    );
    let dir = c.dir.path().join("data").join("storage").join(&pv);
    assert_eq!(std::fs::read_to_string(dir.join("f"))?, "hello\n");
    let table = c.kubectl(&["get", "pvc,pv,sc"])?;
    for want in [
        "persistentvolumeclaim/data",
        "Bound",
        "RWO",
        "64Mi",
        "default/data",
        "local-path (default)",
    ] {
        assert!(table.contains(want), "{want} missing from:\n{table}");
    }
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=data",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ])?;
    for want in [
        "WaitForFirstConsumer: waiting for first consumer to be created before binding",
        "ProvisioningSucceeded: Successfully provisioned volume pvc-",
    ] {
        assert!(events.contains(want), "{want} missing from:\n{events}");
    }
    c.kubectl(&["delete", "pod", "writer", "--timeout=60s"])?;
    c.apply(&pod_with_claim("reader", "data", "Never", "cat /data/f"))?;
    c.wait_for("reader Succeeded", Duration::from_secs(60), || {
        Ok(phase(c, "reader") == "Succeeded")
    })?;
    assert_eq!(c.kubectl(&["logs", "reader"])?, "hello\n");
    c.kubectl(&["delete", "pod", "reader", "--timeout=60s"])?;
    Ok(dir)
}

/// A pod naming a claim that does not exist waits Unschedulable and runs once it appears.
fn missing_claim_then_created(c: &Cluster) -> Result<()> {
    c.apply(&pod_with_claim(
        "early",
        "later",
        "Always",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ))?;
    let want = "0/1 nodes are available: persistentvolumeclaim \"later\" not found.";
    c.wait_for("early Unschedulable", Duration::from_secs(60), || {
        Ok(get(
            c,
            "pod/early",
            "{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        ) == want)
    })?;
    assert_eq!(phase(c, "early"), "Pending");
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=early",
        "-o",
        "jsonpath={.items[*].reason}",
    ])?;
    assert!(events.contains("FailedScheduling"), "{events}");
    c.apply(&claim("later"))?;
    c.wait_for("early Running", Duration::from_secs(60), || {
        Ok(phase(c, "early") == "Running")
    })?;
    assert_eq!(get(c, "pvc/later", "{.status.phase}"), "Bound");
    Ok(())
}

/// A claim in use stays Terminating; once its pod is gone the claim, its volume and the
/// volume's directory are removed.
fn claim_protected_then_deleted(c: &Cluster, dir: &std::path::Path) -> Result<()> {
    let pv = get(c, "pvc/later", "{.spec.volumeName}");
    let later_dir = c.dir.path().join("data").join("storage").join(&pv);
    assert!(later_dir.is_dir());
    c.kubectl(&["delete", "pvc", "later", "--wait=false"])?;
    c.wait_for("later Terminating", Duration::from_secs(30), || {
        Ok(c.kubectl(&["get", "pvc", "later"])?.contains("Terminating"))
    })?;
    assert_eq!(phase(c, "early"), "Running");
    assert!(later_dir.is_dir());
    c.kubectl(&["delete", "pod", "early", "--timeout=60s"])?;
    c.kubectl(&["delete", "pvc", "data", "--timeout=60s"])?;
    c.wait_for("volumes deleted", Duration::from_secs(60), || {
        let pvs = c.kubectl(&["get", "pv", "-o", "name"])?;
        let claims = c.kubectl(&["get", "pvc", "-o", "name"])?;
        Ok(pvs.trim().is_empty() && claims.trim().is_empty())
    })?;
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(!later_dir.exists(), "{} still exists", later_dir.display());
    Ok(())
}

fn storage(version: &str) -> Result<()> {
    let Some(c) = start(version)? else {
        return Ok(());
    };
    default_class(&c)?;
    let dir = claim_bound_and_data_kept(&c)?;
    missing_claim_then_created(&c)?;
    claim_protected_then_deleted(&c, &dir)
}

#[test]
fn storage_kubectl_1_35() -> Result<()> {
    storage("1.35")
}

#[test]
fn storage_kubectl_1_32() -> Result<()> {
    storage("1.32")
}
