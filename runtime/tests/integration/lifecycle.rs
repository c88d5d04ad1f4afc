//! Daemon restarts: shims outlive the `Runtime` and are re-adopted with the same PIDs;
//! removal leaves no cgroups, mounts or processes behind.

use runtime::cri::*;

use crate::common::{exited, Fixture};
use crate::require_root;

#[tokio::test]
async fn readoption_keeps_pids_and_sees_exits_while_down() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("adopt").await;
    let long =
        f.rt.create_container(&sb, &f.container("long", "sleep 1000"))
            .await
            .expect("create");
    f.rt.start_container(&long).await.expect("start");
    let short =
        f.rt.create_container(&sb, &f.container("short", "sleep 0.5; exit 7"))
            .await
            .expect("create");
    f.rt.start_container(&short).await.expect("start");
    let ContainerState::Running { pid, .. } =
        f.rt.container_status(&long).await.expect("status").state
    else {
        panic!("not running");
    };
    let shim_pid = f.rt.pod_sandbox_status(&sb).await.expect("status").shim_pid;

    // "Restart the daemon": a new Runtime over the same data dir.
    let rt2 = Fixture::open(f.dir.path(), &f.cgroup_parent).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let st = rt2
        .container_status(&long)
        .await
        .expect("status after restart");
    assert!(
        matches!(st.state, ContainerState::Running { pid: p, .. } if p == pid),
        "{st:?}"
    );
    let sst = rt2.pod_sandbox_status(&sb).await.expect("sandbox");
    assert_eq!((sst.state, sst.shim_pid), (SandboxState::Ready, shim_pid));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !matches!(
        rt2.container_status(&short).await.expect("short").state,
        ContainerState::Exited { .. }
    ) {
        assert!(
            std::time::Instant::now() < deadline,
            "short container never exited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (code, _, _) = exited(&rt2.container_status(&short).await.expect("short"));
    assert_eq!(code, 7);
    assert_eq!(rt2.list_containers().await.expect("list").len(), 2);

    let mut rx = rt2.events();
    rt2.stop_container(&long, std::time::Duration::ZERO)
        .await
        .expect("stop via re-adopted shim");
    let ev = rx.recv().await.expect("exit event after re-adoption");
    assert_eq!(ev.container_id, long);
    let cgroup_dirs: Vec<_> = runtime::cgroups::Cgroups::detect()
        .dirs(&f.cgroup_parent)
        .into_iter()
        .map(|d| d.1)
        .collect();
    rt2.remove_pod_sandbox(&sb).await.expect("remove");
    let stat = std::fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "shim still alive: {stat}"
    );
    assert!(!runtime::layout::sandboxes_dir(&f.data_dir())
        .join(&sb.0)
        .exists());
    for d in cgroup_dirs {
        let left: Vec<_> = std::fs::read_dir(&d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(
            left.is_empty(),
            "cgroups left under {}: {left:?}",
            d.display()
        );
    }
}

/// containerd#6402 / moby#45800: a SIGKILLed shim must not make exits lie or leak processes.
#[tokio::test]
async fn killed_shim_reports_exit_255_and_removal_leaves_nothing() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("lost").await;
    let id =
        f.rt.create_container(&sb, &f.container("c", "sleep 1000"))
            .await
            .expect("create");
    f.rt.start_container(&id).await.expect("start");
    let ContainerState::Running { pid, .. } =
        f.rt.container_status(&id).await.expect("status").state
    else {
        panic!("not running");
    };
    let shim = f.rt.pod_sandbox_status(&sb).await.expect("status").shim_pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill shim");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.rt.pod_sandbox_status(&sb).await.expect("status").state != SandboxState::NotReady {
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox still ready after its shim was killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (code, reason, msg) = exited(&f.rt.container_status(&id).await.expect("status"));
    assert_eq!((code, reason.as_str()), (255, "Error"), "{msg}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove");
    let gone = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z"), stat)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gone().0 {
        assert!(
            std::time::Instant::now() < deadline,
            "container process survived: {}",
            gone().1
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!runtime::layout::sandboxes_dir(&f.data_dir())
        .join(&sb.0)
        .exists());
    // The removed directories went to the trash, which a background thread empties.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while f.rt.trash_pending() {
        assert!(std::time::Instant::now() < deadline, "trash not emptied");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn log_rotation_by_rename_and_reopen() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("logs").await;
    let cfg = f.container(
        "c",
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.05; done",
    );
    let id = f.rt.create_container(&sb, &cfg).await.expect("create");
    f.rt.start_container(&id).await.expect("start");
    let log = cfg.log_path.clone().expect("log path");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    f.rt.reopen_container_log(&id).await.expect("reopen");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    f.rt.stop_container(&id, std::time::Duration::ZERO)
        .await
        .expect("stop");
    let old = std::fs::read_to_string(&rotated).expect("old");
    let new = std::fs::read_to_string(&log).expect("new file after reopen");
    assert!(
        old.contains("stdout F line0") && !new.is_empty(),
        "old={old} new={new}"
    );
    let last_old: u32 = old
        .lines()
        .last()
        .and_then(|l| l.rsplit("line").next())
        .and_then(|n| n.parse().ok())
        .expect("old n");
    let first_new: u32 = new
        .lines()
        .next()
        .and_then(|l| l.rsplit("line").next())
        .and_then(|n| n.parse().ok())
        .expect("new n");
    assert_eq!(
        first_new,
        last_old + 1,
        "no line lost or duplicated across rotation"
    );
    f.rt.remove_pod_sandbox(&sb).await.expect("remove");
}

