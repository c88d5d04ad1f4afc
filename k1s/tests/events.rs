//! Events live in memory only: `--event-ttl` deletes one not written for that long (watchers
//! see DELETED), and a restart drops them all while other objects stay; a watch of Events
//! from before the restart gets 410 Gone, so clients list again.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

mod support;
use support::{client, free_port, runtime, start_with};

const TTL: Duration = Duration::from_secs(2);

/// The resourceVersion of a list of the Events.
async fn list_rv(events: &Api<Event>) -> String {
    events
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .unwrap_or_default()
}

fn event(name: &str) -> Event {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Testing", "message": "an event", "type": "Normal",
    }))
    .expect("event")
}

#[test]
fn events_expire_after_their_ttl_and_do_not_survive_a_restart() {
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        let port = free_port();
        let args = ["--event-ttl", "2s"];
        let mut server = start_with(dir.path(), port, &args);
        let c = client(dir.path()).await;
        let events: Api<Event> = Api::namespaced(c.clone(), "default");
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");

        // Expiry: the watcher sees the Event deleted, not before its TTL.
        let rv = list_rv(&events).await;
        let mut watch = events
            .watch(&WatchParams::default().timeout(20), &rv)
            .await
            .expect("watch")
            .boxed();
        let created = Instant::now();
        events
            .create(&PostParams::default(), &event("short"))
            .await
            .expect("create");
        let deadline = created + Duration::from_secs(20);
        let mut deleted = None;
        while deleted.is_none() && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline.into(), watch.next()).await {
                Ok(Some(Ok(WatchEvent::Deleted(e)))) => {
                    assert_eq!(e.metadata.name.as_deref(), Some("short"));
                    deleted = Some(created.elapsed());
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("watch ended before the Event expired: {other:?}"),
            }
        }
        let after = deleted.expect("the Event was never deleted");
        assert!(after >= TTL, "deleted after {after:?}, before its TTL");
        assert!(events.get_opt("short").await.expect("get").is_none());

        // Restart: Events are gone, other objects stay, old Event watches are expired.
        events
            .create(&PostParams::default(), &event("before"))
            .await
            .expect("create");
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "kept"}})).expect("cm");
        cms.create(&PostParams::default(), &cm).await.expect("cm");
        let old_rv = list_rv(&events).await;
        server.kill();
        let _server = start_with(dir.path(), port, &args);
        let c = client(dir.path()).await;
        let events: Api<Event> = Api::namespaced(c.clone(), "default");
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
        assert!(cms.get_opt("kept").await.expect("get").is_some());
        let list = events.list(&ListParams::default()).await.expect("list");
        assert!(
            list.items.is_empty(),
            "Events survived a restart: {:?}",
            list.items
        );
        let new_rv: u64 = list
            .metadata
            .resource_version
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
        assert!(
            new_rv > old_rv.parse().unwrap_or(u64::MAX),
            "revision went back"
        );
        let mut stale = events
            .watch(&WatchParams::default().timeout(5), &old_rv)
            .await
            .expect("watch")
            .boxed();
        match stale.next().await {
            Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410, "{e:?}"),
            other => panic!("expected 410 Gone for a watch from before the restart: {other:?}"),
        }
    });
}
