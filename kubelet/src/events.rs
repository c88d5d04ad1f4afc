//! Events about a pod from the kubelet, with upstream reasons, through a correlator like
//! upstream's `EventCorrelator`: an event identical to one recorded in the last 10 minutes
//! (same involved object and field, type, reason, message; the source is always this kubelet)
//! bumps that Event's `count` and `lastTimestamp` instead of creating another; once more than
//! 10 distinct messages with the same type and reason came within 10 minutes, further ones
//! are folded into a single "(combined from similar events): ..." Event. A crash loop thus
//! keeps a bounded number of Event objects. Before any of that, upstream's spam filter: a
//! token bucket per source and object (burst 25, one more every 5 minutes) drops events of
//! an object that produces too many. Writing is asynchronous, in order, so a pod worker
//! never waits for the API to record an event.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

/// Upstream's `defaultAggregateIntervalInSeconds` and `defaultAggregateMaxEvents`.
const WINDOW: Duration = Duration::from_secs(600);
const MAX_SIMILAR: usize = 10;
const COMBINED: &str = "(combined from similar events): ";
/// Upstream's `defaultSpamBurst` and `defaultSpamQPS` (1/300).
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL: Duration = Duration::from_secs(300);

/// Upstream's `EventSourceObjectSpamFilter` for one source and object (a `Recorder` records
/// for one object from this kubelet): a token bucket, full at first.
#[derive(Debug)]
pub struct SpamFilter {
    tokens: f64,
    last: Option<Instant>,
}

impl Default for SpamFilter {
    fn default() -> Self {
        SpamFilter {
            tokens: SPAM_BURST,
            last: None,
        }
    }
}

impl SpamFilter {
    /// Whether an event at `now` may be recorded (takes a token if so).
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill =
                now.saturating_duration_since(last).as_secs_f64() / SPAM_REFILL.as_secs_f64();
            self.tokens = (self.tokens + refill).min(SPAM_BURST);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// (fieldPath, type, reason, message): what makes two events of one object the same.
type Key = (String, String, String, String);

/// The Event last written for a key.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    count: i32,
    last: Instant,
}

/// Distinct messages seen for a (type, reason) since `since`.
#[derive(Debug, Default)]
struct Similar {
    messages: HashSet<String>,
    last: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Correlator {
    seen: HashMap<Key, Seen>,
    similar: HashMap<(String, String), Similar>,
    spam: SpamFilter,
}

/// What to do with an event.
#[derive(Debug, PartialEq)]
pub enum Action {
    Create {
        key: (String, String, String, String),
        message: String,
    },
    Update {
        key: (String, String, String, String),
        message: String,
        name: String,
        count: i32,
    },
    /// Dropped by the spam filter.
    Skip,
}

impl Correlator {
    /// Decide how to record an event at `now`.
    pub fn observe(
        &mut self,
        field: &str,
        ty: &str,
        reason: &str,
        msg: &str,
        now: Instant,
    ) -> Action {
        let action = self.correlate(field, ty, reason, msg, now);
        if self.spam.allow(now) {
            return action;
        }
        // Dropped, but counted like upstream (its correlator counts before the filter): the
        // next occurrence that gets through carries the full count.
        if let Action::Update {
            key, name, count, ..
        } = action
        {
            self.recorded(key, name, count, now);
        }
        Action::Skip
    }

    /// Aggregation and counting, before the spam filter.
    fn correlate(
        &mut self,
        field: &str,
        ty: &str,
        reason: &str,
        msg: &str,
        now: Instant,
    ) -> Action {
        let sim = self
            .similar
            .entry((ty.to_string(), reason.to_string()))
            .or_default();
        if sim.last.is_some_and(|l| now.duration_since(l) > WINDOW) {
            sim.messages.clear();
        }
        sim.last = Some(now);
        let (key, message) = if sim.messages.contains(msg) || sim.messages.len() < MAX_SIMILAR {
            sim.messages.insert(msg.to_string());
            let k = (field.into(), ty.into(), reason.into(), msg.into());
            (k, msg.to_string())
        } else {
            // Aggregated: one Event per (type, reason), whatever the field and message.
            let k = (String::new(), ty.into(), reason.into(), COMBINED.into());
            (k, format!("{COMBINED}{msg}"))
        };
        match self.seen.get(&key) {
            Some(s) if now.duration_since(s.last) <= WINDOW => Action::Update {
                name: s.name.clone(),
                count: s.count + 1,
                key,
                message,
            },
            _ => Action::Create { key, message },
        }
    }

