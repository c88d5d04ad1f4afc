//! Containers end to end: isolation defaults, identity, logs, exit reasons.

use runtime::cri::*;

use crate::common::{exited, log_lines, Fixture};
use crate::require_root;

#[tokio::test]
async fn pid1_hostname_caps_nnp_logs_and_exit_code() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("mypod").await;
    let cfg = f.container(
        "main",
        "echo $$; hostname; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; unshare -U true 2>/dev/null || echo userns-denied; cat /etc/resolv.conf | head -1; \
         wc -c < /proc/timer_list; wc -c < /proc/keys; ls /dev; echo oops >&2; printf partial; exit 3",
    );
    let (st, log) = f.run(&sb, &cfg).await;
    let (code, reason, _) = exited(&st);
    assert_eq!((code, reason.as_str()), (3, "Error"), "{log}");
    let lines = log_lines(&log);
    let out: Vec<&str> = lines
        .iter()
        .filter(|l| l.0 == "stdout")
        .map(|l| l.2.as_str())
        .collect();
    assert_eq!(out[0], "1", "own PID namespace: {log}");
    assert_eq!(out[1], "mypod");
    assert!(out.contains(&"CapEff:\t00000000a80425fb"), "{log}");
    assert!(out.contains(&"CapBnd:\t00000000a80425fb"), "{log}");
    assert!(out.contains(&"NoNewPrivs:\t1"), "{log}");
    assert!(
        out.contains(&"Seccomp:\t2"),
        "RuntimeDefault seccomp: {log}"
    );
    assert!(out.contains(&"userns-denied"), "{log}");
    assert!(out.contains(&"nameserver 10.43.0.10"), "{log}");
    assert_eq!(
        out.iter().filter(|l| **l == "0").count(),
        2,
        "/proc/timer_list and /proc/keys are masked: {log}"
    );
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx",
    ] {
        assert!(out.contains(&dev), "/dev/{dev} missing: {log}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.0 == "stderr" && l.1 == "F" && l.2 == "oops"),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l.0 == "stdout" && l.2 == "partial"),
        "{log}"
    );
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn env_args_workdir_user_and_completed() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("envpod").await;
    let mut cfg = f.container("c", "");
    cfg.command = vec!["sh".into(), "-c".into()];
    cfg.args = vec![
        "echo $FOO $IMAGE_VAR $0 $1; pwd; id -u; id -g; grep CapEff /proc/self/status; \
         stat -c %a /; touch /x 2>/dev/null && echo root-dir-writable; echo end"
            .into(),
        "a0".into(),
        "a1".into(),
    ];
    cfg.env = vec![
        ("FOO".into(), "bar".into()),
        ("IMAGE_VAR".into(), "overridden".into()),
    ];
    cfg.working_dir = Some("/work/dir".into());
    cfg.security.run_as_user = Some(65534);
    cfg.security.run_as_group = Some(65534);
    let (st, log) = f.run(&sb, &cfg).await;
    assert_eq!(exited(&st).0, 0, "{log}");
    assert_eq!(exited(&st).1, "Completed");
    let out: Vec<String> = log_lines(&log).into_iter().map(|l| l.2).collect();
    assert_eq!(
        out[..4],
        ["bar overridden a0 a1", "/work/dir", "65534", "65534"],
        "{log}"
    );
    assert_eq!(
        out[4], "CapEff:\t0000000000000000",
        "non-root has no effective caps: {log}"
    );
    // The root directory is the writable layer's: 0755 like containerd's, not writable by a
    // non-root user.
    assert_eq!(out[5..], ["755", "end"], "{log}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn read_only_rootfs_and_proc_sys() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("ro").await;
    let mut cfg = f.container(
        "c",
        "touch /x 2>/dev/null && echo rootfs-writable; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo procsys-writable; \
         touch /sys/x 2>/dev/null && echo sys-writable; touch /dev/shm/ok && echo shm-ok",
    );
    cfg.security.read_only_rootfs = true;
    let (st, log) = f.run(&sb, &cfg).await;
    assert_eq!(exited(&st).0, 0, "{log}");
    assert!(!log.contains("writable"), "{log}");
    assert!(log.contains("shm-ok"), "{log}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn command_not_found_is_start_error_128() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("nf").await;
    let mut cfg = f.container("c", "");
    cfg.command = vec!["no-such-binary".into()];
    let id = f.rt.create_container(&sb, &cfg).await.expect("create");
    let err =
        f.rt.start_container(&id)
            .await
            .expect_err("start must fail");
    assert!(
        err.to_string()
            .contains("exec: \"no-such-binary\": executable file not found in $PATH"),
        "{err}"
    );
    let st = f.rt.container_status(&id).await.expect("status");
    let (code, reason, msg) = exited(&st);
    assert_eq!((code, reason.as_str()), (128, "StartError"));
    assert!(msg.contains("executable file not found in $PATH"), "{msg}");
    f.rt.remove_container(&id).await.expect("remove container");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn containers_of_a_pod_share_network_and_exec_works() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("net").await;
    let status = f.rt.pod_sandbox_status(&sb).await.expect("sandbox status");
    assert_eq!(status.state, SandboxState::Ready);
    let netns = status.netns_path.expect("own netns");
    let ns_ino = std::fs::metadata(&netns)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("stat netns");
    let host = std::fs::read_link("/proc/self/ns/net").expect("host netns");
    let server = f.container(
        "server",
        "mkfifo /tmp/in; exec 3<>/tmp/in; nc -l -p 8080 <&3",
    );
    let sid =
        f.rt.create_container(&sb, &server)
            .await
            .expect("create server");
    let mut rx = f.rt.events();
    f.rt.start_container(&sid).await.expect("start server");
    let (cst, clog) = f
        .run(&sb, &f.container("client", "readlink /proc/self/ns/net; for i in 1 2 3 4 5 6 7 8 9 10; do echo hello | nc 127.0.0.1 8080 && break; sleep 0.2; done"))
        .await;
    assert_eq!(exited(&cst).0, 0, "{clog}");
    let client_ns = log_lines(&clog)[0].2.clone();
    assert_eq!(
        client_ns,
        format!("net:[{ns_ino}]"),
        "container is in the pod netns"
    );
    assert_ne!(client_ns, host.to_string_lossy());
    let sst = f.wait_exit(&sid, &mut rx).await;
    let slog = std::fs::read_to_string(server.log_path.as_ref().expect("log")).expect("server log");
    assert_eq!(exited(&sst).0, 0, "{slog}");
    assert!(slog.contains("stdout F hello"), "{slog}");

    // exec_sync into a running container, then a stop that needs SIGKILL (PID 1 ignores TERM).
    let sleeper = f.container("sleeper", "sleep 1000");
    let id = f.rt.create_container(&sb, &sleeper).await.expect("create");
    f.rt.start_container(&id).await.expect("start");
    let cmd: Vec<String> = ["sh", "-c", "echo out $$; hostname; echo err >&2; exit 4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r =
        f.rt.exec_sync(&id, &cmd, std::time::Duration::from_secs(10))
            .await
            .expect("exec");
    assert_eq!(r.exit_code, 4, "{r:?}");
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.starts_with("out ") && out.contains("net\n"), "{out}");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n");
    let missing =
        f.rt.exec_sync(
            &id,
            &["nope".to_string()],
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("exec");
    assert_eq!(missing.exit_code, 127);
    let t0 = std::time::Instant::now();
    f.rt.stop_container(&id, std::time::Duration::from_millis(500))
        .await
        .expect("stop");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(15),
        "stop took {:?}",
        t0.elapsed()
    );
    let (code, reason, _) = exited(&f.rt.container_status(&id).await.expect("status"));
    assert_eq!((code, reason.as_str()), (137, "Error"));
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
    assert!(!netns.exists());
}

#[tokio::test]
async fn memory_limit_is_oom_killed_137() {
    require_root!();
    if !std::path::Path::new("/sys/fs/cgroup/memory").exists()
        && !std::path::Path::new("/sys/fs/cgroup/memory.max").exists()
    {
        let ctrl = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        if !ctrl.contains("memory") {
            eprintln!("skipping: no memory controller");
            return;
        }
    }
    let f = Fixture::new().await;
    let sb = f.sandbox("oom").await;
    let mut cfg = f.container("hog", "dd if=/dev/zero of=/dev/null bs=64M count=4");
    cfg.resources.memory_limit_bytes = Some(16 << 20);
    let (st, log) = f.run(&sb, &cfg).await;
    let (code, reason, _) = exited(&st);
    assert_eq!((code, reason.as_str()), (137, "OOMKilled"), "{log}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn host_network_sandbox_uses_host_netns() {
    require_root!();
    let f = Fixture::new().await;
    let cfg = PodSandboxConfig {
        name: "hostnet".into(),
        namespace: "kube-system".into(),
        uid: format!("uid-hostnet-{}", rand::random::<u32>()),
        net: NetMode::Host,
        ..Default::default()
    };
    let sb =
        f.rt.run_pod_sandbox(&cfg)
            .await
            .expect("run host-network sandbox");
    assert!(f
        .rt
        .pod_sandbox_status(&sb)
        .await
        .expect("status")
        .netns_path
        .is_none());
    let (st, log) = f
        .run(
            &sb,
            &f.container("c", "readlink /proc/self/ns/net; hostname"),
        )
        .await;
    assert_eq!(exited(&st).0, 0, "{log}");
    let host_ns = std::fs::read_link("/proc/self/ns/net").expect("host netns");
    let host_name = nix::unistd::gethostname().expect("hostname");
    let out: Vec<String> = log_lines(&log).into_iter().map(|l| l.2).collect();
    assert_eq!(
        out,
        [
            host_ns.to_string_lossy().into_owned(),
            host_name.to_string_lossy().into_owned()
        ]
    );
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn privileged_has_all_caps_and_no_seccomp() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("priv").await;
    let mut cfg = f.container(
        "c",
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; unshare -U true && echo userns-ok",
    );
    cfg.security.privileged = true;
    cfg.security.no_new_privs = false;
    let (st, log) = f.run(&sb, &cfg).await;
    assert_eq!(exited(&st).0, 0, "{log}");
    let out: Vec<String> = log_lines(&log).into_iter().map(|l| l.2).collect();
    assert!(
        out.iter()
            .any(|l| l.starts_with("CapEff:\t000001ff") || l.starts_with("CapEff:\t0000003f")),
        "{log}"
    );
    assert!(out.contains(&"Seccomp:\t0".to_string()), "{log}");
    assert!(out.contains(&"userns-ok".to_string()), "{log}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

#[tokio::test]
async fn exec_streams_and_tty() {
    use std::io::{Read, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("exec").await;
    let id =
        f.rt.create_container(&sb, &f.container("c", "sleep 1000"))
            .await
            .expect("create");
    f.rt.start_container(&id).await.expect("start");

    let opts = runtime::ExecOptions {
        stdin: true,
        ..Default::default()
    };
    let mut s =
        f.rt.exec(&id, &["cat".to_string()], opts)
            .await
            .expect("exec cat");
    let mut stdin = s.child.stdin.take().expect("stdin");
    stdin.write_all(b"ping\n").await.expect("write");
    drop(stdin);
    let mut out = String::new();
    s.child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    assert_eq!(out, "ping\n");
    assert!(s.child.wait().await.expect("wait").success());

    let opts = runtime::ExecOptions {
        tty: true,
        size: Some((100, 30)),
        ..Default::default()
    };
    let cmd: Vec<String> = ["sh", "-c", "tty; stty size; read x; echo got-$x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut s = f.rt.exec(&id, &cmd, opts).await.expect("exec with tty");
    let mut pty = s.pty.take().expect("pty master");
    let text = tokio::task::spawn_blocking(move || {
        pty.write_all(b"hello\n").expect("write pty");
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        // Reads end with EIO once the last slave holder exits.
        while let Ok(n) = pty.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    })
    .await
    .expect("reader");
    assert!(s.child.wait().await.expect("wait").success(), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("30 100"), "{text:?}");
    assert!(text.contains("got-hello"), "{text:?}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
}

/// The container's processes (its init before exec, and exec'd commands) move themselves into
/// the container's cgroup, and the shim into the pod's (v1) or `<pod>/shim` (v2), in every
/// controller k1s uses.
#[tokio::test]
async fn container_exec_and_shim_processes_are_in_their_cgroups() {
    require_root!();
    let f = Fixture::new().await;
    let sb = f.sandbox("cgroups").await;
    let id =
        f.rt.create_container(&sb, &f.container("c", "cat /proc/self/cgroup; sleep 600"))
            .await
            .expect("create");
    f.rt.start_container(&id).await.expect("start");
    let exec =
        f.rt.exec_sync(
            &id,
            &["cat".to_string(), "/proc/self/cgroup".to_string()],
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("exec");
    let sandbox = f.rt.pod_sandbox_status(&sb).await.expect("status");
    let shim = sandbox.shim_pid;
    let shim_cgroup = std::fs::read_to_string(format!("/proc/{shim}/cgroup")).expect("shim");
    let log = f.container("c", "").log_path.expect("log path");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let init = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("memory") || text.contains("0::/") {
            break log_lines(&text)
                .into_iter()
                .map(|(_, _, line)| line + "\n")
                .collect::<String>();
        }
        assert!(std::time::Instant::now() < deadline, "no output: {text:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let controllers: &[&str] = if v2 {
        &[""]
    } else {
        &["cpu", "memory", "pids"]
    };
    let in_cgroup = |text: &str, suffix: &str| {
        controllers.iter().all(|c| {
            text.lines().any(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, names, path) = (parts.next(), parts.next(), parts.next());
                names.is_some_and(|n| n.split(',').any(|x| x == *c))
                    && path.is_some_and(|p| p.trim_end().ends_with(suffix))
            })
        })
    };
    let own = format!("/{}", id.0);
    assert!(in_cgroup(&init, &own), "container init:\n{init}");
    let exec_out = String::from_utf8_lossy(&exec.stdout).into_owned();
    assert!(in_cgroup(&exec_out, &own), "exec:\n{exec_out}");
    let shim_own = match v2 {
        true => format!("/pod{}/shim", sandbox.config.uid),
        false => format!("/pod{}", sandbox.config.uid),
    };
    assert!(in_cgroup(&shim_cgroup, &shim_own), "shim:\n{shim_cgroup}");
    f.rt.remove_pod_sandbox(&sb).await.expect("remove");
}
