//! The e2e harness: a `k1s server` in a fresh network + mount namespace (held by an `unshare`
//! holder process, so the server can be killed and restarted in the same namespaces), a
//! kubeconfig for it, and kubectl/helm run inside the same network namespace (`nsenter`),
//! so nothing the test does reaches the host's interfaces. Servers are stopped by PID and
//! their data removed on drop; server logs are printed when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where the kubectl/helm binaries are (installed by scripts/install-test-deps.sh).
pub fn tools_dir() -> PathBuf {
    if let Ok(d) = std::env::var("K1S_TOOLS_DIR") {
        return PathBuf::from(d);
    }
    workspace_root().join("target/tools/bin")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The k1s binary under test: `K1S_BIN`, or the workspace's debug build (built if missing).
pub fn k1s_bin() -> Result<PathBuf> {
    if let Ok(b) = std::env::var("K1S_BIN") {
        return Ok(PathBuf::from(b));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let bin = target.join("debug/k1s");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "k1s"])
        .current_dir(workspace_root())
        .status()
        .context("failed to run cargo build -p k1s")?;
    if !status.success() {
        bail!("cargo build -p k1s failed");
    }
    Ok(bin)
}

/// kubectl versions to test with: those installed among 1.32 and 1.35.
pub fn kubectl_versions() -> Vec<String> {
    let found: Vec<String> = ["1.35", "1.32"]
        .iter()
        .filter(|v| tools_dir().join(format!("kubectl-{v}")).exists())
        .map(|v| v.to_string())
        .collect();
    if found.is_empty() && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "no kubectl under {}: run scripts/install-test-deps.sh",
            tools_dir().display()
        );
    }
    found
}

/// A cluster for tests that run pods from the busybox test image, or None (the test is
/// skipped) without root, without the image (a failure under CI) or without the requested
/// kubectl (`None`: the first installed one).
pub fn pod_cluster(version: Option<&str>, args: &[&str]) -> Result<Option<Cluster>> {
    pod_cluster_with(version, args, None)
}

/// `pod_cluster` with the data directory on a tmpfs of `size` (for disk pressure).
pub fn pod_cluster_on_tmpfs(args: &[&str], size: &str) -> Result<Option<Cluster>> {
    pod_cluster_with(None, args, Some(size))
}

fn pod_cluster_with(
    version: Option<&str>,
    args: &[&str],
    tmpfs: Option<&str>,
) -> Result<Option<Cluster>> {
    if !require_root() {
        return Ok(None);
    }
    if std::env::var("K1S_BUSYBOX_IMAGE").is_err() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("K1S_BUSYBOX_IMAGE is not set: run the tests through scripts/test.sh");
        }
        eprintln!("skipping: K1S_BUSYBOX_IMAGE not set");
        return Ok(None);
    }
    let versions = kubectl_versions();
    let chosen = match version {
        Some(v) => versions.iter().find(|x| x.as_str() == v).cloned(),
        None => versions.first().cloned(),
    };
    let Some(v) = chosen else {
        eprintln!(
            "skipping: kubectl {} not installed",
            version.unwrap_or("(any)")
        );
        return Ok(None);
    };
    Ok(Some(Cluster::start_with(&v, args, tmpfs)?))
}

/// The test's server flags; unless it sets its own, eviction thresholds that the host's
/// disk and memory never cross (upstream's defaults, e.g. imagefs.available<15%, would
/// make a test depend on how full the machine running it is).
fn server_args(args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if !args.iter().any(|a| a.starts_with("--eviction-hard")) {
        out.push("--eviction-hard=memory.available<1Mi".into());
    }
    out
}

pub fn require_root() -> bool {
    // SAFETY-free: geteuid through std is not available; read /proc/self/status.
    let uid0 = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !uid0 && std::env::var("CI").as_deref() == Ok("true") {
        panic!("e2e tests must run as root under CI");
    }
    uid0
}

