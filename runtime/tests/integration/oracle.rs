//! The built-in runtime against runc on the same generated spec (CONVENTIONS: "an OCI bundle
//! under runc/crun"): what a container observes must be the same.

use crate::common::{exited, log_lines, Fixture};
use crate::require_root;

const PROBE: &str = "echo $$; hostname; grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs):' /proc/self/status; id; pwd; \
    echo $FOO; cat /etc/hostname; head -1 /etc/resolv.conf; wc -c < /proc/timer_list; \
    touch /sys/x 2>/dev/null || echo sys-ro; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo procsys-ro; \
    touch /rootfs-file && echo rootfs-rw; ls /dev/pts /dev/shm /dev/mqueue >/dev/null && echo dev-ok; \
    for d in null zero full random urandom tty; do test -c /dev/$d && echo char-$d; done; \
    echo oom=$(cat /proc/self/oom_score_adj); exit 5";

#[tokio::test]
async fn builtin_and_runc_agree() {
    require_root!();
    let f = Fixture::new().await;
    if !f.rt.config().handlers.contains_key("runc") {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "runc missing in CI"
        );
        eprintln!("skipping: runc not installed");
        return;
    }
    let mut outputs = Vec::new();
    for handler in [None, Some("runc")] {
        let sb = f.sandbox_with("oracle", handler).await;
        let mut cfg = f.container(&format!("probe-{}", handler.unwrap_or("builtin")), PROBE);
        cfg.env = vec![("FOO".into(), "bar".into())];
        cfg.working_dir = Some("/tmp".into());
        // Raising the score needs no privilege (lowering it needs CAP_SYS_RESOURCE).
        cfg.resources.oom_score_adj = Some(500);
        let (st, log) = f.run(&sb, &cfg).await;
        let (code, reason, msg) = exited(&st);
        assert_eq!(
            (code, reason.as_str()),
            (5, "Error"),
            "{handler:?}: {msg} {log}"
        );
        // Order across the two streams is not defined; within each it is.
        let mut lines: Vec<(String, String)> =
            log_lines(&log).into_iter().map(|l| (l.0, l.2)).collect();
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(
            lines.iter().any(|l| l.1 == "oom=500"),
            "{handler:?}: {lines:?}"
        );
        outputs.push(lines);
        let mut bad = f.container("missing", "");
        bad.command = vec!["no-such-binary".into()];
        let id = f.rt.create_container(&sb, &bad).await.expect("create");
        let err =
            f.rt.start_container(&id)
                .await
                .expect_err("start must fail");
        assert!(
            err.to_string()
                .contains("executable file not found in $PATH"),
            "{handler:?}: {err}"
        );
        assert_eq!(
            exited(&f.rt.container_status(&id).await.expect("status")).0,
            128
        );
        f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
    }
    assert_eq!(
        outputs[0], outputs[1],
        "built-in (left) and runc (right) differ"
    );
}
