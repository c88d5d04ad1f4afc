//! Events about a pod from the kubelet, with upstream reasons. Repeats of the same
//! (reason, message, field) bump the count of the existing Event instead of creating another,
//! so a crash loop does not flood the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

/// (reason, message, fieldPath) -> (Event name, count).
type Seen = HashMap<(String, String, String), (String, i32)>;

#[derive(Clone)]
pub struct Recorder {
    client: Client,
    involved: ObjectReference,
    node: String,
    seen: Arc<Mutex<Seen>>,
}

impl Recorder {
    pub fn new(client: Client, pod: &Pod, node: &str) -> Self {
        Recorder {
            client,
            involved: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                namespace: pod.metadata.namespace.clone(),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..Default::default()
            },
            node: node.into(),
            seen: Arc::default(),
        }
    }

    pub async fn event(&self, ty: &str, reason: &str, msg: &str) {
        self.event_for(ty, reason, msg, "").await
    }

    /// Record an event; `field` is the `involvedObject.fieldPath` (e.g. `spec.containers{web}`).
    pub async fn event_for(&self, ty: &str, reason: &str, msg: &str, field: &str) {
        let ns = self.involved.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Timestamp::now();
        let key = (reason.to_string(), msg.to_string(), field.to_string());
        let prior = self.seen.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some((name, count)) = prior {
            let patch = json!({"count": count + 1, "lastTimestamp": now.to_string()});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                if let Ok(mut m) = self.seen.lock() {
                    m.insert(key, (name, count + 1));
                }
                return;
            }
        }
        let mut involved = self.involved.clone();
        if !field.is_empty() {
            involved.field_path = Some(field.into());
        }
        let ev = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", involved.name.clone().unwrap_or_default())),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.into()),
            message: Some(msg.into()),
            type_: Some(ty.into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(created) => {
                if let (Ok(mut m), Some(name)) = (self.seen.lock(), created.metadata.name) {
                    m.insert(key, (name, 1));
                }
            }
            Err(e) => tracing::debug!(error = %e, "failed to record event"),
        }
    }
}
