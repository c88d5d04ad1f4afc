//! Streams through the API server to the kubelet, with each kubectl: `logs` (follow, tail,
//! timestamps, previous), `exec` (exit codes, stdin, tty), `cp` both ways and `port-forward`
//! with HTTP requests through it, on a pod whose two containers share localhost and an
//! emptyDir.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";

fn start(version: &str) -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(Some(version), &[])
}

/// `writer` writes into the shared emptyDir and logs a line per second; `web` serves that
/// directory on 127.0.0.1:8080 (reachable only through the pod's own loopback).
fn two_containers() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: two}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{{name: shared, emptyDir: {{}}}}]
  containers:
  - name: writer
    image: {IMAGE}
    command: ["sh", "-c", "echo from-writer > /shared/index.html; i=0; while true; do echo line $i; i=$((i+1)); sleep 1; done"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: web
    image: {IMAGE}
    command: ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/shared"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  volumes: [{{name: state, emptyDir: {{}}}}]
  containers:
  - name: c
    image: {IMAGE}
    command: ["sh", "-c", "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; echo attempt-$n; exit 1"]
    volumeMounts: [{{name: state, mountPath: /state}}]
"#
    )
}

fn jsonpath(c: &Cluster, pod: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")])
        .unwrap_or_default()
}

fn run(c: &Cluster, args: &[&str], stdin: Option<&str>) -> Result<(i32, String, String)> {
    let o = c.in_netns(&c.kubectl, args, stdin)?;
    Ok((
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    ))
}

fn streaming(version: &str) -> Result<()> {
    let Some(c) = start(version)? else {
        return Ok(());
    };
    c.apply(&two_containers())?;
    c.wait_for("pod two Running", Duration::from_secs(60), || {
        Ok(jsonpath(&c, "two", "{.status.phase}") == "Running")
    })?;
    let t = Instant::now();
    check_logs(&c)?;
    eprintln!("logs checked in {:?}", t.elapsed());
    check_exec(&c)?;
    eprintln!("exec checked in {:?}", t.elapsed());
    check_cp(&c)?;
    check_port_forward(&c)?;
    eprintln!("cp and port-forward checked in {:?}", t.elapsed());
    check_attach(&c)?;
    eprintln!("attach checked in {:?}", t.elapsed());
    check_top(&c)?;
    eprintln!("top checked in {:?}", t.elapsed());
    check_previous(&c)?;
    eprintln!("logs --previous checked in {:?}", t.elapsed());
    Ok(())
}

fn check_logs(c: &Cluster) -> Result<()> {
    c.wait_for("two lines logged", Duration::from_secs(30), || {
        Ok(c.kubectl(&["logs", "two", "-c", "writer"])?
            .contains("line 1\n"))
    })?;
    let all = c.kubectl(&["logs", "two", "-c", "writer"])?;
    assert!(all.starts_with("line 0\nline 1\n"), "{all:?}");
    let tail = c.kubectl(&["logs", "two", "-c", "writer", "--tail=1"])?;
    assert_eq!(tail.lines().count(), 1, "{tail:?}");
    assert!(tail.starts_with("line "), "{tail:?}");
    let ts = c.kubectl(&["logs", "two", "-c", "writer", "--tail=1", "--timestamps"])?;
    let (stamp, text) = ts.trim_end().split_once(' ').context("no timestamp")?;
    assert!(stamp.ends_with('Z') && stamp.len() == 30, "{ts:?}");
    assert!(text.starts_with("line "), "{ts:?}");
    let limited = c.kubectl(&["logs", "two", "-c", "writer", "--limit-bytes=3"])?;
    assert_eq!(limited, "lin");
    let err = c.kubectl_fail(&["logs", "two", "-c", "nope"], None)?;
    assert!(
        err.contains("container nope is not valid for pod two"),
        "{err}"
    );

    // -f follows until the container exits, then ends by itself.
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: counter}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [sh, -c, 'sleep 2; for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done']\n"
    ))?;
    c.wait_for("counter Running", Duration::from_secs(60), || {
        Ok(jsonpath(c, "counter", "{.status.phase}") == "Running")
    })?;
    let started = Instant::now();
    let followed = c.kubectl(&["logs", "-f", "counter"])?;
    assert_eq!(
        followed,
        "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n",
        "after {:?}",
        started.elapsed()
    );
    let err = c.kubectl_fail(&["logs", "counter", "--previous"], None)?;
    assert!(
        err.contains("previous terminated container \"c\" in pod \"counter\" not found"),
        "{err}"
    );

    Ok(())
}

