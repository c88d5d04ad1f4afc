//! Upstream defaulting for built-in kinds, applied on every create and update so stored
//! objects look like those of a real cluster (kubectl and controllers depend on it).

use serde_json::{json, Map, Value};

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

fn set_default(m: &mut Map<String, Value>, key: &str, val: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), val);
    }
}

fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

fn ensure_child<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), json!({}));
    }
    child(m, key)
}

/// Apply defaults for `kind` in place.
pub fn apply(kind: &str, o: &mut Value) {
    if kind == "CustomResourceDefinition" {
        crate::crd::default_status(o);
        return;
    }
    let Some(m) = obj(o) else { return };
    match kind {
        "Pod" => {
            if let Some(spec) = child(m, "spec") {
                pod_spec(spec);
            }
            if let Some(st) = ensure_child(m, "status") {
                set_default(st, "phase", json!("Pending"));
            }
            let spec = m.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(st) = child(m, "status") {
                st.insert("qosClass".into(), json!(qos_class(&spec)));
            }
        }
        "Service" => service(m),
        "Secret" => set_default(m, "type", json!("Opaque")),
        "Namespace" => {
            if let Some(spec) = ensure_child(m, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(st) = ensure_child(m, "status") {
                set_default(st, "phase", json!("Active"));
            }
        }
        "Deployment" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                if let Some(strat) = ensure_child(spec, "strategy") {
                    set_default(strat, "type", json!("RollingUpdate"));
                    if strat.get("type") == Some(&json!("RollingUpdate")) {
                        if let Some(ru) = ensure_child(strat, "rollingUpdate") {
                            set_default(ru, "maxUnavailable", json!("25%"));
                            set_default(ru, "maxSurge", json!("25%"));
                        }
                    }
                }
                template(spec);
            }
        }
        "ReplicaSet" | "ReplicationController" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "replicas", json!(1));
                template(spec);
            }
        }
        "StatefulSet" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted":"Retain","whenScaled":"Retain"}),
                );
                if let Some(us) = ensure_child(spec, "updateStrategy") {
                    set_default(us, "type", json!("RollingUpdate"));
                    if us.get("type") == Some(&json!("RollingUpdate")) {
                        if let Some(ru) = ensure_child(us, "rollingUpdate") {
                            set_default(ru, "partition", json!(0));
                        }
                    }
                }
                template(spec);
            }
        }
        "DaemonSet" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "revisionHistoryLimit", json!(10));
                if let Some(us) = ensure_child(spec, "updateStrategy") {
                    set_default(us, "type", json!("RollingUpdate"));
                    if us.get("type") == Some(&json!("RollingUpdate")) {
                        if let Some(ru) = ensure_child(us, "rollingUpdate") {
                            set_default(ru, "maxUnavailable", json!(1));
                            set_default(ru, "maxSurge", json!(0));
                        }
                    }
                }
                template(spec);
            }
        }
        "Job" => {
            if let Some(spec) = child(m, "spec") {
                job_spec(spec);
            }
        }
        "CronJob" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
                if let Some(jt) = child(spec, "jobTemplate").and_then(|j| child(j, "spec")) {
                    job_spec(jt);
                }
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(st) = ensure_child(m, "status") {
                set_default(st, "phase", json!("Pending"));
            }
        }
        "PersistentVolume" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(st) = ensure_child(m, "status") {
                set_default(st, "phase", json!("Pending"));
            }
        }
        "StorageClass" => {
            set_default(m, "reclaimPolicy", json!("Delete"));
            set_default(m, "volumeBindingMode", json!("Immediate"));
        }
        "HorizontalPodAutoscaler" => {
            if let Some(spec) = child(m, "spec") {
                set_default(spec, "minReplicas", json!(1));
            }
        }
        _ => {}
    }
}

fn job_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "manualSelector", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    let completions_set = spec.get("completions").is_some_and(|v| !v.is_null());
    let parallelism_set = spec.get("parallelism").is_some_and(|v| !v.is_null());
    if !completions_set && !parallelism_set {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    } else if !parallelism_set {
        spec.insert("parallelism".into(), json!(1));
    }
    template(spec);
}

fn template(spec: &mut Map<String, Value>) {
    if let Some(ps) = child(spec, "template").and_then(|t| child(t, "spec")) {
        pod_spec(ps);
    }
}

