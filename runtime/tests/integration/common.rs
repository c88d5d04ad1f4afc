//! Fixtures: a busybox image built at test time from Debian's busybox-static, a runtime on a
//! temporary data dir with its own cgroup parent, and cleanup that runs even on panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::cri::*;
use runtime::{Runtime, RuntimeConfig};
use sha2::{Digest, Sha256};

#[macro_export]
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("runtime integration tests need root (CI=true)");
            }
            eprintln!("skipping: not root");
            return;
        }
    };
}

pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "id", "hostname", "nc", "ls", "mkdir", "touch", "grep", "head",
    "dd", "wc", "env", "pwd", "true", "false", "kill", "ps", "readlink", "stat", "printf", "test",
    "[", "unshare", "mkfifo", "tty", "stty",
];

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    if !p.exists() {
        let st = std::process::Command::new("apt-get")
            .args(["install", "-y", "busybox-static"])
            .status();
        assert!(
            st.map(|s| s.success()).unwrap_or(false),
            "apt-get install busybox-static failed"
        );
    }
    p
}

pub type Extra = fn(&mut tar::Builder<Vec<u8>>);

/// Appends a symlink entry (used to build hostile images).
pub fn symlink(b: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, name, target).expect("symlink");
}

/// The single rootfs layer as an uncompressed tar, with `extra` entries appended.
pub fn layer_tar(extra: Extra) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, name: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty()).expect("dir");
    };
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        dir(&mut b, d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    let bb = std::fs::read(busybox()).expect("read busybox");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bb.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bb[..])
        .expect("busybox");
    for a in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .expect("link");
    }
    for (name, content) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        b.append_data(&mut h, name, content.as_bytes())
            .expect("file");
    }
    extra(&mut b);
    b.into_inner().expect("finish layer")
}

fn config_json(diff_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin", "IMAGE_VAR=from-image"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .expect("config")
}

fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data).expect("add");
}

/// An OCI image layout archive with a gzip layer, named `name`.
pub fn oci_archive(dir: &Path, name: &str) -> PathBuf {
    oci_archive_with(dir, name, |_| {})
}

/// Like `oci_archive`, with extra layer entries.
pub fn oci_archive_with(dir: &Path, name: &str, extra: Extra) -> PathBuf {
    let layer = layer_tar(extra);
    let diff_id = sha(&layer);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let config = config_json(&diff_id);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&gz), "size": gz.len()}]
    }))
    .expect("manifest");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"}}]
    }))
    .expect("index");
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add(&mut b, "index.json", &index);
    for blob in [&gz, &config, &manifest] {
        add(&mut b, &format!("blobs/sha256/{}", &sha(blob)[7..]), blob);
    }
    let p = dir.join(format!("oci-{}.tar", &sha(name.as_bytes())[7..19]));
    std::fs::write(&p, b.into_inner().expect("tar")).expect("write archive");
    p
}

/// A `docker save` archive with an uncompressed layer, tagged `tag`.
pub fn docker_archive(dir: &Path, tag: &str) -> PathBuf {
    let layer = layer_tar(|_| {});
    let config = config_json(&sha(&layer));
    let cfg_name = format!("{}.json", &sha(&config)[7..]);
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["abc/layer.tar"]}]),
    )
    .expect("manifest");
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "manifest.json", &manifest);
    add(&mut b, &cfg_name, &config);
    add(&mut b, "abc/layer.tar", &layer);
    let p = dir.join("docker.tar");
    std::fs::write(&p, b.into_inner().expect("tar")).expect("write archive");
    p
}

