//! kube-rs against `k1s server` (API only, loopback): typed `Api` CRUD with every patch type
//! (merge, JSON, strategic, server-side apply), status and scale subresources, conflicts on a
//! stale resourceVersion, label-selected lists, discovery with `DynamicObject`, and the
//! `watcher` (list+watch and streaming-list initial modes) seeing creates, updates and deletes.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

mod support;
use support::{client, free_port, start};

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "kube-rs"}},
        "data": {"v": v}
    }))
    .expect("configmap")
}

#[tokio::test]
async fn typed_api_patches_subresources_and_discovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = start(dir.path(), free_port());
    let c = client(dir.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");

    let created = cms
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let mut got = cms.get("a").await.expect("get");
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("v"))
            .map(String::as_str),
        Some("1")
    );

    // Replace with the current resourceVersion, then again with the stale one: 409.
    let stale = got.clone();
    got.data = Some([("v".to_string(), "2".to_string())].into());
    cms.replace("a", &PostParams::default(), &got)
        .await
        .expect("replace");
    match cms.replace("a", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("stale replace: {other:?}"),
    }
    match cms.create(&PostParams::default(), &cm("a", "x")).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.reason, "AlreadyExists"),
        other => panic!("duplicate create: {other:?}"),
    }

    let pp = PatchParams::default();
    let merged = cms
        .patch("a", &pp, &Patch::Merge(json!({"data": {"m": "merge"}})))
        .await
        .expect("merge patch");
    assert_eq!(merged.data.as_ref().map(|d| d.len()), Some(2));
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/m", "value": "merge"},
        {"op": "replace", "path": "/data/m", "value": "json"}
    ]))
    .expect("json patch");
    let p = cms
        .patch("a", &pp, &Patch::<()>::Json(jp))
        .await
        .expect("json patch");
    assert_eq!(
        p.data.as_ref().and_then(|d| d.get("m")).map(String::as_str),
        Some("json")
    );
    let s = cms
        .patch(
            "a",
            &pp,
            &Patch::Strategic(json!({"data": {"s": "strategic"}})),
        )
        .await
        .expect("strategic patch");
    assert_eq!(s.data.as_ref().map(|d| d.len()), Some(3));
    let ssa = PatchParams::apply("kube-rs-test");
    let applied = cms
        .patch(
            "b",
            &ssa,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "b", "labels": {"app": "kube-rs"}}, "data": {"k": "v"}})),
        )
        .await
        .expect("server-side apply");
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"kube-rs-test".to_string()),
        "{managers:?}"
    );

    let listed = cms
        .list(&ListParams::default().labels("app=kube-rs"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 2);
    let page = cms
        .list(&ListParams::default().limit(1))
        .await
        .expect("page");
    assert_eq!(page.items.len(), 1);
    assert!(page.metadata.continue_.is_some());

    // Status and scale subresources of a Deployment.
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .expect("deployment");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    let scale = deps.get_scale("web").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    deps.patch_scale("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("patch scale");
    assert_eq!(
        deps.get("web")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.replicas),
        Some(3)
    );
    let st = deps
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": 7}})),
        )
        .await
        .expect("patch status");
    assert_eq!(st.status.and_then(|s| s.observed_generation), Some(7));

    // Discovery and the dynamic API see the same objects.
    let discovery = Discovery::new(c.clone()).run().await.expect("discovery");
    let (ar, _caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "Deployment")
        .expect("deployments discovered");
    let dynamic: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let obj = dynamic.get("web").await.expect("dynamic get");
    assert_eq!(obj.data["spec"]["replicas"], json!(3));

    cms.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    match cms.get("a").await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("get after delete: {other:?}"),
    }
}

type Stream = futures::stream::BoxStream<'static, watcher::Result<Event<ConfigMap>>>;

async fn next(s: &mut Stream) -> Event<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(20), s.try_next())
        .await
        .expect("watch event in time")
        .expect("watch ok")
        .expect("stream open")
}

/// Run a watcher in `config`'s mode and check it sees the initial objects, then a create, an
/// update and a delete, in order.
async fn watch_sees_changes(config: watcher::Config, ns: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = start(dir.path(), free_port());
    let c = client(dir.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    cms.create(&PostParams::default(), &cm("before", "0"))
        .await
        .expect("create");
    let mut stream: Stream = watcher::watcher(cms.clone(), config.labels("app=kube-rs")).boxed();
    // Initial listing: Init, InitApply(before), InitDone.
    let mut initial = Vec::new();
    loop {
        match next(&mut stream).await {
            Event::Init => {}
            Event::InitApply(o) => initial.push(o.metadata.name.unwrap_or_default()),
            Event::InitDone => break,
            other => panic!("unexpected event during the initial list: {other:?}"),
        }
    }
    assert_eq!(initial, vec!["before".to_string()]);
    cms.create(&PostParams::default(), &cm("after", "1"))
        .await
        .expect("create");
    cms.patch(
        "after",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patch");
    cms.delete("after", &DeleteParams::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match next(&mut stream).await {
            Event::Apply(o) => seen.push(format!(
                "apply {} {}",
                o.metadata.name.unwrap_or_default(),
                o.data.and_then(|d| d.get("v").cloned()).unwrap_or_default()
            )),
            Event::Delete(o) => {
                seen.push(format!("delete {}", o.metadata.name.unwrap_or_default()))
            }
            other => panic!("unexpected event: {other:?}"),
        }
    }
    assert_eq!(seen, vec!["apply after 1", "apply after 2", "delete after"]);
}

#[tokio::test]
async fn watcher_list_then_watch() {
    watch_sees_changes(watcher::Config::default(), "default").await;
}

#[tokio::test]
async fn watcher_streaming_list() {
    watch_sees_changes(watcher::Config::default().streaming_lists(), "default").await;
}
