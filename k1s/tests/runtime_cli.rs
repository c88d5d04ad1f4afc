//! `k1s runtime` and `k1s image prune` driven through the real binary, as root, on a temporary
//! data dir with the busybox test image (`K1S_BUSYBOX_IMAGE`, else the repo's
//! `target/test-images/busybox.tar`, else built by `scripts/make-busybox-image.sh`). Sandboxes
//! get their own network namespace with only `lo` (no `--net`: that needs the test's own
//! network namespace). Everything the tests create is removed when they end, failing or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "k1s.local/busybox:latest";
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("k1s runtime CLI tests need root (CI=true)");
            }
            eprintln!("skipping: not root");
            return;
        }
    };
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A data dir with the busybox image imported; on drop, removes every sandbox left in it
/// (containers, shims, cgroups) and then the directory.
struct DataDir {
    dir: tempfile::TempDir,
}

fn busybox_archive(scratch: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var("K1S_BUSYBOX_IMAGE").ok().map(PathBuf::from),
        Some(repo.join("target/test-images/busybox.tar")),
    ];
    if let Some(p) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return p;
    }
    let out = scratch.join("busybox.tar");
    let st = Command::new("bash")
        .arg(repo.join("scripts/make-busybox-image.sh"))
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("run make-busybox-image.sh");
    assert!(st.success(), "make-busybox-image.sh failed");
    out
}

impl DataDir {
    fn new() -> DataDir {
        let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
        let d = DataDir { dir };
        let archive = busybox_archive(d.dir.path());
        let out = d.k1s(&["image", "import", &archive.to_string_lossy()]);
        assert_eq!(out.code, 0, "import failed: {}", out.stderr);
        d
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `k1s <args...> --data-dir <dir>` (the flag goes after the subcommand) to
    /// completion, killed after `CMD_TIMEOUT`.
    fn k1s(&self, args: &[&str]) -> Out {
        self.k1s_stdin(args, None)
    }

    fn k1s_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let (cmd, rest) = args.split_at(2.min(args.len()));
        let mut c = Command::new(env!("CARGO_BIN_EXE_k1s"));
        c.args(cmd)
            .arg("--data-dir")
            .arg(self.path())
            .args(rest)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn k1s");
        if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
            std::io::Write::write_all(&mut w, text.as_bytes()).expect("write stdin");
        }
        let deadline = Instant::now() + CMD_TIMEOUT;
        loop {
            if child.try_wait().expect("wait k1s").is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("k1s {args:?} did not finish within {CMD_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().expect("collect k1s output");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn sandbox_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path().join("runtime/state/sandboxes"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    fn shim_pids(&self) -> Vec<i32> {
        self.sandbox_dirs()
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("shim.pid")).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let ids: Vec<String> = self
            .sandbox_dirs()
            .iter()
            .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["runtime", "rmp"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.k1s(&args);
        }
        // Whatever rmp could not stop: the shims of this data dir, by PID.
        for pid in self.shim_pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        // The state kept in /run (where /run is a tmpfs), outside the temporary directory.
        if let Ok(state) = std::fs::read_link(self.path().join("runtime/state")) {
            let _ = std::fs::remove_dir_all(state);
        }
    }
}

