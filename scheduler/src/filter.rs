//! Node filtering (ready, schedulable, nodeSelector, taints vs tolerations) and the records
//! the scheduler leaves: the PodScheduled condition and Scheduled / FailedScheduling events.

use k8s_openapi::api::core::v1::{Event, Node, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

fn tolerates(tols: &[Toleration], t: &Taint) -> bool {
    tols.iter().any(|tol| {
        let op = tol.operator.as_deref().unwrap_or("Equal");
        let key_ok = match tol.key.as_deref() {
            None | Some("") => op == "Exists",
            Some(k) => k == t.key,
        };
        let val_ok = op == "Exists"
            || tol.value.as_deref().unwrap_or("") == t.value.as_deref().unwrap_or("");
        let effect_ok = tol
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == t.effect);
        key_ok && val_ok && effect_ok
    })
}

/// Whether `pod` may run on `node`; the reason when not, worded like upstream.
pub fn fits(pod: &Pod, node: &Node) -> Result<(), String> {
    let spec = pod.spec.as_ref().ok_or("pod has no spec")?;
    let nspec = node.spec.clone().unwrap_or_default();
    if nspec.unschedulable == Some(true) {
        return Err("1 node(s) were unschedulable".into());
    }
    let tols = spec.tolerations.clone().unwrap_or_default();
    for t in nspec.taints.unwrap_or_default() {
        if (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerates(&tols, &t) {
            return Err(format!(
                "1 node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.clone().unwrap_or_default()
            ));
        }
    }
    if let Some(sel) = &spec.node_selector {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        if sel.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return Err("1 node(s) didn't match Pod's node affinity/selector".into());
        }
    }
    if let Some(name) = &spec.node_name {
        if !name.is_empty() && node.metadata.name.as_deref() != Some(name) {
            return Err("1 node(s) didn't match the requested node name".into());
        }
    }
    Ok(())
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

pub async fn mark_unschedulable(client: &Client, pod: &Pod, msg: &str) -> Result<(), kube::Error> {
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.message.as_deref() == Some(msg)
            })
        });
    if already {
        return Ok(());
    }
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let patch = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": msg, "lastProbeTime": null,
        "lastTransitionTime": now().to_string()}]}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    event(client, pod, "Warning", "FailedScheduling", msg).await;
    Ok(())
}

/// Record an event about `pod` from the scheduler (best effort).
pub async fn event(client: &Client, pod: &Pod, ty: &str, reason: &str, msg: &str) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let t = now();
    let ev = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: Some(ns),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(msg.into()),
        type_: Some(ty.into()),
        count: Some(1),
        first_timestamp: Some(Time(t)),
        last_timestamp: Some(Time(t)),
        event_time: Some(MicroTime(t)),
        reporting_component: Some("default-scheduler".into()),
        reporting_instance: Some("default-scheduler".into()),
        action: Some(if reason == "Scheduled" {
            "Binding".into()
        } else {
            "Scheduling".into()
        }),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("default-scheduler".into()),
            host: None,
        }),
        ..Default::default()
    };
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(error = %e, "failed to record event");
    }
}
