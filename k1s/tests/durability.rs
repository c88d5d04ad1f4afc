//! Crash durability of the API server: 16 concurrent writers doing mixed creates, updates and
//! deletes while `k1s server` is killed with SIGKILL, then restarted, 20 times. Every
//! acknowledged write must be there after the restart, the revision must never go back, and
//! the watch history replayed after the restart must extend what a watcher saw before it.
//! The server runs the API only (`--disable-agent`) on a loopback port.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};

mod support;
use support::{client, free_port, runtime, start};

const WRITERS: usize = 16;
const OPS: usize = 1000;
const ROUNDS: usize = 20;

/// What a key should hold: the last acknowledged value (None = deleted), plus the value of an
/// operation in flight when the server died (which may or may not have landed).
#[derive(Clone, Debug, Default)]
struct Expect {
    acked: Option<Option<String>>,
    in_flight: Option<Option<String>>,
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"v": v}}))
        .expect("cm")
}

async fn writer(
    api: Api<ConfigMap>,
    w: usize,
    round: usize,
    state: Arc<Mutex<HashMap<String, Expect>>>,
) {
    for i in 0..OPS {
        let name = format!("w{w}-k{}", (i * 7 + round) % 40);
        let cur = state
            .lock()
            .expect("lock")
            .get(&name)
            .cloned()
            .unwrap_or_default();
        let exists = matches!(cur.acked, Some(Some(_)));
        let val = format!("r{round}-i{i}");
        let (intent, res) = if !exists {
            state
                .lock()
                .expect("lock")
                .entry(name.clone())
                .or_default()
                .in_flight = Some(Some(val.clone()));
            (
                Some(val.clone()),
                api.create(&PostParams::default(), &cm(&name, &val))
                    .await
                    .map(|_| ()),
            )
        } else if i % 3 == 0 {
            state
                .lock()
                .expect("lock")
                .entry(name.clone())
                .or_default()
                .in_flight = Some(None);
            (
                None,
                api.delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )
        } else {
            state
                .lock()
                .expect("lock")
                .entry(name.clone())
                .or_default()
                .in_flight = Some(Some(val.clone()));
            (
                Some(val.clone()),
                api.replace(&name, &PostParams::default(), &cm(&name, &val))
                    .await
                    .map(|_| ()),
            )
        };
        match res {
            Ok(()) => {
                let mut s = state.lock().expect("lock");
                let e = s.entry(name).or_default();
                e.acked = Some(intent);
                e.in_flight = None;
            }
            // The server died mid-request: the outcome is unknown, keep in_flight.
            Err(_) => return,
        }
    }
}

#[test]
fn kill9_during_writes_loses_no_acknowledged_write() {
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        let port = free_port();
        let state: Arc<Mutex<HashMap<String, Expect>>> = Arc::default();
        let mut max_rev: u64 = 0;
        let mut total_acked = 0usize;
        for round in 0..ROUNDS {
            let mut child = start(dir.path(), port);
            let c = client(dir.path()).await;
            let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
            // Verify everything acknowledged so far survived the previous kill.
            let list = api.list(&ListParams::default()).await.expect("list");
            let rev: u64 = list
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default()
                .parse()
                .unwrap_or(0);
            assert!(
                rev >= max_rev,
                "round {round}: revision went back from {max_rev} to {rev}"
            );
            let live: HashMap<String, String> = list
                .items
                .iter()
                .map(|o| {
                    (
                        o.metadata.name.clone().unwrap_or_default(),
                        o.data
                            .as_ref()
                            .and_then(|d| d.get("v").cloned())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            {
                let mut s = state.lock().expect("lock");
                for (k, e) in s.iter_mut() {
                    let have = live.get(k).cloned();
                    let ok = e.acked.as_ref().is_some_and(|a| *a == have)
                        || e.in_flight.as_ref().is_some_and(|f| *f == have)
                        || (e.acked.is_none() && have.is_none());
                    assert!(
                        ok,
                        "round {round}: {k} is {have:?}, expected {:?} (or in-flight {:?})",
                        e.acked, e.in_flight
                    );
                    // Settle: what is there now is the truth.
                    e.acked = Some(have);
                    e.in_flight = None;
                }
                total_acked += s.len();
            }
            // A watcher from the current revision records the history it sees.
            let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
            let wapi = api.clone();
            let wseen = seen.clone();
            let start_rev = rev.to_string();
            let watch_task = tokio::spawn(async move {
                let Ok(stream) = wapi.watch(&WatchParams::default(), &start_rev).await else {
                    return;
                };
                let mut stream = stream.boxed();
                while let Some(Ok(ev)) = stream.next().await {
                    let rec = match ev {
                        WatchEvent::Added(o) => ("A", o),
                        WatchEvent::Modified(o) => ("M", o),
                        WatchEvent::Deleted(o) => ("D", o),
                        _ => continue,
                    };
                    let rv = rec.1.metadata.resource_version.clone().unwrap_or_default();
                    wseen.lock().expect("lock").push((
                        rec.0.to_string(),
                        rec.1.metadata.name.clone().unwrap_or_default(),
                        rv,
                    ));
                }
            });
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| tokio::spawn(writer(api.clone(), w, round, state.clone())))
                .collect();
            let kill_after = Duration::from_millis(300 + (rand::random::<u64>() % 1200));
            tokio::time::sleep(kill_after).await;
            child.kill();
            for w in writers {
                let _ = w.await;
            }
            watch_task.abort();
            let before: Vec<(String, String, String)> = seen.lock().expect("lock").clone();
            if let Some(last) = before.last() {
                max_rev = max_rev.max(last.2.parse().unwrap_or(0));
            }
            // After a restart, replaying from the same start revision must begin with exactly
            // what the watcher saw before the kill.
            let mut child = start(dir.path(), port);
            let c = client(dir.path()).await;
            let api: Api<ConfigMap> = Api::namespaced(c, "default");
            let mut replay = Vec::new();
            if !before.is_empty() {
                let stream = api
                    .watch(&WatchParams::default().timeout(2), &rev.to_string())
                    .await
                    .expect("watch after restart");
                let mut stream = stream.boxed();
                while replay.len() < before.len() {
                    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                        Ok(Some(Ok(WatchEvent::Added(o)))) => replay.push((
                            "A".to_string(),
                            o.metadata.name.unwrap_or_default(),
                            o.metadata.resource_version.unwrap_or_default(),
                        )),
                        Ok(Some(Ok(WatchEvent::Modified(o)))) => replay.push((
                            "M".to_string(),
                            o.metadata.name.unwrap_or_default(),
                            o.metadata.resource_version.unwrap_or_default(),
                        )),
                        Ok(Some(Ok(WatchEvent::Deleted(o)))) => replay.push((
                            "D".to_string(),
                            o.metadata.name.unwrap_or_default(),
                            o.metadata.resource_version.unwrap_or_default(),
                        )),
                        Ok(Some(Ok(_))) => {}
                        other => panic!(
                            "round {round}: replay ended after {} of {} events: {other:?}",
                            replay.len(),
                            before.len()
                        ),
                    }
                }
                assert_eq!(
                    replay, before,
                    "round {round}: watch history differs across the restart"
                );
            }
            child.kill();
        }
        eprintln!(
            "{ROUNDS} kill -9 rounds, {total_acked} keys verified, final revision >= {max_rev}"
        );
    });
}
