//! Runtime escape classes from RELIABILITY.md check 20, plus volumes, limits and stats.
//! Anchors: CVE-2023-28642, CVE-2026-41579, CVE-2025-52565, CVE-2024-21626.

use runtime::cri::*;

use crate::common::{exited, log_lines, oci_archive_with, symlink, Fixture};
use crate::require_root;

/// An image whose `/proc`, `/dev` or `/etc/hosts` is a symlink (out of the rootfs, or into
/// procfs: CVE-2023-28642, CVE-2025-52565 class) gets nothing from it: the mount points' layer
/// above every image shadows those paths with plain directories and files, so the container
/// sees its own procfs, /dev and hosts file, and the host's core_pattern is untouched.
#[tokio::test]
async fn symlinked_proc_dev_and_etc_hosts_are_shadowed() {
    require_root!();
    let f = Fixture::new().await;
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").ok();
    let cases: [(&str, crate::common::Extra); 3] = [
        ("evil/proc:1", |b| symlink(b, "proc", "/tmp")),
        ("evil/dev:1", |b| symlink(b, "dev", "tmp")),
        ("evil/hosts:1", |b| {
            symlink(b, "etc/hosts", "/proc/sys/kernel/core_pattern")
        }),
    ];
    for (image, extra) in cases {
        let archive = oci_archive_with(f.dir.path(), image, extra);
        f.rt.import_image(&archive)
            .await
            .expect("import hostile image");
        let sb = f.sandbox("evil").await;
        let mut cfg = f.container(
            "c",
            "stat -f -c %T /proc /dev; head -1 /etc/hosts; ls -ld /proc /dev /etc/hosts",
        );
        cfg.image = image.into();
        let (st, log) = f.run(&sb, &cfg).await;
        assert_eq!(exited(&st).0, 0, "{image}: {log}");
        let out: Vec<String> = log_lines(&log).into_iter().map(|l| l.2).collect();
        assert_eq!(
            out[..3],
            ["proc", "tmpfs", "127.0.0.1\tlocalhost"],
            "{image}: {log}"
        );
        assert!(
            !out[3..].iter().any(|l| l.starts_with('l')),
            "{image}: {log}"
        );
        f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").ok(),
        core_pattern
    );
}

/// A volume whose destination leads, through a symlink of the image, into procfs is refused.
#[tokio::test]
async fn a_volume_destination_through_a_symlink_into_proc_refuses_to_start() {
    require_root!();
    let f = Fixture::new().await;
    let archive = oci_archive_with(f.dir.path(), "evil/volume:1", |b| {
        symlink(b, "data", "/proc/sys/kernel")
    });
    f.rt.import_image(&archive)
        .await
        .expect("import hostile image");
    let src = f.dir.path().join("volume-file");
    std::fs::write(&src, b"|/tmp/evil").expect("test setup");
    let sb = f.sandbox("evil").await;
    let mut cfg = f.container("c", "echo started");
    cfg.image = "evil/volume:1".into();
    cfg.mounts = vec![Mount {
        host_path: src,
        container_path: "/data/core_pattern".into(),
        readonly: true,
    }];
    let err =
        f.rt.create_container(&sb, &cfg)
            .await
            .expect_err("hostile image must not start");
    assert!(err.to_string().contains("procfs or sysfs"), "{err}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn only_stdio_fds_and_no_escape_through_proc_fd_workdir() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("fds").await;
    let (st, log) = f.run(&sb, &f.container("c", "ls /proc/$$/fd; true")).await;
    assert_eq!(exited(&st).0, 0, "{log}");
    let fds: Vec<String> = log_lines(&log)
        .into_iter()
        .filter(|l| l.0 == "stdout")
        .map(|l| l.2)
        .collect();
    assert_eq!(fds, ["0", "1", "2"], "leaked fds: {log}");
    for n in 3..8 {
        let mut cfg = f.container(&format!("w{n}"), "pwd");
        cfg.working_dir = Some(format!("/proc/self/fd/{n}"));
        let id = f.rt.create_container(&sb, &cfg).await.expect("create");
        match f.rt.start_container(&id).await {
            Err(_) => assert_eq!(
                exited(&f.rt.container_status(&id).await.expect("status")).1,
                "StartError"
            ),
            Ok(()) => panic!("workdir /proc/self/fd/{n} started"),
        }
    }
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn volumes_resources_and_stats() {
    require_root!();
    let f = Fixture::new().await;
    let vol = f.dir.path().join("vol");
    std::fs::create_dir(&vol).expect("mkdir vol");
    let ro = f.dir.path().join("config.txt");
    std::fs::write(&ro, "from-host\n").expect("write");
    let sb = f.sandbox("vols").await;
    let mut cfg = f.container("c", "echo hi > /data/out; cat /etc/app/config.txt; echo x >> /etc/app/config.txt || echo ro-ok; sleep 1000");
    cfg.mounts = vec![
        Mount {
            host_path: vol.clone(),
            container_path: "/data".into(),
            readonly: false,
        },
        Mount {
            host_path: ro.clone(),
            container_path: "/etc/app/config.txt".into(),
            readonly: true,
        },
    ];
    cfg.resources = Resources {
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        memory_limit_bytes: Some(64 << 20),
        pids_limit: Some(64),
        oom_score_adj: None,
    };
    let id = f.rt.create_container(&sb, &cfg).await.expect("create");
    f.rt.start_container(&id).await.expect("start");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        std::fs::read_to_string(vol.join("out")).expect("volume write visible on host"),
        "hi\n"
    );
    assert_eq!(std::fs::read_to_string(&ro).expect("ro"), "from-host\n");
    let log = std::fs::read_to_string(cfg.log_path.as_ref().expect("log")).expect("log");
    assert!(
        log.contains("stdout F from-host") && log.contains("stdout F ro-ok"),
        "{log}"
    );
    let stats = f.rt.container_stats(&id).await.expect("stats");
    assert!(
        stats.pids >= 1 && stats.memory_working_set_bytes > 0,
        "{stats:?}"
    );
    let cg = runtime::cgroups::Cgroups::detect();
    for (ctrl, dir) in cg.dirs(&f.cgroup_parent) {
        let pod = std::fs::read_dir(&dir)
            .expect("pod cgroups")
            .flatten()
            .find(|e| e.path().is_dir())
            .expect("pod cgroup")
            .path();
        let c = pod.join(&id.0);
        let read = |file: &str| {
            std::fs::read_to_string(c.join(file))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        match ctrl {
            "cpu" => {
                assert_eq!(read("cpu.shares"), "512");
                assert_eq!(read("cpu.cfs_quota_us"), "50000");
            }
            "memory" => assert_eq!(read("memory.limit_in_bytes"), (64u64 << 20).to_string()),
            "pids" => assert_eq!(read("pids.max"), "64"),
            "unified" => {
                assert_eq!(read("cpu.max"), "50000 100000");
                assert_eq!(read("memory.max"), (64u64 << 20).to_string());
                assert_eq!(read("pids.max"), "64");
            }
            _ => {}
        }
    }
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}