pub struct Fixture {
    pub rt: Runtime,
    pub dir: tempfile::TempDir,
    pub cgroup_parent: String,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::new_with(false).await
    }

    /// With `spare_shim` on or off.
    pub async fn new_with(spare_shim: bool) -> Fixture {
        let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
        let cgroup_parent = format!("k1s-test-{}", rand::random::<u32>());
        let rt = Self::open_with(dir.path(), &cgroup_parent, spare_shim).await;
        let archive = oci_archive(dir.path(), "busybox:test");
        rt.import_image(&archive)
            .await
            .expect("import busybox image");
        Fixture {
            rt,
            dir,
            cgroup_parent,
        }
    }

    pub async fn open(data_dir: &Path, cgroup_parent: &str) -> Runtime {
        Self::open_with(data_dir, cgroup_parent, false).await
    }

    pub async fn open_with(data_dir: &Path, cgroup_parent: &str, spare_shim: bool) -> Runtime {
        let mut cfg = RuntimeConfig::new(data_dir.join("data"));
        cfg.shim_exe = PathBuf::from(env!("CARGO_BIN_EXE_k1s-runtime-test"));
        cfg.cgroup_parent = cgroup_parent.to_string();
        cfg.spare_shim = spare_shim;
        Runtime::new(cfg).await.expect("open runtime")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn sandbox(&self, name: &str) -> SandboxId {
        self.sandbox_with(name, None).await
    }

    pub async fn sandbox_with(&self, name: &str, handler: Option<&str>) -> SandboxId {
        let cfg = PodSandboxConfig {
            runtime_handler: handler.map(str::to_string),
            name: name.into(),
            namespace: "default".into(),
            uid: format!("uid-{name}-{}", rand::random::<u32>()),
            hostname: name.into(),
            dns: "nameserver 10.43.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n".into(),
            hosts: "127.0.0.1\tlocalhost\n".into(),
            ..Default::default()
        };
        self.rt
            .run_pod_sandbox(&cfg)
            .await
            .expect("run pod sandbox")
    }

    pub fn container(&self, name: &str, script: &str) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image: "busybox:test".into(),
            command: vec!["sh".into(), "-c".into(), script.into()],
            log_path: Some(self.dir.path().join("logs").join(format!("{name}.log"))),
            security: SecurityConfig {
                no_new_privs: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Creates and starts a container and waits for it to exit; returns status and log.
    pub async fn run(&self, sb: &SandboxId, cfg: &ContainerConfig) -> (ContainerStatus, String) {
        let id = self
            .rt
            .create_container(sb, cfg)
            .await
            .expect("create container");
        let mut rx = self.rt.events();
        self.rt.start_container(&id).await.expect("start container");
        let st = self.wait_exit(&id, &mut rx).await;
        let log = cfg
            .log_path
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default();
        (st, log)
    }

    pub async fn wait_exit(
        &self,
        id: &ContainerId,
        rx: &mut tokio::sync::broadcast::Receiver<ContainerExitEvent>,
    ) -> ContainerStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let st = self.rt.container_status(id).await.expect("status");
            if matches!(st.state, ContainerState::Exited { .. }) {
                return st;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(_) => {}
                Err(_) => panic!("container {id} did not exit in time: {:?}", st.state),
            }
        }
    }
}

impl Drop for Fixture {
    /// Best-effort cleanup even after a failed assertion: shut shims down, drop cgroups.
    fn drop(&mut self) {
        let sbx = runtime::layout::sandboxes_dir(&self.data_dir());
        let spares = runtime::layout::spares_dir(&self.data_dir());
        let shims = [sbx, spares]
            .into_iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten());
        for e in shims {
            let Ok((_fd, addr)) = runtime::layout::socket_addr(&e.path().join("shim.sock")) else {
                continue;
            };
            if let Ok(mut s) = std::os::unix::net::UnixStream::connect(addr) {
                let _ = s.write_all(b"{\"op\":\"shutdown\"}\n");
                let mut buf = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut buf);
            }
            for ns in ["net", "ipc", "uts"] {
                let _ = nix::mount::umount2(
                    &e.path().join("ns").join(ns),
                    nix::mount::MntFlags::MNT_DETACH,
                );
            }
        }
        let cg = runtime::cgroups::Cgroups::detect();
        let _ = cg.remove(&self.cgroup_parent);
        // State kept in /run (where /run is a tmpfs) is not below the test's directory.
        if let Some(state) = runtime::layout::external_state_dir(&self.data_dir()) {
            let _ = std::fs::remove_dir_all(state);
        }
    }
}

pub fn log_lines(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let ts = it.next().unwrap_or_default();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
                "bad timestamp in {l:?}"
            );
            let stream = it.next().unwrap_or_default().to_string();
            let tag = it.next().unwrap_or_default().to_string();
            (stream, tag, it.next().unwrap_or_default().to_string())
        })
        .collect()
}

pub fn exited(st: &ContainerStatus) -> (i32, String, String) {
    match &st.state {
        ContainerState::Exited {
            exit_code,
            reason,
            message,
            ..
        } => (*exit_code, reason.clone(), message.clone()),
        other => panic!("not exited: {other:?}"),
    }
}
