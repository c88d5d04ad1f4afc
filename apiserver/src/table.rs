//! Server-side printing: `meta.k8s.io/v1` Table answers with upstream's columns per kind.
//! kubectl prints these cells verbatim and adds NAMESPACE/LABELS from the row objects.

use serde_json::{json, Value};

use crate::resources::ResourceType;

/// Human age like upstream's `duration.HumanDuration`: 45s, 5m, 3h12m, 2d, 3y.
pub fn human_age(ts: Option<&str>) -> String {
    let Some(ts) = ts else {
        return "<unknown>".into();
    };
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    human_duration(secs)
}

pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "0s".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let dd = d % 365;
        if dd == 0 {
            format!("{}y", d / 365)
        } else {
            format!("{}y{dd}d", d / 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn or_none(v: String) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v
    }
}

fn age(o: &Value) -> Value {
    json!(human_age(
        o.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
    ))
}

fn num(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn selector_text(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut parts = Vec::new();
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            parts.push(format!("{k}={}", s(Some(v))));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let k = s(e.get("key"));
            let vals: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| s(Some(v))).collect())
                .unwrap_or_default();
            match s(e.get("operator")).as_str() {
                "In" => parts.push(format!("{k} in ({})", vals.join(","))),
                "NotIn" => parts.push(format!("{k} notin ({})", vals.join(","))),
                "Exists" => parts.push(k),
                "DoesNotExist" => parts.push(format!("!{k}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

fn map_selector(sel: Option<&Value>) -> String {
    sel.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(Some(v))))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn containers_images(o: &Value, p: &str) -> (String, String) {
    let cs = o
        .pointer(p)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = cs.iter().map(|c| s(c.get("name"))).collect();
    let imgs: Vec<String> = cs.iter().map(|c| s(c.get("image"))).collect();
    (names.join(","), imgs.join(","))
}

/// Pod STATUS column, following upstream's printer: reason, init progress, waiting/terminated
/// reasons, Terminating.
pub fn pod_status(o: &Value) -> String {
    let mut reason = s(o.pointer("/status/phase"));
    if let Some(r) = o.pointer("/status/reason").and_then(Value::as_str) {
        reason = r.to_string();
    }
    let inits = o
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array);
    let n_init = o
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut initializing = false;
    if let Some(inits) = inits {
        for (i, c) in inits.iter().enumerate() {
            if let Some(t) = c.pointer("/state/terminated") {
                if num(t, "/exitCode") == 0 {
                    continue;
                }
                reason = match t.get("reason").and_then(Value::as_str) {
                    Some(r) if !r.is_empty() => format!("Init:{r}"),
                    _ => match t.get("signal").and_then(Value::as_i64) {
                        Some(sig) if sig != 0 => format!("Init:Signal:{sig}"),
                        _ => format!("Init:ExitCode:{}", num(t, "/exitCode")),
                    },
                };
                initializing = true;
            } else if let Some(r) = c
                .pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty() && *r != "PodInitializing")
            {
                reason = format!("Init:{r}");
                initializing = true;
            } else if c.get("started") == Some(&Value::Bool(true))
                && c.pointer("/restartPolicy").is_none()
            {
                // restartable init containers (sidecars) that are running don't block
                continue;
            } else {
                reason = format!("Init:{i}/{n_init}");
                initializing = true;
            }
            break;
        }
    }
    if !initializing {
        let mut has_running = false;
        if let Some(cs) = o
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
        {
            for c in cs.iter().rev() {
                if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
                    if !r.is_empty() {
                        reason = r.to_string();
                    }
                } else if let Some(t) = c.pointer("/state/terminated") {
                    reason = match t.get("reason").and_then(Value::as_str) {
                        Some(r) if !r.is_empty() => r.to_string(),
                        _ => match t.get("signal").and_then(Value::as_i64) {
                            Some(sig) if sig != 0 => format!("Signal:{sig}"),
                            _ => format!("ExitCode:{}", num(t, "/exitCode")),
                        },
                    };
                } else if c.pointer("/state/running").is_some()
                    && c.get("ready") == Some(&Value::Bool(true))
                {
                    has_running = true;
                }
            }
            if reason == "Completed" && has_running {
                let ready = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| s(c.get("type")) == "Ready" && s(c.get("status")) == "True")
                    });
                reason = if ready {
                    "Running".into()
                } else {
                    "NotReady".into()
                };
            }
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        if s(o.pointer("/status/reason")) == "NodeLost" {
            reason = "Unknown".into();
        } else {
            reason = "Terminating".into();
        }
    }
    reason
}