    /// Remember the Event written for `key`.
    pub fn recorded(&mut self, key: Key, name: String, count: i32, now: Instant) {
        self.seen.insert(
            key,
            Seen {
                name,
                count,
                last: now,
            },
        );
        self.seen
            .retain(|_, s| now.duration_since(s.last) <= WINDOW);
    }
}

/// One event waiting to be written.
struct Pending {
    ty: String,
    reason: String,
    msg: String,
    field: String,
}

/// Records a pod's events without making its worker wait for the API: events go, in order,
/// to a task of their own that correlates and writes them (upstream's recorder is
/// asynchronous too). The task ends once every clone is dropped and the queue is written.
#[derive(Clone)]
pub struct Recorder {
    tx: tokio::sync::mpsc::UnboundedSender<Pending>,
}

/// The writing side of a `Recorder`.
struct Writer {
    client: Client,
    /// Where the Events live: the pod's namespace, `default` for the node's.
    namespace: String,
    involved: ObjectReference,
    node: String,
    correlator: Correlator,
}

impl Recorder {
    /// Must be called inside a Tokio runtime: it spawns the writer task.
    pub fn new(client: Client, pod: &Pod, node: &str) -> Self {
        Self::spawn(Writer {
            client,
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
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
            correlator: Correlator::default(),
        })
    }

    /// Events about the node itself (upstream records them in `default`, with the node's
    /// name as its UID).
    pub fn for_node(client: Client, node: &str) -> Self {
        Self::spawn(Writer {
            client,
            namespace: "default".into(),
            involved: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.into()),
                uid: Some(node.into()),
                ..Default::default()
            },
            node: node.into(),
            correlator: Correlator::default(),
        })
    }

    fn spawn(mut w: Writer) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                w.write(&p).await;
            }
        });
        Recorder { tx }
    }

    pub async fn event(&self, ty: &str, reason: &str, msg: &str) {
        self.event_for(ty, reason, msg, "").await
    }

    /// Record an event; `field` is the `involvedObject.fieldPath` (e.g. `spec.containers{web}`).
    pub async fn event_for(&self, ty: &str, reason: &str, msg: &str, field: &str) {
        let p = Pending {
            ty: ty.into(),
            reason: reason.into(),
            msg: msg.into(),
            field: field.into(),
        };
        if self.tx.send(p).is_err() {
            tracing::debug!(reason, "event writer gone; event dropped");
        }
    }
}

