//! Registry pulls: from Debian's docker-registry (by tag, by digest, basic auth) and from a
//! small in-process registry (bearer token flow, manifest list, zstd layer, bad content).
//! Pulled images must equal imported ones and run containers.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Instant;

use runtime::image::pull::{host_platform, DOCKER_LIST, OCI_INDEX, OCI_MANIFEST};
use runtime::image::{pull, ImageStore, PullOptions, RegistryAuth, RegistryConfig};
use runtime::Error;
use sha2::{Digest, Sha256};

use crate::common::{exited, layer_tar, Fixture};
use crate::require_root;
use crate::test_registry::{Files, LocalRegistry, TestRegistry, PASSWORD, USER};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Runs `echo` in a container of `image`; asserts it printed and exited 0.
async fn runs(f: &Fixture, image: &str, name: &str) {
    let sb = f.sandbox(name).await;
    let mut cfg = f.container(name, "echo pulled-image-runs; id -u");
    cfg.image = image.to_string();
    let (st, log) = f.run(&sb, &cfg).await;
    assert_eq!(exited(&st).0, 0, "{log}");
    assert!(log.contains("pulled-image-runs"), "{log}");
}

fn blob_inodes(f: &Fixture) -> Vec<(String, u64, i64)> {
    let dir = f.data_dir().join("images/blobs/sha256");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("blobs dir")
        .map(|e| {
            let e = e.expect("entry");
            let m = e.metadata().expect("stat");
            (
                e.file_name().to_string_lossy().into_owned(),
                m.ino(),
                m.mtime_nsec(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn pull_by_tag_and_digest_matches_import_and_runs() {
    require_root!();
    let Some(reg) = LocalRegistry::start(None) else {
        return;
    };
    let f = Fixture::new().await;
    let tag_ref = format!("{}/busybox:latest", reg.addr);
    let t0 = Instant::now();
    let rep =
        f.rt.pull_image_report(&tag_ref, &PullOptions::default())
            .await
            .expect("pull by tag");
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "pulled {} bytes in {secs:.3} s ({:.1} MB/s including unpack)",
        rep.downloaded_bytes,
        rep.downloaded_bytes as f64 / secs / 1e6
    );
    assert_eq!(rep.downloaded_blobs, 2, "config and one layer");
    assert_eq!(rep.record.repo_tags, vec![tag_ref.clone()]);
    let by_digest = format!("{}/busybox@{}", reg.addr, rep.manifest_digest);
    assert_eq!(rep.record.repo_digests, vec![by_digest.clone()]);

    // The same archive imported into another store gives the same image.
    let other = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let store = ImageStore::open(other.path()).expect("open store");
    let imported = store
        .import_archive(&reg.pushed_archive())
        .expect("import pushed archive");
    let imp = &imported[0];
    assert_eq!(
        (&imp.id, &imp.layers, &imp.config, imp.size),
        (
            &rep.record.id,
            &rep.record.layers,
            &rep.record.config,
            rep.record.size
        )
    );

    runs(&f, &tag_ref, "by-tag").await;

    // Again, and by digest: nothing is downloaded, no blob file is rewritten.
    let before = blob_inodes(&f);
    let again =
        f.rt.pull_image_report(&by_digest, &PullOptions::default())
            .await
            .expect("pull by digest");
    assert_eq!((again.downloaded_blobs, again.reused_blobs), (0, 2));
    assert_eq!(again.record.id, rep.record.id);
    assert_eq!(blob_inodes(&f), before);
    let st =
        f.rt.image_status(&by_digest)
            .await
            .expect("status")
            .expect("known by digest");
    assert_eq!(st.id, rep.record.id);
    runs(&f, &by_digest, "by-digest").await;

    let missing =
        f.rt.pull_image(&format!("{}/busybox:no-such-tag", reg.addr))
            .await
            .expect_err("missing tag");
    assert!(
        matches!(missing, Error::ManifestNotFound { .. }),
        "{missing:?}"
    );
    assert!(missing.to_string().ends_with(": not found"), "{missing}");
    let unknown_digest = format!("{}/busybox@sha256:{}", reg.addr, "0".repeat(64));
    let err =
        f.rt.pull_image(&unknown_digest)
            .await
            .expect_err("unknown digest");
    assert!(matches!(err, Error::ManifestNotFound { .. }), "{err:?}");

    // skopeo's zstd layer into a fresh store: a new blob, the same diff id and image.
    let zstd_ref = reg.push_zstd("zstd");
    let f2 = Fixture::new().await;
    let z = f2
        .rt
        .pull_image_report(&zstd_ref, &PullOptions::default())
        .await
        .expect("pull zstd variant");
    assert_eq!(z.downloaded_blobs, 2);
    assert_eq!(z.record.id, imp.id);
    assert_eq!(z.record.layers[0].diff_id, imp.layers[0].diff_id);
    assert_ne!(z.record.layers[0].blob, imp.layers[0].blob);
    runs(&f2, &zstd_ref, "skopeo-zstd").await;

    // Unreachable: a port nobody listens on fails fast.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    let t0 = Instant::now();
    let err =
        f.rt.pull_image(&format!("127.0.0.1:{port}/busybox"))
            .await
            .expect_err("unreachable");
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(t0.elapsed().as_secs() < 5);
}

#[tokio::test]
async fn pull_with_basic_auth() {
    require_root!();
    let Some(reg) = LocalRegistry::start(Some(("k1s-user", "k1s-pass"))) else {
        return;
    };
    let f = Fixture::new().await;
    let r = format!("{}/busybox:latest", reg.addr);
    let err = f.rt.pull_image(&r).await.expect_err("no credentials");
    assert!(matches!(err, Error::RegistryUnauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("unauthorized") && msg.contains("none were given"),
        "{msg}"
    );
    let wrong = PullOptions {
        auth: Some(RegistryAuth::new("k1s-user", "wrong")),
    };
    let err =
        f.rt.pull_image_with(&r, &wrong)
            .await
            .expect_err("wrong password");
    assert!(
        err.to_string()
            .contains("refused the credentials of \"k1s-user\""),
        "{err}"
    );
    let good = PullOptions {
        auth: Some(RegistryAuth::new("k1s-user", "k1s-pass")),
    };
    let st =
        f.rt.pull_image_with(&r, &good)
            .await
            .expect("pull with credentials");
    assert_eq!(st.repo_tags, vec![r.clone()]);
    runs(&f, &r, "auth").await;
    assert!(
        !f.data_dir()
            .join("images/tmp")
            .read_dir()
            .expect("tmp")
            .any(|_| true),
        "temporary files left behind"
    );
}

fn file(ct: &str, body: Vec<u8>) -> (String, Vec<u8>) {
    (ct.to_string(), body)
}

/// A manifest list (host arch + another) over an OCI manifest with a zstd layer; plus broken
/// tags. Returns the files and the zstd layer's digest.
fn multi_arch_files() -> (Files, String, String) {
    let layer = layer_tar(|_| {});
    let zst =
        ruzstd::encoding::compress_to_vec(&layer[..], ruzstd::encoding::CompressionLevel::Fastest);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": host_platform().0, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]}
    }))
    .expect("config");
    let manifest = |config_type: &str, layer_digest: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": layer_digest, "size": zst.len()}]
        }))
        .expect("manifest")
    };
    let cfg_type = "application/vnd.oci.image.config.v1+json";
    let host = manifest(cfg_type, &sha(&zst));
    let missing_layer = format!("sha256:{}", "f".repeat(64));
    let foreign = manifest(cfg_type, &missing_layer);
    let (arch, _) = host_platform();
    let other = if arch == "arm64" { "amd64" } else { "arm64" };
    let entry = |m: &[u8], arch: &str, variant: Option<&str>| {
        let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": sha(m), "size": m.len(), "platform": p})
    };
    // The other architecture first: picking the first entry would fail on its missing layer.
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [entry(&foreign, other, (other == "arm64").then_some("v8")), entry(&host, arch, None)]
    }))
    .expect("list");
    let s390 = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [entry(&foreign, "s390x", None), entry(&foreign, arch, None).as_object().map(|o| {
            let mut o = o.clone();
            o["platform"]["os"] = "windows".into();
            serde_json::Value::Object(o)
        }).expect("object")]
    }))
    .expect("index");
    // Content served under a digest it does not have.
    let lying_digest = sha(b"not the layer");
    let lying = manifest(cfg_type, &lying_digest);
    let helm = manifest("application/vnd.cncf.helm.config.v1+json", &sha(&zst));
    let m = "/v2/multi/app/manifests";
    let b = "/v2/multi/app/blobs";
    let mut files = HashMap::new();
    files.insert(format!("{m}/v1"), file(DOCKER_LIST, list.clone()));
    files.insert(format!("{m}/{}", sha(&list)), file(DOCKER_LIST, list));
    for x in [&host, &foreign] {
        files.insert(format!("{m}/{}", sha(x)), file(OCI_MANIFEST, x.clone()));
    }
    files.insert(format!("{m}/s390only"), file(OCI_INDEX, s390));
    files.insert(format!("{m}/lying"), file(OCI_MANIFEST, lying));
    files.insert(format!("{m}/helm"), file(OCI_MANIFEST, helm));
    files.insert(
        format!("{b}/{}", sha(&config)),
        file("application/octet-stream", config.clone()),
    );
    files.insert(
        format!("{b}/{}", sha(&zst)),
        file("application/octet-stream", zst.clone()),
    );
    files.insert(
        format!("{b}/{lying_digest}"),
        file("application/octet-stream", zst),
    );
    (files, sha(&host), lying_digest)
}

