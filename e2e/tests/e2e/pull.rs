//! Registry pulls end to end: Debian's docker-registry runs on 127.0.0.1 inside the server's
//! network namespace (scripts/local-registry.sh, stopped by its PID file); a pod whose image
//! (busybox recompressed to zstd by skopeo) is only there is pulled by the kubelet (plain HTTP
//! for loopback registries) and runs,
//! a missing tag gives ErrImagePull/ImagePullBackOff with the registry's "not found", and
//! `k1s image pull|ls|inspect|rm` work on the data dir of the running server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::harness::{k1s_bin, kubectl_versions, require_root, workspace_root, Cluster};

/// The script's registry inside the cluster's network namespace.
struct Registry {
    dir: PathBuf,
    addr: String,
}

impl Registry {
    /// Starts it and pushes `archive` as `busybox:latest`.
    fn start(c: &Cluster, archive: &str) -> Result<Option<Registry>> {
        Self::start_with(c, archive, &[])
    }

    /// As `start`, with extra environment for the script (e.g. basic-auth credentials).
    fn start_with(c: &Cluster, archive: &str, env: &[&str]) -> Result<Option<Registry>> {
        let have = |b: &str| Path::new("/usr/bin").join(b).exists();
        if !have("docker-registry") || !have("skopeo") {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("docker-registry and skopeo are needed: run scripts/install-test-deps.sh");
            }
            eprintln!("skipping: docker-registry or skopeo missing");
            return Ok(None);
        }
        let dir = c.dir.path().join("registry");
        let script = workspace_root().join("scripts/local-registry.sh");
        let dir_s = dir.display().to_string();
        let script_s = script.display().to_string();
        let image = format!("K1S_BUSYBOX_IMAGE={archive}");
        let mut args: Vec<&str> = env.to_vec();
        args.extend_from_slice(&[&image, "bash", &script_s, "start", &dir_s]);
        let o = c.in_netns(Path::new("/usr/bin/env"), &args, None)?;
        if !o.status.success() {
            bail!(
                "local-registry.sh start failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let addr = String::from_utf8_lossy(&o.stdout).trim().to_string();
        Ok(Some(Registry { dir, addr }))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(workspace_root().join("scripts/local-registry.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

fn k1s(c: &Cluster, args: &[&str]) -> Result<(bool, String, String)> {
    let o = c.in_netns(&k1s_bin()?, args, None)?;
    Ok((
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    ))
}

fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {image}\n    imagePullPolicy: Always\n    command: [\"sh\", \"-c\", \"echo from-registry\"]\n"
    )
}

#[test]
fn pods_run_images_pulled_from_a_loopback_registry() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let Ok(archive) = std::env::var("K1S_BUSYBOX_IMAGE") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("K1S_BUSYBOX_IMAGE is not set: run the tests through scripts/test.sh");
        }
        eprintln!("skipping: K1S_BUSYBOX_IMAGE not set");
        return Ok(());
    };
    let Some(v) = kubectl_versions().into_iter().next() else {
        return Ok(());
    };
    let c = Cluster::start(&v, &[])?;
    let Some(reg) = Registry::start(&c, &archive)? else {
        return Ok(());
    };
    // The server imported the same image from the archive at start; push it again with a zstd
    // layer (a blob the store does not have) so the kubelet has to download it.
    let image = format!("{}/busybox:zstd", reg.addr);
    // Two steps, so skopeo cannot substitute the gzip blob the registry already has.
    let layout = format!("oci:{}/zstd:latest", c.dir.path().display());
    let docker = format!("docker://{image}");
    let src = format!("oci-archive:{archive}");
    for args in [
        vec![
            "copy",
            "-q",
            "--dest-compress-format",
            "zstd",
            "--dest-compress",
            &src,
            &layout,
        ],
        vec![
            "copy",
            "-q",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &layout,
            &docker,
        ],
    ] {
        let o = c.in_netns(Path::new("/usr/bin/skopeo"), &args, None)?;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    c.apply(&pod("pulled", &image))?;
    c.wait_for("pod Succeeded", Duration::from_secs(90), || {
        let phase = c.kubectl(&["get", "pod", "pulled", "-o", "jsonpath={.status.phase}"])?;
        Ok(phase == "Succeeded")
    })?;
    assert_eq!(c.kubectl(&["logs", "pulled"])?.trim(), "from-registry");
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=pulled",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ])?;
    assert!(
        events.contains(&format!("Pulling: Pulling image \"{image}\""))
            && events.contains(&format!("Pulled: Successfully pulled image \"{image}\"")),
        "{events}"
    );

    let missing = format!("{}/busybox:no-such-tag", reg.addr);
    c.apply(&pod("missing", &missing))?;
    c.wait_for("ImagePullBackOff", Duration::from_secs(60), || {
        let w = c.kubectl(&[
            "get",
            "pod",
            "missing",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
        ])?;
        Ok(w == "ErrImagePull" || w == "ImagePullBackOff")
    })?;
    let msg = c.kubectl(&[
        "get",
        "pod",
        "missing",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.message}",
    ])?;
    assert!(
        msg.contains(&format!("failed to pull {missing}: not found")),
        "{msg}"
    );

    // The CLI on the running server's data dir.
    let data = c.dir.path().join("data").display().to_string();
    let (ok, out, err) = k1s(&c, &["image", "pull", "--data-dir", &data, &image])?;
    assert!(ok, "{err}");
    assert!(out.contains("(0 of 2 blobs downloaded"), "{out}");
    let gz = format!("{}/busybox:latest", reg.addr);
    let (ok, out, err) = k1s(&c, &["image", "pull", "--data-dir", &data, &gz])?;
    assert!(ok && out.contains("(0 of 2 blobs downloaded"), "{out}{err}");
    let (ok, out, _) = k1s(&c, &["image", "ls", "--data-dir", &data])?;
    assert!(ok && out.contains(&image), "{out}");
    let (ok, out, err) = k1s(&c, &["image", "inspect", "--data-dir", &data, &image])?;
    assert!(ok, "{err}");
    let rec: serde_json::Value = serde_json::from_str(&out)?;
    let digests = rec["repo_digests"].to_string();
    assert!(
        digests.contains(&format!("{}/busybox@sha256:", reg.addr)),
        "{rec}"
    );
    let (ok, _, err) = k1s(&c, &["image", "rm", "--data-dir", &data, &image])?;
    assert!(ok, "{err}");
    let (ok, _, err) = k1s(&c, &["image", "inspect", "--data-dir", &data, &image])?;
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = k1s(&c, &["image", "pull", "--data-dir", &data, &missing])?;
    assert!(!ok && err.contains("not found"), "{err}");
    Ok(())
}

/// imagePullSecrets: a registry with basic auth refuses a pod without credentials
/// (ErrImagePull, "unauthorized"), and runs it with a docker-registry Secret named by the pod
/// or inherited from its ServiceAccount.
#[test]
fn image_pull_secrets_authenticate_to_the_registry() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let Ok(archive) = std::env::var("K1S_BUSYBOX_IMAGE") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("K1S_BUSYBOX_IMAGE is not set: run the tests through scripts/test.sh");
        }
        return Ok(());
    };
    let Some(v) = kubectl_versions().into_iter().next() else {
        return Ok(());
    };
    let c = Cluster::start(&v, &[])?;
    let Some(reg) = Registry::start_with(
        &c,
        &archive,
        &[
            "K1S_REGISTRY_USER=puller",
            "K1S_REGISTRY_PASSWORD=s3cret-pw",
        ],
    )?
    else {
        return Ok(());
    };
    let image = format!("{}/busybox:latest", reg.addr);
    let waiting = |name: &str| -> Result<(String, String)> {
        let r = c.kubectl(&[
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
        ])?;
        let m = c.kubectl(&[
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.message}",
        ])?;
        Ok((r, m))
    };
    c.apply(&pod("anonymous", &image))?;
    c.wait_for(
        "ErrImagePull without credentials",
        Duration::from_secs(60),
        || {
            let (r, _) = waiting("anonymous")?;
            Ok(r == "ErrImagePull" || r == "ImagePullBackOff")
        },
    )?;
    let (_, msg) = waiting("anonymous")?;
    assert!(msg.to_lowercase().contains("unauthorized"), "{msg}");

    c.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={}", reg.addr),
        "--docker-username=puller",
        "--docker-password=s3cret-pw",
    ])?;
    let with_secret = pod("with-secret", &image)
        .replace("spec:\n", "spec:\n  imagePullSecrets: [{name: regcred}]\n");
    c.apply(&with_secret)?;
    // The default ServiceAccount carries the secret for pods that name none.
    c.kubectl(&[
        "patch",
        "serviceaccount",
        "default",
        "-p",
        r#"{"imagePullSecrets":[{"name":"regcred"}]}"#,
    ])?;
    c.apply(&pod("via-sa", &image))?;
    let inherited = c.kubectl(&[
        "get",
        "pod",
        "via-sa",
        "-o",
        "jsonpath={.spec.imagePullSecrets[0].name}",
    ])?;
    assert_eq!(inherited, "regcred");
    for name in ["with-secret", "via-sa"] {
        c.wait_for(
            &format!("{name} Succeeded"),
            Duration::from_secs(90),
            || {
                let phase = c.kubectl(&["get", "pod", name, "-o", "jsonpath={.status.phase}"])?;
                Ok(phase == "Succeeded")
            },
        )?;
        assert_eq!(c.kubectl(&["logs", name])?.trim(), "from-registry");
    }
    Ok(())
}