fn pod_row(o: &Value) -> Vec<Value> {
    let total = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready") == Some(&Value::Bool(true)))
        .count();
    let restarts: i64 = statuses.iter().map(|c| num(c, "/restartCount")).sum();
    let mut restarts_txt = restarts.to_string();
    if restarts > 0 {
        let last = statuses
            .iter()
            .filter_map(|c| {
                c.pointer("/lastState/terminated/finishedAt")
                    .and_then(Value::as_str)
            })
            .max();
        if let Some(l) = last {
            restarts_txt = format!("{restarts} ({} ago)", human_age(Some(l)));
        }
    }
    let gates = o
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    vec![
        json!(s(o.pointer("/metadata/name"))),
        json!(format!("{ready}/{total}")),
        json!(pod_status(o)),
        json!(restarts_txt),
        age(o),
        json!(or_none(s(o.pointer("/status/podIP")))),
        json!(or_none(s(o.pointer("/spec/nodeName")))),
        json!(or_none(s(o.pointer("/status/nominatedNodeName")))),
        json!(if gates == 0 {
            "<none>".to_string()
        } else {
            format!("0/{gates}")
        }),
    ]
}

fn service_ports(o: &Value) -> String {
    let ports = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ports.is_empty() {
        return "<none>".into();
    }
    ports
        .iter()
        .map(|p| {
            let port = num(p, "/port");
            let proto = s(p.get("protocol"));
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) if np != 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn external_ip(o: &Value) -> String {
    let ty = s(o.pointer("/spec/type"));
    let ext: Vec<String> = o
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| s(Some(v))).collect())
        .unwrap_or_default();
    match ty.as_str() {
        "ExternalName" => s(o.pointer("/spec/externalName")),
        "LoadBalancer" => {
            let mut ips: Vec<String> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            let ip = s(i.get("ip"));
                            if ip.is_empty() {
                                s(i.get("hostname"))
                            } else {
                                ip
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            ips.extend(ext);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ => {
            if ext.is_empty() {
                "<none>".into()
            } else {
                ext.join(",")
            }
        }
    }
}

fn node_row(o: &Value) -> Vec<Value> {
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| s(c.get("type")) == "Ready"))
        .map(|c| {
            if s(c.get("status")) == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown")
        .to_string();
    let mut status = ready;
    if o.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push_str(",SchedulingDisabled");
    }
    let roles: Vec<String> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.keys()
                .filter_map(|k| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let addr = |t: &str| {
        o.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| s(x.get("type")) == t))
            .map(|x| s(x.get("address")))
            .unwrap_or_else(|| "<none>".into())
    };
    vec![
        json!(s(o.pointer("/metadata/name"))),
        json!(status),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        age(o),
        json!(s(o.pointer("/status/nodeInfo/kubeletVersion"))),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(s(o.pointer("/status/nodeInfo/osImage"))),
        json!(s(o.pointer("/status/nodeInfo/kernelVersion"))),
        json!(s(o.pointer("/status/nodeInfo/containerRuntimeVersion"))),
    ]
}