impl Writer {
    async fn write(&mut self, p: &Pending) {
        let ns = self.namespace.clone();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Timestamp::now();
        let action = self
            .correlator
            .observe(&p.field, &p.ty, &p.reason, &p.msg, Instant::now());
        let (key, message) = match action {
            Action::Update {
                key,
                message,
                name,
                count,
            } => {
                let patch =
                    json!({"count": count, "lastTimestamp": now.to_string(), "message": message});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        self.correlator.recorded(key, name, count, Instant::now());
                        return;
                    }
                    // Gone (e.g. deleted by hand): create it again.
                    Err(e) => {
                        tracing::debug!(error = %e, "failed to update event; creating it again");
                        (key, message)
                    }
                }
            }
            Action::Create { key, message } => (key, message),
            Action::Skip => {
                tracing::debug!(reason = %p.reason, "event dropped by the spam filter");
                return;
            }
        };
        let mut involved = self.involved.clone();
        if !key.0.is_empty() {
            involved.field_path = Some(key.0.clone());
        }
        let ev = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", involved.name.clone().unwrap_or_default())),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(p.reason.clone()),
            message: Some(message),
            type_: Some(p.ty.clone()),
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
                if let Some(name) = created.metadata.name {
                    self.correlator.recorded(key, name, 1, Instant::now());
                }
            }
            Err(e) => tracing::debug!(error = %e, "failed to record event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds an event to the correlator and records it as the API would.
    fn feed(c: &mut Correlator, reason: &str, msg: &str, now: Instant, n: &mut u32) -> Action {
        let a = c.observe("spec.containers{c}", "Warning", reason, msg, now);
        match &a {
            Action::Create { key, .. } => {
                *n += 1;
                c.recorded(key.clone(), format!("ev{n}"), 1, now);
            }
            Action::Update {
                key, name, count, ..
            } => c.recorded(key.clone(), name.clone(), *count, now),
            Action::Skip => {}
        }
        a
    }

    #[test]
    fn spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() {
        let (mut c, mut n, t0) = (Correlator::default(), 0, Instant::now());
        for i in 0..25 {
            let a = feed(
                &mut c,
                "BackOff",
                "Back-off restarting",
                t0 + Duration::from_secs(i),
                &mut n,
            );
            assert!(!matches!(a, Action::Skip), "event {i} dropped");
        }
        let a = feed(
            &mut c,
            "BackOff",
            "Back-off restarting",
            t0 + Duration::from_secs(30),
            &mut n,
        );
        assert_eq!(a, Action::Skip);
        // Another reason from the same object shares the bucket.
        let a = feed(
            &mut c,
            "Unhealthy",
            "probe failed",
            t0 + Duration::from_secs(31),
            &mut n,
        );
        assert_eq!(a, Action::Skip);
        // Five minutes after the 25th event one token is back, and only one; the event that
        // gets through counts the dropped one too.
        let t = t0 + Duration::from_secs(24 + 300);
        let a = feed(&mut c, "BackOff", "Back-off restarting", t, &mut n);
        assert!(matches!(a, Action::Update { count: 27, .. }), "{a:?}");
        assert_eq!(
            feed(&mut c, "BackOff", "Back-off restarting", t, &mut n),
            Action::Skip
        );
        // A full bucket again after long enough.
        let t = t + Duration::from_secs(25 * 300);
        for _ in 0..25 {
            assert_ne!(feed(&mut c, "Pulled", "pulled", t, &mut n), Action::Skip);
        }
    }

    #[test]
    fn repeats_within_ten_minutes_bump_the_count() {
        let (mut c, mut n, t0) = (Correlator::default(), 0, Instant::now());
        feed(&mut c, "BackOff", "Back-off restarting", t0, &mut n);
        let a = feed(
            &mut c,
            "BackOff",
            "Back-off restarting",
            t0 + Duration::from_secs(60),
            &mut n,
        );
        assert!(
            matches!(a, Action::Update { count: 2, ref name, .. } if name == "ev1"),
            "{a:?}"
        );
        let a = feed(
            &mut c,
            "BackOff",
            "Back-off restarting",
            t0 + Duration::from_secs(120),
            &mut n,
        );
        assert!(matches!(a, Action::Update { count: 3, .. }), "{a:?}");
        // Eleven minutes of silence: a new Event.
        let a = feed(
            &mut c,
            "BackOff",
            "Back-off restarting",
            t0 + Duration::from_secs(780),
            &mut n,
        );
        assert!(matches!(a, Action::Create { .. }), "{a:?}");
        assert_eq!(n, 2);
    }

    #[test]
    fn more_than_ten_distinct_messages_are_combined() {
        let (mut c, mut n, t0) = (Correlator::default(), 0, Instant::now());
        for i in 0..10 {
            feed(
                &mut c,
                "Unhealthy",
                &format!("probe failed {i}"),
                t0,
                &mut n,
            );
        }
        assert_eq!(n, 10);
        let a = feed(&mut c, "Unhealthy", "probe failed 10", t0, &mut n);
        assert!(
            matches!(&a, Action::Create { message, .. } if message == "(combined from similar events): probe failed 10"),
            "{a:?}"
        );
        let a = feed(&mut c, "Unhealthy", "probe failed 11", t0, &mut n);
        assert!(
            matches!(&a, Action::Update { message, count: 2, .. } if message.ends_with("probe failed 11")),
            "{a:?}"
        );
        // A message seen before is still counted on its own Event.
        let a = feed(&mut c, "Unhealthy", "probe failed 3", t0, &mut n);
        assert!(
            matches!(&a, Action::Update { name, .. } if name == "ev4"),
            "{a:?}"
        );
        assert_eq!(n, 11);
    }
}