/// Waits until `cond` holds, for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The mount points of this process's mount namespace below `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(str::to_string)
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn run_exits_with_the_container_exit_code() {
    require_root!();
    let d = DataDir::new();
    let ok = d.k1s(&["runtime", "run", "--rm", IMAGE, "/bin/true"]);
    assert_eq!(ok.code, 0, "stderr: {}", ok.stderr);

    let three = d.k1s(&[
        "runtime",
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(three.code, 3, "stderr: {}", three.stderr);
    assert_eq!(three.stdout, "out\n");
    assert!(three.stderr.contains("err\n"), "stderr: {}", three.stderr);

    // The shim `run` forks is started on another CPU than the command's, then takes the
    // command's CPUs back: the container may run on all of them.
    let own = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
    };
    let mine = own(&std::fs::read_to_string("/proc/self/status").expect("read own status"));
    let cpus = d.k1s(&["runtime", "run", "--rm", IMAGE, "cat", "/proc/self/status"]);
    assert_eq!(cpus.code, 0, "stderr: {}", cpus.stderr);
    assert!(mine.is_some());
    assert_eq!(own(&cpus.stdout), mine, "{}", cpus.stdout);

    let missing = d.k1s(&["runtime", "run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(missing.code, 127, "stderr: {}", missing.stderr);
    assert!(
        missing.stderr.contains("StartError")
            && missing
                .stderr
                .contains("\"no-such-command\": executable file not found in $PATH"),
        "stderr: {}",
        missing.stderr
    );

    let no_image = d.k1s(&["runtime", "run", "--rm", "k1s.local/nope:1", "true"]);
    assert_eq!(no_image.code, 125);
    assert!(no_image
        .stderr
        .contains("image \"k1s.local/nope:1\" not found"));

    // --rm left nothing behind; a StartError without --rm does not either.
    let again = d.k1s(&["runtime", "run", IMAGE, "no-such-command"]);
    assert_eq!(again.code, 127);
    assert!(d.sandbox_dirs().is_empty(), "left: {:?}", d.sandbox_dirs());
    // Nor did the shims `run` forks ahead of need, used or not (the missing image): they
    // carry the command line of the `run` that forked them, and the data dir in it. A shim
    // told to go, its answer not waited for, unmounted its network namespace's pin.
    let marker = d.path().to_string_lossy().into_owned();
    wait_for(
        "the shims of the runs to exit and their pins' unmounts",
        Duration::from_secs(10),
        || processes_mentioning(&marker).is_empty() && mounts_under(&d.path()).is_empty(),
    );
}

/// PIDs of the processes whose command line contains `s`.
fn processes_mentioning(s: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(s))
        })
        .collect()
}