fn job_row(o: &Value) -> Vec<Value> {
    let completions = o.pointer("/spec/completions").and_then(Value::as_i64);
    let succeeded = num(o, "/status/succeeded");
    let conds = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = |t: &str| {
        conds
            .iter()
            .any(|c| s(c.get("type")) == t && s(c.get("status")) == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else {
        "Running"
    };
    let comp = match completions {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let p = o
                .pointer("/spec/parallelism")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if p > 1 {
                format!("{succeeded}/1 of {p}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = o.pointer("/status/startTime").and_then(Value::as_str);
    let end = o.pointer("/status/completionTime").and_then(Value::as_str);
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.with_timezone(&chrono::Utc))
    };
    let duration = match (start.and_then(parse), end.and_then(parse)) {
        (Some(a), Some(b)) => human_duration((b - a).num_seconds()),
        (Some(a), None) => human_duration((chrono::Utc::now() - a).num_seconds()),
        _ => String::new(),
    };
    let (cs, imgs) = containers_images(o, "/spec/template/spec/containers");
    vec![
        json!(s(o.pointer("/metadata/name"))),
        json!(status),
        json!(comp),
        json!(duration),
        age(o),
        json!(cs),
        json!(imgs),
        json!(selector_text(o.pointer("/spec/selector"))),
    ]
}

fn event_row(o: &Value) -> Vec<Value> {
    // events.k8s.io/v1 rows come in that version's field names.
    let core;
    let o = if o.get("regarding").is_some() || o.get("note").is_some() {
        core = crate::registry::events::to_core(o.clone());
        &core
    } else {
        o
    };
    let last = o
        .get("lastTimestamp")
        .and_then(Value::as_str)
        .or_else(|| o.get("eventTime").and_then(Value::as_str))
        .or_else(|| {
            o.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
        });
    let obj = format!(
        "{}/{}",
        s(o.pointer("/involvedObject/kind")).to_lowercase(),
        s(o.pointer("/involvedObject/name"))
    );
    vec![
        json!(human_age(last)),
        json!(s(o.get("type"))),
        json!(s(o.get("reason"))),
        json!(obj),
        json!(s(o.get("message")).trim()),
    ]
}

fn hpa_row(o: &Value) -> Vec<Value> {
    let r = o.pointer("/spec/scaleTargetRef");
    let reference = format!(
        "{}/{}",
        s(r.and_then(|r| r.get("kind"))),
        s(r.and_then(|r| r.get("name")))
    );
    let targets = match o
        .pointer("/spec/targetCPUUtilizationPercentage")
        .and_then(Value::as_i64)
    {
        Some(t) => {
            let cur = o
                .pointer("/status/currentCPUUtilizationPercentage")
                .and_then(Value::as_i64)
                .map(|c| format!("{c}%"))
                .unwrap_or_else(|| "<unknown>".into());
            format!("cpu: {cur}/{t}%")
        }
        None => {
            let metrics = o
                .pointer("/spec/metrics")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if metrics.is_empty() {
                "<none>".into()
            } else {
                metrics
                    .iter()
                    .map(|m| {
                        let name = s(m.pointer("/resource/name"));
                        match m
                            .pointer("/resource/target/averageUtilization")
                            .and_then(Value::as_i64)
                        {
                            Some(t) => format!("{name}: <unknown>/{t}%"),
                            None => format!("{name}: <unknown>"),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
    };
    vec![
        json!(s(o.pointer("/metadata/name"))),
        json!(reference),
        json!(targets),
        json!(o
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)),
        json!(num(o, "/spec/maxReplicas")),
        json!(num(o, "/status/currentReplicas")),
        age(o),
    ]
}

/// Column definitions and cells for one object of `rt`.
fn columns(rt: &ResourceType) -> Vec<(&'static str, &'static str, u8)> {
    let c = |n, p| (n, "string", p);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => vec![
            c("Name", 0),
            c("Ready", 0),
            c("Status", 0),
            c("Restarts", 0),
            c("Age", 0),
            c("IP", 1),
            c("Node", 1),
            c("Nominated Node", 1),
            c("Readiness Gates", 1),
        ],
        ("apps", "Deployment") => vec![
            c("Name", 0),
            c("Ready", 0),
            c("Up-to-date", 0),
            c("Available", 0),
            c("Age", 0),
            c("Containers", 1),
            c("Images", 1),
            c("Selector", 1),
        ],
        ("apps", "ReplicaSet") | ("", "ReplicationController") => vec![
            c("Name", 0),
            c("Desired", 0),
            c("Current", 0),
            c("Ready", 0),
            c("Age", 0),
            c("Containers", 1),
            c("Images", 1),
            c("Selector", 1),
        ],
        ("apps", "StatefulSet") => vec![
            c("Name", 0),
            c("Ready", 0),
            c("Age", 0),
            c("Containers", 1),
            c("Images", 1),
        ],
        ("apps", "DaemonSet") => vec![
            c("Name", 0),
            c("Desired", 0),
            c("Current", 0),
            c("Ready", 0),
            c("Up-to-date", 0),
            c("Available", 0),
            c("Node Selector", 0),
            c("Age", 0),
            c("Containers", 1),
            c("Images", 1),
            c("Selector", 1),
        ],
        ("", "Service") => vec![
            c("Name", 0),
            c("Type", 0),
            c("Cluster-IP", 0),
            c("External-IP", 0),
            c("Port(s)", 0),
            c("Age", 0),
            c("Selector", 1),
        ],
        ("", "ConfigMap") => vec![c("Name", 0), c("Data", 0), c("Age", 0)],
        ("", "Secret") => vec![c("Name", 0), c("Type", 0), c("Data", 0), c("Age", 0)],
        ("", "Namespace") => vec![c("Name", 0), c("Status", 0), c("Age", 0)],
        ("", "Node") => vec![
            c("Name", 0),
            c("Status", 0),
            c("Roles", 0),
            c("Age", 0),
            c("Version", 0),
            c("Internal-IP", 1),
            c("External-IP", 1),
            c("OS-Image", 1),
            c("Kernel-Version", 1),
            c("Container-Runtime", 1),
        ],
        ("batch", "Job") => vec![
            c("Name", 0),
            c("Status", 0),
            c("Completions", 0),
            c("Duration", 0),
            c("Age", 0),
            c("Containers", 1),
            c("Images", 1),
            c("Selector", 1),
        ],
        ("batch", "CronJob") => vec![
            c("Name", 0),
            c("Schedule", 0),
            c("Timezone", 0),
            c("Suspend", 0),
            c("Active", 0),
            c("Last Schedule", 0),
            c("Age", 0),
            c("Containers", 1),
            c("Images", 1),
            c("Selector", 1),
        ],
        ("autoscaling", "HorizontalPodAutoscaler") => vec![
            c("Name", 0),
            c("Reference", 0),
            c("Targets", 0),
            c("MinPods", 0),
            c("MaxPods", 0),
            c("Replicas", 0),
            c("Age", 0),
        ],
        ("", "Event") => vec![
            c("Last Seen", 0),
            c("Type", 0),
            c("Reason", 0),
            c("Object", 0),
            c("Message", 0),
        ],
        ("", "ServiceAccount") => vec![c("Name", 0), c("Secrets", 0), c("Age", 0)],
        ("", "Endpoints") => vec![c("Name", 0), c("Endpoints", 0), c("Age", 0)],
        ("", "PersistentVolumeClaim") => vec![
            c("Name", 0),
            c("Status", 0),
            c("Volume", 0),
            c("Capacity", 0),
            c("Access Modes", 0),
            c("StorageClass", 0),
            c("VolumeAttributesClass", 0),
            c("Age", 0),
            c("VolumeMode", 1),
        ],
        ("", "PersistentVolume") => vec![
            c("Name", 0),
            c("Capacity", 0),
            c("Access Modes", 0),
            c("Reclaim Policy", 0),
            c("Status", 0),
            c("Claim", 0),
            c("StorageClass", 0),
            c("VolumeAttributesClass", 0),
            c("Reason", 0),
            c("Age", 0),
            c("VolumeMode", 1),
        ],
        ("coordination.k8s.io", "Lease") => vec![c("Name", 0), c("Holder", 0), c("Age", 0)],
        ("rbac.authorization.k8s.io", "RoleBinding")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => vec![
            c("Name", 0),
            c("Role", 0),
            c("Age", 0),
            c("Users", 1),
            c("Groups", 1),
            c("ServiceAccounts", 1),
        ],
        ("rbac.authorization.k8s.io", "Role") | ("rbac.authorization.k8s.io", "ClusterRole") => {
            vec![c("Name", 0), c("Created At", 0)]
        }
        ("storage.k8s.io", "StorageClass") => vec![
            c("Name", 0),
            c("Provisioner", 0),
            c("ReclaimPolicy", 0),
            c("VolumeBindingMode", 0),
            c("AllowVolumeExpansion", 0),
            c("Age", 0),
        ],
        _ => vec![c("Name", 0), c("Age", 0)],
    }
}

/// A volume's or claim's phase, or `Terminating` once it is being deleted (as upstream prints).
fn phase_or_terminating(o: &Value) -> String {
    if o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return "Terminating".into();
    }
    s(o.pointer("/status/phase"))
}

/// Access modes as kubectl abbreviates them: `RWO,ROX`.
fn access_modes(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| match s(Some(m)).as_str() {
                    "ReadWriteOnce" => "RWO".to_string(),
                    "ReadOnlyMany" => "ROX".into(),
                    "ReadWriteMany" => "RWX".into(),
                    "ReadWriteOncePod" => "RWOP".into(),
                    x => x.into(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let name = json!(s(o.pointer("/metadata/name")));
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => pod_row(o),
        ("apps", "Deployment") => {
            let (cs, imgs) = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    num(o, "/status/readyReplicas"),
                    num(o, "/spec/replicas")
                )),
                json!(num(o, "/status/updatedReplicas")),
                json!(num(o, "/status/availableReplicas")),
                age(o),
                json!(cs),
                json!(imgs),
                json!(selector_text(o.pointer("/spec/selector"))),
            ]
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            let (cs, imgs) = containers_images(o, "/spec/template/spec/containers");
            let sel = if rt.kind == "ReplicationController" {
                map_selector(o.pointer("/spec/selector"))
            } else {
                selector_text(o.pointer("/spec/selector"))
            };
            vec![
                name,
                json!(num(o, "/spec/replicas")),
                json!(num(o, "/status/replicas")),
                json!(num(o, "/status/readyReplicas")),
                age(o),
                json!(cs),
                json!(imgs),
                json!(sel),
            ]
        }
        ("apps", "StatefulSet") => {
            let (cs, imgs) = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    num(o, "/status/readyReplicas"),
                    num(o, "/spec/replicas")
                )),
                age(o),
                json!(cs),
                json!(imgs),
            ]
        }
        ("apps", "DaemonSet") => {
            let (cs, imgs) = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(num(o, "/status/desiredNumberScheduled")),
                json!(num(o, "/status/currentNumberScheduled")),
                json!(num(o, "/status/numberReady")),
                json!(num(o, "/status/updatedNumberScheduled")),
                json!(num(o, "/status/numberAvailable")),
                json!(or_none(map_selector(
                    o.pointer("/spec/template/spec/nodeSelector")
                ))),
                age(o),
                json!(cs),
                json!(imgs),
                json!(selector_text(o.pointer("/spec/selector"))),
            ]
        }
        ("", "Service") => {
            let cip = s(o.pointer("/spec/clusterIP"));
            vec![
                name,
                json!(s(o.pointer("/spec/type"))),
                json!(or_none(cip)),
                json!(external_ip(o)),
                json!(service_ports(o)),
                age(o),
                json!(or_none(map_selector(o.pointer("/spec/selector")))),
            ]
        }
        ("", "ConfigMap") => {
            let n = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + o.get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), age(o)]
        }
        ("", "Secret") => {
            let n = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, json!(s(o.get("type"))), json!(n), age(o)]
        }
        ("", "Namespace") => vec![name, json!(s(o.pointer("/status/phase"))), age(o)],
        ("", "Node") => node_row(o),
        ("batch", "Job") => job_row(o),
        ("batch", "CronJob") => {
            let (cs, imgs) =
                containers_images(o, "/spec/jobTemplate/spec/template/spec/containers");
            let active = o
                .pointer("/status/active")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let last = o
                .pointer("/status/lastScheduleTime")
                .and_then(Value::as_str)
                .map(|t| human_age(Some(t)))
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(s(o.pointer("/spec/schedule"))),
                json!(or_none(s(o.pointer("/spec/timeZone")))),
                json!(if o.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
                    "True"
                } else {
                    "False"
                }),
                json!(active),
                json!(last),
                age(o),
                json!(cs),
                json!(imgs),
                json!(selector_text(o.pointer("/spec/selector"))),
            ]
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa_row(o),
        ("", "Event") => event_row(o),
        ("", "ServiceAccount") => vec![
            name,
            json!(o
                .get("secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)),
            age(o),
        ],
        ("", "Endpoints") => {
            let mut eps = Vec::new();
            for sub in o
                .get("subsets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let ports: Vec<i64> = sub
                    .get("ports")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|p| num(p, "/port")).collect())
                    .unwrap_or_default();
                for a in sub
                    .get("addresses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let ip = s(a.get("ip"));
                    if ports.is_empty() {
                        eps.push(ip.clone());
                    }
                    for p in &ports {
                        eps.push(format!("{ip}:{p}"));
                    }
                }
            }
            vec![name, json!(or_none(eps.join(","))), age(o)]
        }
        ("", "PersistentVolume") => {
            let claim = match (
                s(o.pointer("/spec/claimRef/namespace")),
                s(o.pointer("/spec/claimRef/name")),
            ) {
                (ns, n) if !n.is_empty() => format!("{ns}/{n}"),
                _ => String::new(),
            };
            vec![
                name,
                json!(s(o.pointer("/spec/capacity/storage"))),
                json!(access_modes(o.pointer("/spec/accessModes"))),
                json!(s(o.pointer("/spec/persistentVolumeReclaimPolicy"))),
                json!(phase_or_terminating(o)),
                json!(claim),
                json!(s(o.pointer("/spec/storageClassName"))),
                json!(or_none(s(o.pointer("/spec/volumeAttributesClassName")))),
                json!(s(o.pointer("/status/reason"))),
                age(o),
                json!(s(o.pointer("/spec/volumeMode"))),
            ]
        }
        ("", "PersistentVolumeClaim") => {
            let modes = access_modes(o.pointer("/status/accessModes"));
            vec![
                name,
                json!(phase_or_terminating(o)),
                json!(s(o.pointer("/spec/volumeName"))),
                json!(s(o.pointer("/status/capacity/storage"))),
                json!(modes),
                json!(s(o.pointer("/spec/storageClassName"))),
                json!(or_none(s(o.pointer("/spec/volumeAttributesClassName")))),
                age(o),
                json!(s(o.pointer("/spec/volumeMode"))),
            ]
        }
        ("coordination.k8s.io", "Lease") => {
            vec![name, json!(s(o.pointer("/spec/holderIdentity"))), age(o)]
        }
        ("rbac.authorization.k8s.io", "RoleBinding")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            let subjects = o
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let pick = |k: &str| {
                subjects
                    .iter()
                    .filter(|x| s(x.get("kind")) == k)
                    .map(|x| {
                        if k == "ServiceAccount" {
                            format!("{}/{}", s(x.get("namespace")), s(x.get("name")))
                        } else {
                            s(x.get("name"))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s(o.pointer("/roleRef/kind")),
                    s(o.pointer("/roleRef/name"))
                )),
                age(o),
                json!(pick("User")),
                json!(pick("Group")),
                json!(pick("ServiceAccount")),
            ]
        }
        ("rbac.authorization.k8s.io", "Role") | ("rbac.authorization.k8s.io", "ClusterRole") => {
            vec![name, json!(s(o.pointer("/metadata/creationTimestamp")))]
        }
        ("storage.k8s.io", "StorageClass") => {
            let mut n = s(o.pointer("/metadata/name"));
            if o.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
                .and_then(Value::as_str)
                == Some("true")
            {
                n.push_str(" (default)");
            }
            vec![
                json!(n),
                json!(s(o.get("provisioner"))),
                json!(s(o.get("reclaimPolicy"))),
                json!(s(o.get("volumeBindingMode"))),
                json!(o
                    .get("allowVolumeExpansion")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)),
                age(o),
            ]
        }
        _ => vec![name, age(o)],
    }
}

