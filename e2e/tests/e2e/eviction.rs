//! Node-pressure eviction through kubectl, on a data directory that is a small tmpfs of its
//! own: a BestEffort pod filling its writable layer crosses `nodefs.available`, the node reports
//! DiskPressure with upstream's reason and gets the `node.kubernetes.io/disk-pressure`
//! NoSchedule taint, a new pod stays Pending with a FailedScheduling event naming the taint,
//! one bound by hand is rejected by the kubelet (Failed / Evicted, "The node had condition"),
//! and the filler is evicted first (Failed / Evicted, DisruptionTarget, `Evicted` event)
//! while a Guaranteed pod keeps running. Once the filler is deleted, the condition turns
//! False after the transition period, the taint goes and the pending pod is scheduled.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";
const IDLE: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

fn pod(name: &str, script: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {script:?}]\n{extra}---\n"
    )
}

fn get(c: &Cluster, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let jp = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &jp]);
    c.kubectl(&args).unwrap_or_default()
}

fn disk_pressure(c: &Cluster) -> String {
    get(
        c,
        &["nodes"],
        "{.items[0].status.conditions[?(@.type==\"DiskPressure\")].status} {.items[0].status.conditions[?(@.type==\"DiskPressure\")].reason}",
    )
}

fn taints(c: &Cluster) -> String {
    get(
        c,
        &["nodes"],
        "{.items[0].spec.taints[*].key}:{.items[0].spec.taints[*].effect}",
    )
}

fn events(c: &Cluster, name: &str) -> String {
    c.events_about(
        name,
        "jsonpath={range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
    )
    .unwrap_or_default()
}

#[test]
fn disk_pressure_evicts_besteffort_first() -> Result<()> {
    let args = [
        "--eviction-hard=nodefs.available<96Mi",
        "--eviction-pressure-transition-period=5s",
    ];
    let Some(c) = crate::harness::pod_cluster_on_tmpfs(&args, "256m")? else {
        return Ok(());
    };
    c.wait_for("node without pressure", Duration::from_secs(30), || {
        Ok(disk_pressure(&c) == "False KubeletHasNoDiskPressure")
    })?;
    // A Guaranteed pod that uses (almost) no disk, then a BestEffort one that fills 160Mi.
    c.apply(&pod(
        "steady",
        IDLE,
        "    resources: {limits: {cpu: 100m, memory: 32Mi}}\n",
    ))?;
    c.wait_for("steady Running", Duration::from_secs(60), || {
        Ok(get(&c, &["pod", "steady"], "{.status.phase}") == "Running")
    })?;
    // In its writable layer: the container's own use, which the eviction message names.
    let fill = format!("dd if=/dev/zero of=/fill bs=1M count=160 && echo filled; {IDLE}");
    c.apply(&pod("filler", &fill, ""))?;
    c.wait_for("filler filled", Duration::from_secs(60), || {
        Ok(c.kubectl(&["logs", "filler"])
            .is_ok_and(|l| l.contains("filled")))
    })?;
    let filled = Instant::now();
    c.wait_for("DiskPressure", Duration::from_secs(30), || {
        Ok(disk_pressure(&c) == "True KubeletHasDiskPressure")
    })?;
    let detected = filled.elapsed();
    c.wait_for("disk-pressure taint", Duration::from_secs(10), || {
        Ok(taints(&c).contains("node.kubernetes.io/disk-pressure"))
    })?;
    assert!(taints(&c).contains("NoSchedule"), "{}", taints(&c));
    c.apply(&pod("late", IDLE, ""))?;
    c.wait_for("FailedScheduling for the taint", Duration::from_secs(30), || {
        Ok(events(&c, "late").contains(
            "Warning FailedScheduling: 0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }",
        ))
    })?;
    assert_eq!(get(&c, &["pod", "late"], "{.status.phase}"), "Pending");
    // Bound by hand past the scheduler, a new pod is rejected by the kubelet's admission.
    let node = get(&c, &["nodes"], "{.items[0].metadata.name}");
    c.apply(&pod("bound", IDLE, "").replace("spec:\n", &format!("spec:\n  nodeName: {node}\n")))?;
    c.wait_for("bound rejected", Duration::from_secs(30), || {
        Ok(get(&c, &["pod", "bound"], "{.status.phase} {.status.reason}") == "Failed Evicted")
    })?;
    assert_eq!(
        get(&c, &["pod", "bound"], "{.status.message}"),
        "The node had condition: [DiskPressure]. "
    );
    c.wait_for("filler Evicted", Duration::from_secs(30), || {
        Ok(get(&c, &["pod", "filler"], "{.status.phase} {.status.reason}") == "Failed Evicted")
    })?;
    let evicted = filled.elapsed();
    // One pod per cycle, the largest user above its request first: steady still runs.
    assert_eq!(get(&c, &["pod", "steady"], "{.status.phase}"), "Running");
    let msg = get(&c, &["pod", "filler"], "{.status.message}");
    assert!(
        msg.starts_with("The node was low on resource: ephemeral-storage. Threshold quantity: 96Mi, available: "),
        "{msg}"
    );
    assert!(
        msg.contains("Container c was using ")
            && msg.contains(", request is 0, has larger consumption of ephemeral-storage."),
        "{msg}"
    );
    let dt = get(
        &c,
        &["pod", "filler"],
        "{.status.conditions[?(@.type==\"DisruptionTarget\")].status} {.status.conditions[?(@.type==\"DisruptionTarget\")].reason}",
    );
    assert_eq!(dt, "True TerminationByKubelet");
    let ev = events(&c, "filler");
    assert!(ev.contains(&format!("Warning Evicted: {msg}")), "{ev}");
    // Deleting the evicted pod frees its writable layer: the pressure ends after 5 s without
    // crossing, the taint goes, and the pending pod is scheduled.
    c.kubectl(&["delete", "pod", "filler", "--timeout=60s"])?;
    let freed = Instant::now();
    c.wait_for("no DiskPressure", Duration::from_secs(40), || {
        Ok(disk_pressure(&c) == "False KubeletHasNoDiskPressure")
    })?;
    let cleared = freed.elapsed();
    assert!(
        cleared >= Duration::from_secs(5),
        "cleared after {cleared:?}"
    );
    c.wait_for("taint removed", Duration::from_secs(10), || {
        Ok(!taints(&c).contains("disk-pressure"))
    })?;
    c.wait_for("late Running", Duration::from_secs(60), || {
        Ok(get(&c, &["pod", "late"], "{.status.phase}") == "Running")
    })?;
    assert_eq!(get(&c, &["pod", "steady"], "{.status.phase}"), "Running");
    let node_events = c.kubectl(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        "involvedObject.kind=Node",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ])?;
    assert!(
        node_events.contains("EvictionThresholdMet: Attempting to reclaim ephemeral-storage"),
        "{node_events}"
    );
    eprintln!(
        "eviction timings: DiskPressure {detected:?} after the disk filled, evicted after {evicted:?}, \
         DiskPressure False {cleared:?} after deletion (transition period 5s)"
    );
    Ok(())
}