fn check_previous(c: &Cluster) -> Result<()> {
    // --previous shows the attempt before the current one.
    c.wait_for("crash restarted", Duration::from_secs(90), || {
        Ok(
            jsonpath(c, "crash", "{.status.containerStatuses[0].restartCount}")
                .parse::<u32>()
                .unwrap_or(0)
                >= 1,
        )
    })?;
    let prev = c.kubectl(&["logs", "crash", "--previous"])?;
    let n: u32 = prev
        .trim()
        .strip_prefix("attempt-")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("previous log {prev:?}"))?;
    assert!(n >= 1, "{prev:?}");
    Ok(())
}

fn check_exec(c: &Cluster) -> Result<()> {
    let (code, out, err) = run(
        c,
        &[
            "exec",
            "two",
            "-c",
            "web",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        None,
    )?;
    assert_eq!(code, 3, "{out} {err}");
    assert_eq!(out, "out\n");
    assert!(err.contains("err\n"), "{err}");
    assert!(err.contains("command terminated with exit code 3"), "{err}");

    // Containers of a pod share localhost; web serves what writer put in the emptyDir.
    let page = c.kubectl(&[
        "exec",
        "two",
        "-c",
        "writer",
        "--",
        "wget",
        "-q",
        "-O",
        "-",
        "http://127.0.0.1:8080/",
    ])?;
    assert_eq!(page, "from-writer\n");

    let echoed = c.kubectl_stdin(
        &[
            "exec",
            "-i",
            "two",
            "-c",
            "web",
            "--",
            "sh",
            "-c",
            "cat; echo end",
        ],
        Some("to stdin\n"),
    )?;
    assert_eq!(echoed, "to stdin\nend\n");

    let (code, _, err) = run(
        c,
        &["exec", "two", "-c", "web", "--", "no-such-command"],
        None,
    )?;
    assert_eq!(code, 127, "{err}");

    // -t: a pty of the requested size; run kubectl itself on a pty.
    let script = r#"
import os, pty, sys, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
import fcntl, termios, struct
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
out = b""
while True:
    r, _, _ = select.select([fd], [], [], 30)
    if not r:
        break
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(st))
"#;
    let ns = c.netns_path()?;
    let o = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .args(["--", "python3", "-c", script])
        .arg(&c.kubectl)
        .args([
            "exec",
            "-it",
            "two",
            "-c",
            "web",
            "--",
            "sh",
            "-c",
            "tty; stty size; exit 4",
        ])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .output()?;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("33 101"), "terminal size not passed on: {out}");
    Ok(())
}

/// `attach` to a running container's output; `run -i --rm` feeds stdin and reports the
/// exit code; `attach -it` to a container with a terminal.
fn check_attach(c: &Cluster) -> Result<()> {
    let ns = c.netns_path()?;
    let mut child = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .arg("--")
        .arg(&c.kubectl)
        .args(["attach", "two", "-c", "writer"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let got = (|| -> Result<Vec<String>> {
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut got = Vec::new();
        while got.len() < 2 {
            match lines.next() {
                Some(l) => got.push(l?),
                None => bail!("attach ended after {got:?}"),
            }
        }
        Ok(got)
    })();
    let _ = child.kill();
    let _ = child.wait();
    let got = got?;
    assert!(got.iter().all(|l| l.starts_with("line ")), "{got:?}");
    // Detaching left the container running.
    assert_eq!(jsonpath(c, "two", "{.status.phase}"), "Running");

    let (code, out, err) = run(
        c,
        &[
            "run",
            "r1",
            "-i",
            "--rm",
            "--restart=Never",
            "--image",
            IMAGE,
            "--image-pull-policy=Never",
            "--",
            "sh",
            "-c",
            "read x; echo got $x; exit 3",
        ],
        Some("from-stdin\n"),
    )?;
    assert!(out.contains("got from-stdin"), "{out} {err}");
    assert_eq!(code, 3, "{out} {err}");
    assert!(err.contains("terminated (Error)"), "{err}");

    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: tty}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: sh\n    image: {IMAGE}\n    command: [sh]\n    stdin: true\n    tty: true\n"
    ))?;
    c.wait_for("tty Running", Duration::from_secs(60), || {
        Ok(jsonpath(c, "tty", "{.status.phase}") == "Running")
    })?;
    let script = r#"