/// `imagePullPolicy` default: Always for `:latest` or no tag, IfNotPresent otherwise.
pub fn pull_policy_for(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn container(c: &mut Map<String, Value>) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_default(c, "imagePullPolicy", json!(pull_policy_for(&image)));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, probe) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if let Some(h) = child(p, "httpGet") {
                set_default(h, "path", json!("/"));
                set_default(h, "scheme", json!("HTTP"));
            }
        }
    }
    // Limits without requests: requests default to the limits.
    if let Some(res) = child(c, "resources") {
        if let Some(limits) = res
            .get("limits")
            .cloned()
            .and_then(|l| l.as_object().cloned())
        {
            let req = ensure_child(res, "requests");
            if let Some(req) = req {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
}

pub fn pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "enableServiceLinks", json!(true));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    set_default(spec, "priority", json!(0));
    if spec.get("serviceAccountName").is_none_or(Value::is_null) {
        let sa = spec
            .get("serviceAccount")
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or(json!("default"));
        spec.insert("serviceAccountName".into(), sa);
    }
    if spec.get("serviceAccount").is_none_or(Value::is_null) {
        let sa = spec
            .get("serviceAccountName")
            .cloned()
            .unwrap_or(json!("default"));
        spec.insert("serviceAccount".into(), sa);
    }
    let toleration_defaults = !spec.contains_key("tolerations");
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                container(c);
            }
        }
    }
    if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols.iter_mut().filter_map(Value::as_object_mut) {
            for (src, field) in [
                ("configMap", "defaultMode"),
                ("secret", "defaultMode"),
                ("downwardAPI", "defaultMode"),
                ("projected", "defaultMode"),
            ] {
                if let Some(s) = child(v, src) {
                    set_default(s, field, json!(420));
                }
            }
            if let Some(hp) = child(v, "hostPath") {
                set_default(hp, "type", json!(""));
            }
        }
    }
    if toleration_defaults {
        spec.insert(
            "tolerations".into(),
            json!([
                {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},
                {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}
            ]),
        );
    }
}

fn service(m: &mut Map<String, Value>) {
    let Some(spec) = child(m, "spec") else { return };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let headless_or_name = spec.get("type") == Some(&json!("ExternalName"));
    if !headless_or_name {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if matches!(
        spec.get("type").and_then(Value::as_str),
        Some("NodePort") | Some("LoadBalancer")
    ) {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if p.get("targetPort").is_none_or(Value::is_null) {
                let port = p.get("port").cloned().unwrap_or(Value::Null);
                p.insert("targetPort".into(), port);
            }
        }
    }
    if let Some(st) = ensure_child(m, "status") {
        set_default(st, "loadBalancer", json!({}));
    }
}

/// Pod QoS class from container requests and limits, as upstream computes it.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut all = Vec::new();
    for key in ["containers", "initContainers"] {
        if let Some(cs) = spec.get(key).and_then(Value::as_array) {
            all.extend(cs.iter());
        }
    }
    if all.is_empty() {
        return "BestEffort";
    }
    let mut any_set = false;
    let mut guaranteed = true;
    for c in &all {
        let req = c.pointer("/resources/requests");
        let lim = c.pointer("/resources/limits");
        for r in ["cpu", "memory"] {
            let rq = req.and_then(|x| x.get(r));
            let lm = lim.and_then(|x| x.get(r));
            if rq.is_some() || lm.is_some() {
                any_set = true;
            }
            match (rq, lm) {
                (Some(a), Some(b)) if a == b => {}
                (None, Some(_)) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any_set {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults() {
        let mut p = json!({"spec":{"containers":[{"name":"a","image":"busybox"},{"name":"b","image":"nginx:1.2","ports":[{"containerPort":80}]}]}});
        apply("Pod", &mut p);
        assert_eq!(p["spec"]["restartPolicy"], "Always");
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            p["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(p["spec"]["containers"][1]["ports"][0]["protocol"], "TCP");
        assert_eq!(p["status"]["phase"], "Pending");
        assert_eq!(p["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn deployment_and_job_defaults() {
        let mut d = json!({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"x"}]}}}});
        apply("Deployment", &mut d);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        let mut j = json!({"spec":{"template":{"spec":{"containers":[]}}}});
        apply("Job", &mut j);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(j["spec"]["completions"], 1);
    }
}