/// A memory threshold the node always crosses: MemoryPressure with upstream's reason, the
/// memory-pressure taint, BestEffort pods rejected at admission, and a Burstable pod that
/// tolerates the taint evicted with upstream's memory message; the kubelet counts it in
/// `kubelet_evictions`.
#[test]
fn memory_pressure_evicts_and_counts() -> Result<()> {
    let Some(c) = crate::harness::pod_cluster(None, &["--eviction-hard=memory.available<1Ei"])?
    else {
        return Ok(());
    };
    let cond = "{.items[0].status.conditions[?(@.type==\"MemoryPressure\")].status} {.items[0].status.conditions[?(@.type==\"MemoryPressure\")].reason}";
    c.wait_for("MemoryPressure", Duration::from_secs(30), || {
        Ok(get(&c, &["nodes"], cond) == "True KubeletHasInsufficientMemory")
    })?;
    c.wait_for("memory-pressure taint", Duration::from_secs(10), || {
        Ok(taints(&c).contains("node.kubernetes.io/memory-pressure"))
    })?;
    let tolerate = "  tolerations: [{key: node.kubernetes.io/memory-pressure, operator: Exists, effect: NoSchedule}]\n";
    // A Burstable pod that tolerates the taint is scheduled and admitted, then evicted.
    c.apply(&pod(
        "hungry",
        IDLE,
        &format!("    resources: {{requests: {{memory: 1Mi}}}}\n{tolerate}"),
    ))?;
    c.wait_for("hungry Evicted", Duration::from_secs(40), || {
        Ok(get(&c, &["pod", "hungry"], "{.status.phase} {.status.reason}") == "Failed Evicted")
    })?;
    let msg = get(&c, &["pod", "hungry"], "{.status.message}");
    assert!(
        msg.starts_with(
            "The node was low on resource: memory. Threshold quantity: 1Ei, available: "
        ),
        "{msg}"
    );
    // An untolerating BestEffort pod bound by hand is turned away before it runs.
    let node = get(&c, &["nodes"], "{.items[0].metadata.name}");
    c.apply(&pod("bound", IDLE, "").replace("spec:\n", &format!("spec:\n  nodeName: {node}\n")))?;
    c.wait_for("bound rejected", Duration::from_secs(30), || {
        Ok(
            get(&c, &["pod", "bound"], "{.status.phase} {.status.message}")
                == "Failed The node had condition: [MemoryPressure]. ",
        )
    })?;
    let text = c.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/metrics"),
    ])?;
    assert!(
        text.lines()
            .any(|l| l.starts_with("kubelet_evictions{eviction_signal=\"memory.available\"} ")),
        "{text}"
    );
    Ok(())
}