#[test]
fn debug_commands_on_a_detached_container() {
    require_root!();
    let d = DataDir::new();
    let run = d.k1s(&[
        "runtime",
        "run",
        "--detach",
        "--memory",
        "64Mi",
        IMAGE,
        "sh",
        "-c",
        "echo started; while [ ! -e /tmp/stop ]; do sleep 0.05; done; exit 7",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let cid = run.stdout.trim().to_string();
    assert_eq!(cid.len(), 64, "stdout: {}", run.stdout);
    // The sandbox adopted the shim `run` forked before it started threads.
    let shim = d.shim_pids()[0];
    let comm = std::fs::read_to_string(format!("/proc/{shim}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "k1s-shim");

    // inspect: JSON with the resolved spec, whose cgroup carries the memory limit.
    let inspect = d.k1s(&["runtime", "inspect", &cid[..12]]);
    assert_eq!(inspect.code, 0, "stderr: {}", inspect.stderr);
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).expect("inspect JSON");
    assert_eq!(v["status"]["id"], cid.as_str());
    assert!(v["status"]["state"]["Running"]["pid"].as_u64().is_some());
    let sid = v["status"]["sandbox_id"]
        .as_str()
        .expect("sandbox id")
        .to_string();
    let cgroup = v["info"]["config"]["cgroup"]
        .as_str()
        .expect("cgroup")
        .to_string();
    let v1 = Path::new("/sys/fs/cgroup/memory")
        .join(&cgroup)
        .join("memory.limit_in_bytes");
    let v2 = Path::new("/sys/fs/cgroup").join(&cgroup).join("memory.max");
    let limit = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .expect("memory limit file");
    assert_eq!(limit.trim(), (64u64 << 20).to_string());

    let ps = d.k1s(&["runtime", "ps"]);
    let header = ps.stdout.lines().next().unwrap_or_default();
    for col in [
        "CONTAINER",
        "IMAGE",
        "CREATED",
        "STATE",
        "NAME",
        "ATTEMPT",
        "POD ID",
    ] {
        assert!(header.contains(col), "ps header: {header}");
    }
    let row = ps
        .stdout
        .lines()
        .find(|l| l.starts_with(&cid[..13]))
        .unwrap_or_else(|| panic!("container missing from ps: {}", ps.stdout));
    assert!(
        row.contains("Running") && row.contains(IMAGE) && row.contains(&sid[..13]),
        "{row}"
    );

    let sandboxes = d.k1s(&["runtime", "sandboxes"]);
    let row = sandboxes
        .stdout
        .lines()
        .find(|l| l.starts_with(&sid[..13]))
        .unwrap_or_else(|| panic!("sandbox missing: {}", sandboxes.stdout));
    assert!(
        row.contains("Ready") && row.contains("k1s-runtime-run"),
        "{row}"
    );
    let inspectp = d.k1s(&["runtime", "inspect", &sid]);
    let v: serde_json::Value = serde_json::from_str(&inspectp.stdout).expect("inspect JSON");
    assert_eq!(v["status"]["state"], "Ready");

    wait_for(
        "the container's first log line",
        Duration::from_secs(10),
        || d.k1s(&["runtime", "logs", &cid]).stdout == "started\n",
    );

    let exec = d.k1s(&[
        "runtime",
        "exec",
        &cid,
        "sh",
        "-c",
        "echo in-$HOSTNAME; exit 4",
    ]);
    assert_eq!(exec.code, 4, "stderr: {}", exec.stderr);
    assert!(exec.stdout.starts_with("in-busybox-"), "{}", exec.stdout);
    let cat = d.k1s_stdin(&["runtime", "exec", "-i", &cid, "cat"], Some("piped\n"));
    assert_eq!((cat.code, cat.stdout.as_str()), (0, "piped\n"));
    let tty = d.k1s(&["runtime", "exec", "-t", &cid, "tty"]);
    assert_eq!(tty.code, 0, "stderr: {}", tty.stderr);
    assert!(tty.stdout.starts_with("/dev/pts/"), "{}", tty.stdout);

    // logs -f ends when the container does.
    let shims = d.shim_pids();
    let mut follow = Command::new(env!("CARGO_BIN_EXE_k1s"))
        .args(["runtime", "logs", "-f", "--data-dir"])
        .arg(d.path())
        .arg(&cid)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    let stop = d.k1s(&["runtime", "exec", &cid, "touch", "/tmp/stop"]);
    assert_eq!(stop.code, 0, "stderr: {}", stop.stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while follow.try_wait().expect("wait logs -f").is_none() {
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("logs -f did not end with the container");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ps = d.k1s(&["runtime", "ps", "-a"]);
    assert!(ps.stdout.contains("Exited"), "{}", ps.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&d.k1s(&["runtime", "inspect", &cid]).stdout).expect("inspect JSON");
    assert_eq!(v["status"]["state"]["Exited"]["exit_code"], 7);

    // The pod's network namespace is pinned by a mount in its directory.
    assert!(!mounts_under(&d.path()).is_empty());
    let rmp = d.k1s(&["runtime", "rmp", &sid[..8]]);
    assert_eq!(rmp.code, 0, "stderr: {}", rmp.stderr);
    assert!(d.sandbox_dirs().is_empty());
    // The shim's exit, the unmount of the pod's network namespace (after the shim's reply)
    // and the cgroups' removal complete right after the command's, in its exit helper.
    let pod_cgroup = cgroup.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
    wait_for(
        "the shim's exit, the unmounts and the pod cgroup's removal",
        Duration::from_secs(10),
        || {
            shims.iter().all(|p| !alive(*p))
                && mounts_under(&d.path()).is_empty()
                && !Path::new("/sys/fs/cgroup/memory").join(pod_cgroup).exists()
                && !Path::new("/sys/fs/cgroup")
                    .join(pod_cgroup)
                    .join("cgroup.procs")
                    .exists()
        },
    );
}

#[test]
fn image_prune_removes_what_nothing_uses() {
    require_root!();
    let d = DataDir::new();
    let snapshots = d.path().join("runtime/snapshots");
    let count = |p: &Path| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    // The archive's own files (manifest.json, index.json, ...) were stored as blobs.
    let prune = d.k1s(&["image", "prune"]);
    assert_eq!(prune.code, 0, "stderr: {}", prune.stderr);
    assert!(prune.stdout.starts_with("removed "), "{}", prune.stdout);
    assert!(
        !prune.stdout.starts_with("removed 0 blobs"),
        "{}",
        prune.stdout
    );
    assert_eq!(count(&snapshots), 1);
    let ok = d.k1s(&["runtime", "run", "--rm", IMAGE, "true"]);
    assert_eq!(ok.code, 0, "the image broke: {}", ok.stderr);

    // A detached container keeps its image through `prune --all`; then nothing does.
    let run = d.k1s(&["runtime", "run", "-d", IMAGE, "sleep", "600"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let all = d.k1s(&["image", "prune", "--all"]);
    assert!(!all.stdout.contains("removed image"), "{}", all.stdout);
    assert!(d.k1s(&["image", "ls"]).stdout.contains(IMAGE));
    let sid = d.sandbox_dirs()[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("sandbox id");
    assert_eq!(d.k1s(&["runtime", "rmp", &sid]).code, 0);
    let all = d.k1s(&["image", "prune", "--all"]);
    assert!(
        all.stdout.contains("removed image sha256:"),
        "{}",
        all.stdout
    );
    assert!(
        all.stdout.contains("and 1 layer snapshots"),
        "{}",
        all.stdout
    );
    assert_eq!(count(&snapshots), 0);
    assert_eq!(count(&d.path().join("runtime/images/blobs/sha256")), 0);
}

/// `--net` only ever runs in a network (and mount) namespace of the test's own: the bridge,
/// veth and nftables rules it makes die with that namespace.
#[test]
fn run_with_the_pod_network_in_a_private_namespace() {
    require_root!();
    let d = DataDir::new();
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(env!("CARGO_BIN_EXE_k1s"))
        .args(["runtime", "run", "--rm", "--net", "--data-dir"])
        .arg(d.path())
        .args([
            IMAGE,
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route; cat /etc/hosts",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("inet 10.42.0."), "{stdout}");
    assert!(stdout.contains("default via 10.42.0.1"), "{stdout}");
    assert!(
        stdout.contains("\tbusybox-"),
        "no own name in /etc/hosts: {stdout}"
    );
    // The address went back to the pool.
    let ipam = d.path().join("network/ipam");
    let left: Vec<_> = std::fs::read_dir(&ipam)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().starts_with("10.")),
        "{left:?}"
    );
    assert!(d.sandbox_dirs().is_empty());
}

/// Where `/run` is a tmpfs (every systemd host; the test mounts one in a mount namespace of
/// its own), sandbox state lives in `/run/k1s/<hash>`, reached through the `runtime/state`
/// symlink, and writable layers stay on the data dir's disk. After a reboot (here: a fresh
/// tmpfs mounted over `/run`) the link points at nothing: the next command makes the
/// directory again, empty, and throws away the writable layers of the sandboxes that went.
#[test]
fn sandbox_state_lives_in_run_when_it_is_a_tmpfs() {
    require_root!();
    let d = DataDir::new();
    let data = d.path().to_string_lossy().into_owned();
    let k1s = env!("CARGO_BIN_EXE_k1s");
    let script = format!(
        r#"set -e
mount -t tmpfs -o mode=0755 k1s-test-run /run
# The image import made `state` a plain directory: /run is not a tmpfs outside.
rm -r {data}/runtime/state
link=/nonexistent
cleanup() {{
    if grep -q '^k1s-test-reboot /run ' /proc/self/mounts; then umount /run; fi
    ids="$(ls "$link/sandboxes" 2>/dev/null || true)"
    if [ -n "$ids" ]; then {k1s} runtime rmp --data-dir {data} $ids >/dev/null; fi
}}
trap cleanup EXIT
{k1s} runtime run --rm --data-dir {data} {IMAGE} sh -c 'echo written > /f; grep -o "upperdir=[^,]*" /proc/self/mountinfo'
link="$(readlink {data}/runtime/state)"
echo "link $link"
echo "owner $(cat "$link/runtime-dir")"
echo "state $(stat -f -c %T "$link/sandboxes")"
{k1s} runtime run -d --data-dir {data} {IMAGE} sleep 600 >/dev/null
echo "sandboxes $(ls "$link/sandboxes" | wc -l) layers $(ls {data}/runtime/rw | wc -l)"
mount -t tmpfs -o mode=0755 k1s-test-reboot /run
{k1s} runtime sandboxes --data-dir {data} >/dev/null
echo "after reboot: dir $(test -d "$link/sandboxes" && echo made) sandboxes $(ls "$link/sandboxes" | wc -l) layers $(ls {data}/runtime/rw | wc -l)"
"#
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let rw = format!("upperdir={data}/runtime/rw/");
    assert!(
        stdout.contains(&rw),
        "the writable layer is not on disk:\n{stdout}"
    );
    assert!(stdout.contains("link /run/k1s/"), "{stdout}");
    assert!(stdout.contains(&format!("owner {data}")), "{stdout}");
    assert!(stdout.contains("state tmpfs"), "{stdout}");
    assert!(stdout.contains("sandboxes 1 layers 1"), "{stdout}");
    assert!(
        stdout.contains("after reboot: dir made sandboxes 0 layers 0"),
        "{stdout}"
    );
}
