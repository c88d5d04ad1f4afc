//! API server benchmark (`cargo bench -p k1s --bench api`): starts `k1s server
//! --disable-agent` on a loopback port and prints durable creates/s with 16 concurrent
//! clients (p50/p99), GETs/s (p50/p99), LIST latency of 1000 pods, watch fan-out latency to
//! 100 watchers, idle RSS and bytes written to the data dir while idle.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{client, free_port, runtime, start};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            total += if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("write_bytes:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        serde_json::json!({"metadata": {"name": name}, "data": {"k": "v".repeat(200)}}),
    )
    .expect("cm")
}

fn main() {
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        let server = start(dir.path(), free_port());
        let pid = server.pid();
        let c = client(dir.path()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_rss = rss_kb(pid);

        // Durable creates, 16 concurrent clients.
        let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
        let per = 500;
        let t0 = Instant::now();
        let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..16).map(|w| {
            let api = api.clone();
            let lat = lat.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    let t = Instant::now();
                    api.create(&PostParams::default(), &cm(&format!("c{w}-{i}"))).await.expect("create");
                    lat.lock().expect("lock").push(t.elapsed().as_secs_f64() * 1000.0);
                }
            })
        }).collect();
        for t in tasks { t.await.expect("join"); }
        let secs = t0.elapsed().as_secs_f64();
        let mut l = lat.lock().expect("lock").clone();
        let creates = (16 * per) as f64 / secs;
        println!("durable creates: {creates:.0}/s (16 clients, {} objects), p50 {:.2} ms, p99 {:.2} ms", 16 * per, pct(&mut l, 0.5), pct(&mut l, 0.99));

        // GETs.
        let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..16).map(|w| {
            let api = api.clone();
            let lat = lat.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    let t = Instant::now();
                    api.get(&format!("c{w}-{i}")).await.expect("get");
                    lat.lock().expect("lock").push(t.elapsed().as_secs_f64() * 1000.0);
                }
            })
        }).collect();
        for t in tasks { t.await.expect("join"); }
        let gets = (16 * per) as f64 / t0.elapsed().as_secs_f64();
        let mut l = lat.lock().expect("lock").clone();
        println!("GETs: {gets:.0}/s, p50 {:.2} ms, p99 {:.2} ms", pct(&mut l, 0.5), pct(&mut l, 0.99));

        // LIST of 1000 pods.
        let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
        let make: Vec<_> = (0..1000).map(|i| {
            let pods = pods.clone();
            async move {
                let p: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": format!("p{i}"), "labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"]}]}})).expect("pod");
                pods.create(&PostParams::default(), &p).await.expect("pod create");
            }
        }).collect();
        futures::stream::iter(make).buffer_unordered(16).collect::<Vec<_>>().await;
        let mut l = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let list = pods.list(&ListParams::default()).await.expect("list");
            assert_eq!(list.items.len(), 1000);
            l.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("LIST 1000 pods: p50 {:.1} ms, p99 {:.1} ms", pct(&mut l.clone(), 0.5), pct(&mut l, 0.99));

        // Watch fan-out: 100 watchers, time until all saw one change.
        let rv = api.list(&ListParams::default().limit(1)).await.expect("list").metadata.resource_version.unwrap_or_default();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Instant>(200);
        for _ in 0..100 {
            let api = api.clone();
            let tx = tx.clone();
            let rv = rv.clone();
            tokio::spawn(async move {
                let mut s = api.watch(&WatchParams::default().fields("metadata.name=fanout"), &rv).await.expect("watch").boxed();
                while let Some(Ok(ev)) = s.next().await {
                    if matches!(ev, WatchEvent::Added(_)) {
                        let _ = tx.send(Instant::now()).await;
                        return;
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        api.create(&PostParams::default(), &cm("fanout")).await.expect("create");
        let mut last = t0;
        for _ in 0..100 {
            last = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("fan-out timed out").expect("recv");
        }
        println!("watch fan-out to 100 watchers: all notified {:.1} ms after the create was sent", (last - t0).as_secs_f64() * 1000.0);

        // Idle: wait until nothing writes any more (the scheduler marks the 1000 pods
        // unschedulable), then RSS and bytes written over 20 s.
        let mut last = String::new();
        let mut stable_since = Instant::now();
        let settle = Instant::now();
        while stable_since.elapsed() < Duration::from_secs(3) && settle.elapsed() < Duration::from_secs(120) {
            let rv = api.list(&ListParams::default().limit(1)).await.expect("list").metadata.resource_version.unwrap_or_default();
            if rv != last {
                last = rv;
                stable_since = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let data = dir.path().join("data");
        let (b0, w0) = (dir_bytes(&data), write_bytes(pid));
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (b1, w1) = (dir_bytes(&data), write_bytes(pid));
        println!("idle RSS: {} KiB at start, {} KiB after the load", idle_rss, rss_kb(pid));
        println!("idle writes: {} bytes written by the process in 20 s ({} bytes/min); data dir size change {} bytes",
            w1 - w0, (w1 - w0) * 3, b1 as i64 - b0 as i64);
        println!("targets: >= 2000 creates/s, GET p99 <= 5 ms, idle RSS <= 25 MB, idle writes ~0");
    });
}