/// A sandbox record cut by a power loss (present, unreadable, no shim) is discarded at open;
/// a sandbox without a record yet (another process creating it) is left alone.
#[tokio::test]
async fn a_cut_sandbox_record_is_discarded_and_a_missing_one_left_alone() {
    require_root!();
    let f = Fixture::new().await;
    let sandboxes = runtime::layout::sandboxes_dir(&f.data_dir());
    let cut = sandboxes.join("cut");
    std::fs::create_dir_all(cut.join("containers")).expect("mkdir");
    std::fs::write(cut.join("sandbox.json"), b"").expect("write cut record");
    let creating = sandboxes.join("creating");
    std::fs::create_dir_all(creating.join("etc")).expect("mkdir");
    let rt = Fixture::open(f.dir.path(), &f.cgroup_parent).await;
    assert!(!cut.exists(), "a sandbox with a cut record stayed");
    assert!(creating.exists(), "a sandbox being created was removed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rt.trash_pending() {
        assert!(std::time::Instant::now() < deadline, "trash not emptied");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The pid of the spare shim ready under `data_dir` (there must be exactly one), once it is
/// and `rt` holds it as the one to adopt next (the spare writes its pid file a moment before
/// the runtime learns it is ready).
async fn ready_spare(rt: &runtime::Runtime, data_dir: &std::path::Path) -> u32 {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let spares: Vec<_> = std::fs::read_dir(runtime::layout::spares_dir(data_dir))
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        let pid = spares.first().and_then(|e| {
            std::fs::read_to_string(e.path().join("shim.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
        });
        if let (1, Some(pid)) = (spares.len(), pid) {
            if rt.ready_spare_shim() == Some(pid) {
                return pid;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no single spare shim ready: {spares:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The scheduling policy of `pid` (field 41 of /proc/PID/stat).
fn sched_policy(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_comm = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    // Fields from the third on; the policy is the 41st field.
    after_comm
        .split(' ')
        .nth(41 - 3)
        .and_then(|f| f.parse().ok())
        .expect("policy field")
}

#[tokio::test]
async fn a_spare_shim_becomes_the_next_pods_shim_and_is_replaced() {
    require_root!();
    let f = Fixture::new_with(true).await;
    let spare = ready_spare(&f.rt, &f.data_dir()).await;
    let sb = f.sandbox("spare-pod").await;
    let st = f.rt.pod_sandbox_status(&sb).await.expect("status");
    assert_eq!(
        st.shim_pid, spare,
        "the sandbox did not adopt the spare shim"
    );
    assert_eq!(st.state, SandboxState::Ready);
    // The adopted namespaces are the pod's: its hostname, its own network with lo up.
    let (status, log) = f
        .run(
            &sb,
            &f.container(
                "c",
                "hostname; cat /sys/class/net/lo/operstate; ls /sys/class/net",
            ),
        )
        .await;
    assert_eq!(exited(&status).0, 0, "{log}");
    let out: Vec<&str> = log
        .lines()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or(""))
        .collect();
    assert_eq!(out, ["spare-pod", "unknown", "lo"], "{log}");
    // A new spare replaces the adopted one; the adopted shim moved to the pod's cgroup.
    let next = ready_spare(&f.rt, &f.data_dir()).await;
    assert_ne!(next, spare);
    // Spares start under SCHED_IDLE; the adopted shim (and so its containers) runs normally.
    assert_eq!(sched_policy(next), 5, "SCHED_IDLE");
    assert_eq!(sched_policy(spare), 0, "SCHED_OTHER");
    // The pod's own cgroup on v1, its `shim` child on v2 (see Cgroups::shim_cgroup).
    let cgroup = std::fs::read_to_string(format!("/proc/{spare}/cgroup")).expect("cgroup");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let own = match v2 {
        true => format!("/pod{}/shim", st.config.uid),
        false => format!("/pod{}", st.config.uid),
    };
    assert!(
        cgroup.lines().any(|l| l.trim_end().ends_with(&own)),
        "{cgroup}"
    );
    // A runtime opened again keeps that spare; a stopping one shuts it down.
    let again = Fixture::open_with(f.dir.path(), &f.cgroup_parent, true).await;
    assert_eq!(ready_spare(&again, &f.data_dir()).await, next);
    again.stop_spare_shim().await;
    f.rt.stop_spare_shim().await;
    assert!(
        !std::path::Path::new(&format!("/proc/{next}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{next}/stat")).unwrap_or_default();
            s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
        },
        "the spare shim {next} still runs"
    );
    assert_eq!(
        std::fs::read_dir(runtime::layout::spares_dir(&f.data_dir()))
            .expect("spares")
            .count(),
        0
    );
    f.rt.remove_pod_sandbox(&sb).await.expect("remove");
}

/// True while `pid` runs (a zombie waiting for its reaper has ended).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

/// A spare whose directory is deleted (its data dir wiped while no runtime was there to shut
/// it down) can never be adopted: it exits by itself instead of waiting forever.
#[test]
fn a_spare_whose_directory_is_gone_exits() {
    require_root!();
    let tmp = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let id = "orphan";
    let dir = runtime::shim::spare_dir(tmp.path(), id);
    std::fs::create_dir_all(&dir).expect("spare dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_k1s-runtime-test"))
        .args(["shim", "spare"])
        .arg(tmp.path())
        .arg(id)
        .env("K1S_SPARE_CHECK_MS", "100")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("start a spare shim");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the spare's pid");
    assert!(running(pid), "the spare {pid} is not running");
    std::fs::remove_dir_all(&dir).expect("remove the spare's directory");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if running(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("the spare {pid} still runs 10 s after its directory was removed");
    }
}

/// What a container writes to its root file system lands in `rw/<sandbox>/<container>/upper`
/// on the data dir's disk, not in `state` (a tmpfs where `/run` is one). Removing the
/// container, or its sandbox, takes its layer away; at open, the layers of sandboxes that are
/// gone (every one after a reboot emptied `state`) are thrown away, those of live ones and the
/// spare directories kept.
#[tokio::test]
async fn writable_layers_live_on_disk_and_go_with_their_container_or_sandbox() {
    require_root!();
    let f = Fixture::new().await;
    let rw = f.data_dir().join("rw");
    let sb = f.sandbox("layers").await;
    let (st, _) = f
        .run(&sb, &f.container("writer", "echo kept > /written"))
        .await;
    assert_eq!(exited(&st).0, 0, "{:?}", st.state);
    let upper = rw.join(&sb.0).join(&st.id.0).join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("written")).expect("the container's write"),
        "kept\n"
    );
    let state = runtime::layout::sandboxes_dir(&f.data_dir()).join(&sb.0);
    assert!(!state
        .join("containers")
        .join(&st.id.0)
        .join("upper")
        .exists());
    f.rt.remove_container(&st.id)
        .await
        .expect("remove container");
    assert!(!upper.exists(), "the layer outlived its container");

    let (st, _) = f.run(&sb, &f.container("second", "echo x > /y")).await;
    assert_eq!(exited(&st).0, 0, "{:?}", st.state);
    // A layer left by a sandbox that is gone, as after a reboot.
    let orphan = rw.join("gone-sandbox").join("c").join("upper");
    std::fs::create_dir_all(&orphan).expect("test setup");
    std::fs::write(orphan.join("f"), b"x").expect("test setup");
    // The spare directories that sandboxes' layers are made from, made again in the
    // background after each creation, are no orphans.
    let spares: Vec<_> = (0..runtime::layout::SPARE_RW_DIRS)
        .map(|n| rw.join(format!(".spare-{n}")))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !spares.iter().all(|s| s.is_dir()) {
        assert!(std::time::Instant::now() < deadline, "no spare directories");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let again = Fixture::open(f.dir.path(), &f.cgroup_parent).await;
    assert!(
        !rw.join("gone-sandbox").exists(),
        "an orphaned layer stayed"
    );
    assert!(spares.iter().all(|s| s.is_dir()), "spares thrown away");
    assert!(
        rw.join(&sb.0).join(&st.id.0).join("upper/y").exists(),
        "the layer of a live sandbox was thrown away"
    );
    again.remove_pod_sandbox(&sb).await.expect("remove sandbox");
    assert!(
        !rw.join(&sb.0).exists(),
        "the layers outlived their sandbox"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while again.trash_pending() {
        assert!(std::time::Instant::now() < deadline, "trash not emptied");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