pub struct Cluster {
    /// `unshare --net --mount … sleep`: holds the namespaces, so a restarted server finds its
    /// bridge, veths and mounts again.
    holder: Child,
    server: Option<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    log: PathBuf,
    port: u16,
    args: Vec<String>,
}

impl Cluster {
    /// Start a server with kubectl `version`; extra server flags in `args`.
    pub fn start(version: &str, args: &[&str]) -> Result<Cluster> {
        Self::start_with(version, args, None)
    }

    /// Like `start`; with `tmpfs`, the data directory is a tmpfs of that size (e.g. `256m`)
    /// mounted in the cluster's mount namespace: its free space is the test's alone.
    fn start_with(version: &str, args: &[&str], tmpfs: Option<&str>) -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("k1s-e2e-").tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let log = dir.path().join("server.log");
        let data = dir.path().join("data");
        // Images for pods: the busybox archive built by scripts/test.sh, imported at start.
        if let (Ok(img), None) = (std::env::var("K1S_BUSYBOX_IMAGE"), tmpfs) {
            let images = data.join("images");
            std::fs::create_dir_all(&images)?;
            if std::fs::copy(&img, images.join("busybox.tar")).is_err() {
                eprintln!("warning: K1S_BUSYBOX_IMAGE={img} could not be copied");
            }
        }
        let holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--fork",
                "--kill-child",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec sleep infinity",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start the namespace holder under unshare")?;
        let kubectl = tools_dir().join(format!("kubectl-{version}"));
        let mut c = Cluster {
            holder,
            server: None,
            dir,
            kubeconfig,
            kubectl,
            log,
            port: 6443,
            args: server_args(args),
        };
        if let Some(size) = tmpfs {
            c.mount_data_tmpfs(&data, size)?;
        }
        c.spawn_server()?;
        c.wait_ready()?;
        Ok(c)
    }

    /// Mounts a tmpfs on `data` inside the namespace holder's mount namespace (gone with it)
    /// and copies the test image in there.
    fn mount_data_tmpfs(&self, data: &Path, size: &str) -> Result<()> {
        let holder = self.wait_holder()?;
        std::fs::create_dir_all(data)?;
        let img = std::env::var("K1S_BUSYBOX_IMAGE").unwrap_or_default();
        let d = data.display();
        let script = format!(
            "mount -t tmpfs -o size={size},mode=0755 k1s-e2e {d} && mkdir -p {d}/images && \
             {{ [ -z \"$1\" ] || cp \"$1\" {d}/images/busybox.tar; }}"
        );
        let st = Command::new("nsenter")
            .arg(format!("--mount=/proc/{holder}/ns/mnt"))
            .args(["--", "sh", "-c", &script, "sh", &img])
            .status()?;
        if !st.success() {
            bail!("failed to mount a tmpfs on {d} ({st})");
        }
        Ok(())
    }

    fn wait_holder(&self) -> Result<u32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = self.holder_pid() {
                return Ok(pid);
            }
            if Instant::now() > deadline {
                bail!("the namespace holder did not start");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// PID of the process that holds the namespaces (the child of unshare), once `lo` is up.
    fn holder_pid(&self) -> Option<u32> {
        let children = std::fs::read_to_string(format!(
            "/proc/{}/task/{}/children",
            self.holder.id(),
            self.holder.id()
        ))
        .ok()?;
        let pid: u32 = children.split_whitespace().next()?.parse().ok()?;
        // `sh` becomes `sleep` once the loopback is up.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "sleep").then_some(pid)
    }

    fn spawn_server(&mut self) -> Result<()> {
        let holder = self.wait_holder()?;
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let data = self.dir.path().join("data");
        let child = Command::new("nsenter")
            .arg(format!("--net=/proc/{holder}/ns/net"))
            .arg(format!("--mount=/proc/{holder}/ns/mnt"))
            .arg("--")
            .arg(k1s_bin()?)
            .arg("server")
            .arg("--data-dir")
            .arg(&data)
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--https-listen-port")
            .arg(self.port.to_string())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .context("failed to start k1s under nsenter")?;
        self.server = Some(child);
        Ok(())
    }

    /// PID of the k1s server while it runs.
    pub fn server_pid(&mut self) -> Option<u32> {
        let s = self.server.as_mut()?;
        match s.try_wait() {
            Ok(None) => Some(s.id()),
            _ => None,
        }
    }

    fn netns(&self) -> Result<String> {
        let pid = self.holder_pid().context("namespace holder not found")?;
        Ok(format!("/proc/{pid}/ns/net"))
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(s) = self.server.as_mut() {
                if let Some(status) = s.try_wait()? {
                    bail!("k1s exited early ({status}):\n{}", self.logs());
                }
            }
            if self.kubeconfig.exists() {
                if let Ok(o) = self.kubectl_raw(&["get", "--raw", "/readyz"]) {
                    if o.status.success() {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("k1s did not become ready within 60s:\n{}", self.logs())
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run a command inside the server's network namespace with KUBECONFIG set.
    pub fn in_netns(&self, prog: &Path, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let ns = self.netns()?;
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={ns}"))
            .arg("--")
            .arg(prog)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("failed to run {}", prog.display()))?;
        if let (Some(input), Some(mut si)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            si.write_all(input.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    pub fn kubectl_raw(&self, args: &[&str]) -> Result<Output> {
        self.in_netns(&self.kubectl.clone(), args, None)
    }

    /// Run kubectl and require success; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.kubectl_stdin(args, None)
    }

    /// `kubectl get events` about the object `name`, printed with `output` (`-o` value).
    pub fn events_about(&self, name: &str, output: &str) -> Result<String> {
        self.kubectl(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            output,
        ])
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let o = self.in_netns(&self.kubectl.clone(), args, stdin)?;
        if !o.status.success() {
            bail!(
                "kubectl {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).to_string())
    }

    /// Run kubectl expecting failure; returns stderr.
    pub fn kubectl_fail(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let o = self.in_netns(&self.kubectl.clone(), args, stdin)?;
        if o.status.success() {
            bail!(
                "kubectl {} unexpectedly succeeded: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&o.stderr).to_string())
    }

    /// Apply a manifest given as text.
    pub fn apply(&self, yaml: &str) -> Result<String> {
        self.kubectl_stdin(&["apply", "-f", "-"], Some(yaml))
    }

    /// Poll `check` until it returns Ok(true) or the deadline passes.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        while Instant::now() < deadline {
            match check() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_err = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "timed out waiting for {what} (last error: {last_err:?})\nserver log:\n{}",
            self.logs()
        )
    }

    /// Waits until the node reports Ready: its kubelet, and the controllers it runs (the
    /// local-path provisioner), have started.
    pub fn wait_node_ready(&self) -> Result<()> {
        self.wait_for("node Ready", Duration::from_secs(30), || {
            let out = self.kubectl(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
            ])?;
            Ok(out == "True")
        })
    }

    /// Path of the server's network namespace (for commands run outside the harness).
    pub fn netns_path(&self) -> Result<String> {
        self.netns()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop the server with SIGKILL (for crash tests) and wait for it. Pods keep running.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        Ok(())
    }

    /// Start the server again on the same data dir and namespaces; returns once it is ready.
    pub fn restart(&mut self) -> Result<()> {
        self.restart_with(|_| Ok(()))
    }

    /// `restart`, running `while_down` between the kill and the new start.
    pub fn restart_with(&mut self, while_down: impl FnOnce(&Cluster) -> Result<()>) -> Result<()> {
        self.kill9()?;
        while_down(self)?;
        self.spawn_server()?;
        self.wait_ready()
    }
}

impl Cluster {
    /// Whether the runtime still holds a sandbox (a pod not yet removed).
    fn sandboxes_left(&self) -> bool {
        self.sandbox_count() > 0
    }

    /// Mount points in the server's mount namespace below `<data dir>/<sub>`.
    pub fn mounts_below(&self, sub: &str) -> Result<Vec<String>> {
        let pid = self.holder_pid().context("namespace holder not found")?;
        let base = self.dir.path().join("data").join(sub);
        let base = base.to_string_lossy();
        let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
        Ok(info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&*base))
            .map(str::to_string)
            .collect())
    }

    /// How many sandboxes the runtime holds.
    pub fn sandbox_count(&self) -> usize {
        let dir = self.dir.path().join("data/runtime/state/sandboxes");
        std::fs::read_dir(dir).map_or(0, |rd| rd.count())
    }

    /// Shims of this cluster, the spare included (found by the data dir in their command
    /// line), started by us.
    fn shim_pids(&self) -> Vec<u32> {
        let marker = self.dir.path().display().to_string();
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    continue;
                };
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(" shim ") && cmd.contains(&marker) {
                    out.push(pid);
                }
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- k1s server log ----\n{}", self.logs());
        }
        // Let the kubelet remove every pod (sandboxes, cgroups, veths) before stopping. The
        // server's spare shim serves no pod: it stops with the server.
        if self.server_pid().is_some() && self.sandboxes_left() {
            let _ = self.kubectl_raw(&[
                "delete",
                "pods",
                "--all",
                "-A",
                "--grace-period=1",
                "--timeout=30s",
            ]);
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.sandboxes_left() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(pid) = self.server_pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && self.server_pid().is_some() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        // Where the runtime keeps sandbox state outside the data dir (/run/k1s/<hash>, where
        // /run is a tmpfs), read through the holder: a tmpfs data dir is only visible there.
        let state = self.holder_pid().and_then(|pid| {
            let data = self.dir.path().join("data/runtime/state");
            std::fs::read_link(format!("/proc/{pid}/root{}", data.display())).ok()
        });
        // unshare --kill-child takes the holder with it.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // A shim left now (a test failed while its server was down) holds containers: kill
        // them with it, and remove the cgroups they leave, so nothing outlives the test.
        let shims = self.shim_pids();
        let mut doomed = Vec::new();
        for pid in &shims {
            doomed.extend(descendants(*pid));
        }
        doomed.extend(shims);
        let cgroups: Vec<String> = doomed.iter().filter_map(|p| k1s_cgroup(*p)).collect();
        for pid in &doomed {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && doomed.iter().any(|p| alive(*p)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        remove_cgroups(&cgroups);
        if let Some(state) = state {
            let _ = std::fs::remove_dir_all(state);
        }
    }
}

/// Running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Every descendant of `pid` (children first listed by the kernel, then theirs).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// The `/k1s/...` cgroup path of `pid`, if it is in one (any controller line will do: k1s uses
/// the same path in each).
fn k1s_cgroup(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find(|path| path.starts_with("/k1s/"))
        .map(str::to_string)
}

/// Remove the (now empty) cgroups and their empty `/k1s/pod*` parents in every hierarchy.
fn remove_cgroups(paths: &[String]) {
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let roots: Vec<PathBuf> = roots.flatten().map(|e| e.path()).collect();
    let mut all: Vec<String> = paths.to_vec();
    for p in paths {
        let mut cur = std::path::Path::new(p);
        while let Some(parent) = cur.parent() {
            if parent.as_os_str() == "/k1s" || parent.as_os_str() == "/" {
                break;
            }
            all.push(parent.display().to_string());
            cur = parent;
        }
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.len()));
    all.dedup();
    for p in &all {
        for root in std::iter::once(PathBuf::from("/sys/fs/cgroup")).chain(roots.iter().cloned()) {
            let dir = root.join(p.trim_start_matches('/'));
            if dir.is_dir() {
                // Fails harmlessly while a process is still exiting or the cgroup is not empty.
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}