import os, pty, sys, select, time, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
out = b""
sent = False
deadline = time.time() + 30
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
    if not sent and b"command prompt" in out:
        # kubectl sends the size plus one, then the size (to force a redraw); wait for the
        # second to land before reading it.
        os.write(fd, b"for i in $(seq 100); do [ \"$(stty size)\" = \"40 120\" ] && break; sleep 0.05; done; stty size; echo marker-$((6*7)); exit 5\r")
        sent = True
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
"#;
    let o = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .args(["--", "python3", "-c", script])
        .arg(&c.kubectl)
        .args(["attach", "-it", "tty"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .output()?;
    let out = String::from_utf8_lossy(&o.stdout);
    // The typed command is echoed too: look for the size and the marker as output lines.
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"40 120") && lines.contains(&"marker-42"),
        "{out} {} {:?}",
        String::from_utf8_lossy(&o.stderr),
        o.status
    );
    c.wait_for("tty exited 5", Duration::from_secs(30), || {
        Ok(jsonpath(
            c,
            "tty",
            "{.status.containerStatuses[0].state.terminated.exitCode}",
        ) == "5")
    })?;
    Ok(())
}

/// `kubectl top` reads metrics.k8s.io, computed from the containers' cgroups.
fn check_top(c: &Cluster) -> Result<()> {
    let out = c.kubectl(&["top", "pod", "two", "--containers"])?;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<&str> = rows.iter().filter_map(|r| r.get(1).copied()).collect();
    assert_eq!(names, ["web", "writer"], "{out}");
    for r in &rows {
        let cpu = r
            .get(2)
            .and_then(|v| v.strip_suffix('m'))
            .and_then(|v| v.parse::<u64>().ok());
        let mem = r
            .get(3)
            .and_then(|v| v.strip_suffix("Mi"))
            .and_then(|v| v.parse::<u64>().ok());
        assert!(
            cpu.is_some_and(|m| m < 500) && mem.is_some_and(|m| m < 64),
            "{out}"
        );
    }
    let node = c.kubectl(&["top", "node"])?;
    assert!(node.lines().count() == 2 && node.contains('%'), "{node}");
    Ok(())
}

fn check_cp(c: &Cluster) -> Result<()> {
    let local = c.dir.path().join("cp");
    std::fs::create_dir_all(local.join("tree/sub"))?;
    let payload: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(local.join("tree/big.bin"), &payload)?;
    std::fs::write(local.join("tree/sub/small.txt"), "small\n")?;
    let src = local.join("tree").display().to_string();
    c.kubectl(&["cp", &src, "two:/tmp/tree", "-c", "web"])?;
    let listing = c.kubectl(&[
        "exec",
        "two",
        "-c",
        "web",
        "--",
        "sh",
        "-c",
        "wc -c /tmp/tree/big.bin; cat /tmp/tree/sub/small.txt",
    ])?;
    assert!(listing.contains("2000000 /tmp/tree/big.bin"), "{listing}");
    assert!(listing.contains("small\n"), "{listing}");
    let back = local.join("back");
    c.kubectl(&[
        "cp",
        "two:/tmp/tree",
        &back.display().to_string(),
        "-c",
        "web",
    ])?;
    assert_eq!(std::fs::read(back.join("big.bin"))?, payload);
    assert_eq!(
        std::fs::read_to_string(back.join("sub/small.txt"))?,
        "small\n"
    );
    Ok(())
}

fn check_port_forward(c: &Cluster) -> Result<()> {
    let ns = c.netns_path()?;
    let mut pf = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .arg("--")
        .arg(&c.kubectl)
        .args(["port-forward", "pod/two", "18080:8080"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let result = (|| -> Result<()> {
        let stdout = pf.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().transpose()?.unwrap_or_default();
        if !first.contains("Forwarding from 127.0.0.1:18080 -> 8080") {
            bail!("port-forward said {first:?}");
        }
        std::thread::spawn(move || for _ in lines {});
        let started = Instant::now();
        for _ in 0..3 {
            let o = Command::new("nsenter")
                .arg(format!("--net={ns}"))
                .args([
                    "--",
                    "timeout",
                    "10",
                    "curl",
                    "-sS",
                    "http://127.0.0.1:18080/",
                ])
                .output()?;
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                "from-writer\n",
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        eprintln!("3 requests through port-forward in {:?}", started.elapsed());
        Ok(())
    })();
    let _ = pf.kill();
    let _ = pf.wait();
    result
}

#[test]
fn streaming_kubectl_1_35() -> Result<()> {
    streaming("1.35")
}

#[test]
fn streaming_kubectl_1_32() -> Result<()> {
    streaming("1.32")
}