#[tokio::test]
async fn bearer_token_manifest_list_and_zstd_layer() {
    require_root!();
    let (files, host_manifest, lying_digest) = multi_arch_files();
    let reg = TestRegistry::start(files).await;
    let f = Fixture::new().await;
    let r = format!("{}/multi/app:v1", reg.addr);

    let err =
        f.rt.pull_image(&r)
            .await
            .expect_err("token server wants credentials");
    assert!(matches!(err, Error::RegistryUnauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("none were given"), "{err}");

    let creds = PullOptions {
        auth: Some(RegistryAuth::new(USER, PASSWORD)),
    };
    let rep =
        f.rt.pull_image_report(&r, &creds)
            .await
            .expect("pull via token");
    assert_eq!(rep.downloaded_blobs, 2);
    assert!(reg.state.lock().expect("state").token_gets >= 1);
    let st =
        f.rt.image_status(&r)
            .await
            .expect("status")
            .expect("pulled");
    assert_eq!(st.repo_tags, vec![r.clone()]);
    runs(&f, &r, "zstd").await;

    // A second pull of the list, and of the platform manifest by digest: no blob GETs.
    let gets = reg.state.lock().expect("state").blob_gets.len();
    let again =
        f.rt.pull_image_report(&r, &creds)
            .await
            .expect("pull again");
    assert_eq!(again.downloaded_blobs, 0);
    let pinned = format!("{}/multi/app@{host_manifest}", reg.addr);
    f.rt.pull_image_with(&pinned, &creds)
        .await
        .expect("pull by digest");
    assert_eq!(reg.state.lock().expect("state").blob_gets.len(), gets);

    // Two pulls at once into a fresh store download each blob once.
    let other = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let store = Arc::new(ImageStore::open(other.path()).expect("open store"));
    let gets = {
        let mut st = reg.state.lock().expect("state");
        // Slow blobs, so both pulls are past their manifests before any blob is stored.
        st.blob_delay = std::time::Duration::from_millis(300);
        st.blob_gets.len()
    };
    let cfg = RegistryConfig::default();
    let (a, b) = tokio::join!(
        pull::pull(store.clone(), &r, &cfg, &creds),
        pull::pull(store.clone(), &r, &cfg, &creds)
    );
    let (a, b) = (a.expect("first pull"), b.expect("second pull"));
    assert_eq!(a.downloaded_blobs + b.downloaded_blobs, 2);
    assert_eq!(reg.state.lock().expect("state").blob_gets.len() - gets, 2);
    assert_eq!(a.record, b.record);

    let err =
        f.rt.pull_image_with(&format!("{}/multi/app:lying", reg.addr), &creds)
            .await
            .expect_err("digest mismatch");
    assert!(matches!(err, Error::PullDigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    let store = ImageStore::open(&f.data_dir()).expect("open store");
    assert!(!store.has_blob(&lying_digest), "mismatching blob stored");
    assert!(
        !f.data_dir()
            .join("images/tmp")
            .read_dir()
            .expect("tmp")
            .any(|_| true),
        "temporary files left behind"
    );

    let err =
        f.rt.pull_image_with(&format!("{}/multi/app:helm", reg.addr), &creds)
            .await
            .expect_err("helm chart");
    assert!(matches!(err, Error::UnsupportedMediaType { .. }), "{err:?}");
    assert!(err.to_string().contains("vnd.cncf.helm.config"), "{err}");

    let err =
        f.rt.pull_image_with(&format!("{}/multi/app:s390only", reg.addr), &creds)
            .await
            .expect_err("no platform");
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err:?}");
    assert!(err.to_string().contains("linux/"), "{err}");

    let err =
        f.rt.pull_image_with(&format!("{}/multi/app:v2", reg.addr), &creds)
            .await
            .expect_err("missing tag");
    assert!(err.to_string().ends_with("not found"), "{err}");
}

#[tokio::test]
async fn https_registry_behind_an_endpoint_with_a_configured_ca() {
    require_root!();
    let (files, _, _) = multi_arch_files();
    let (reg, ca_pem) = TestRegistry::start_tls(files).await;
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write CA");
    let store = Arc::new(ImageStore::open(&dir.path().join("data")).expect("open store"));
    // A registry name that is not loopback, whose API is served over HTTPS by the endpoint.
    let r = "registry.example.test/multi/app:v1";
    let mut cfg = RegistryConfig::default();
    cfg.endpoints.insert(
        "registry.example.test".into(),
        format!("https://{}/", reg.addr),
    );
    let creds = PullOptions {
        auth: Some(RegistryAuth::new(USER, PASSWORD)),
    };
    let err = pull::pull(store.clone(), r, &cfg, &creds)
        .await
        .expect_err("unknown CA");
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );

    cfg.ca_certs.push(ca);
    let rep = pull::pull(store.clone(), r, &cfg, &creds)
        .await
        .expect("pull over https");
    assert_eq!(rep.downloaded_blobs, 2);
    assert_eq!(rep.record.repo_tags, vec![r.to_string()]);
    assert!(
        rep.record.repo_digests[0].starts_with("registry.example.test/multi/app@sha256:"),
        "{:?}",
        rep.record.repo_digests
    );
    assert!(reg.state.lock().expect("state").token_gets >= 1);
}