fn partial_metadata(o: &Value) -> Value {
    let md = o.get("metadata").cloned().unwrap_or(json!({}));
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md})
}

/// Build a Table for `items`.
pub fn table(
    rt: &ResourceType,
    items: &[Value],
    include_object: bool,
    rv: Value,
    cont: Option<String>,
) -> Value {
    let defs: Vec<Value> = columns(rt)
        .into_iter()
        .map(|(name, ty, prio)| {
            json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" },
                   "description": "", "priority": prio})
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let obj = if include_object {
                o.clone()
            } else {
                partial_metadata(o)
            };
            json!({"cells": cells(rt, o), "object": obj})
        })
        .collect();
    let mut md = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        md["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md,
           "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(15 * 60), "15m");
        assert_eq!(human_duration(4 * 3600 + 60 * 5), "4h5m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }

    #[test]
    fn pod_status_reasons() {
        let p = json!({"status":{"phase":"Pending","containerStatuses":[{"state":{"waiting":{"reason":"ContainerCreating"}}}]}});
        assert_eq!(pod_status(&p), "ContainerCreating");
        let p = json!({"metadata":{"deletionTimestamp":"x"},"status":{"phase":"Running"}});
        assert_eq!(pod_status(&p), "Terminating");
        let p = json!({"status":{"phase":"Failed","containerStatuses":[{"state":{"terminated":{"exitCode":1,"reason":"Error"}}}]}});
        assert_eq!(pod_status(&p), "Error");
    }
}
