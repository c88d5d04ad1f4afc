//! Test scaffolding: `require_root!`, re-running a test inside its own network namespace,
//! throwaway pod namespaces, and small TCP helpers that run inside a namespace.

use std::{
    fs::File,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use nix::{
    mount::{mount, umount2, MntFlags, MsFlags},
    sched::{unshare, CloneFlags},
};

/// Env var set in the re-executed test process that runs inside its own namespaces.
const INNER_ENV: &str = "K1S_NETWORK_TEST_INNER";

/// Skips the test when not root; fails it when `CI=true` (CI must run it).
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("this test needs root and CI=true");
            }
            eprintln!("skipping: this test needs root");
            return;
        }
    };
}

/// Runs the rest of the test only inside a fresh network + mount namespace: the first call
/// re-executes this test binary for exactly `$name` under `unshare --net --mount` and returns.
macro_rules! in_own_netns {
    ($name:expr) => {
        if !crate::support::inside_own_netns($name) {
            return;
        }
    };
}

/// Returns true when already inside; otherwise runs test `name` in a new namespace pair,
/// asserts it passed, and returns false.
pub fn inside_own_netns(name: &str) -> bool {
    if std::env::var_os(INNER_ENV).is_some() {
        init_tracing();
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER_ENV, "1")
        .status()
        .expect("run unshare (util-linux)");
    assert!(
        status.success(),
        "{name} failed inside its own network namespace: {status}"
    );
    false
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "network=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Runs an async test body on a current-thread runtime and fails the test on its error.
pub fn block_on<F: std::future::Future<Output = Result<()>>>(body: F) {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(body);
    if let Err(err) = result {
        panic!("{err:#}");
    }
}

/// A network namespace standing in for a pod sandbox: created by a thread that unshares its
/// network namespace, kept alive by a bind mount (in the test's private mount namespace).
pub struct PodNetns {
    path: PathBuf,
}

impl PodNetns {
    pub fn new(dir: &Path, name: &str) -> Result<Self> {
        let path = dir.join(name);
        File::create(&path).with_context(|| format!("create {}", path.display()))?;
        let target = path.clone();
        thread::spawn(move || -> Result<()> {
            unshare(CloneFlags::CLONE_NEWNET).context("unshare netns")?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .context("bind mount netns")?;
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("netns thread panicked"))??;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PodNetns {
    fn drop(&mut self) {
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Interface names in the network namespace at `netns` (or the test's own with `None`).
pub fn links(netns: Option<&Path>) -> Result<Vec<String>> {
    let read =
        || -> std::io::Result<String> { std::fs::read_to_string("/proc/thread-self/net/dev") };
    let text = match netns {
        Some(path) => network::netns::run_blocking(path, read)??,
        None => read()?,
    };
    Ok(text
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_owned())
        .collect())
}

/// Binds a TCP listener inside `netns` and serves `greeting` to up to `count` connections on a
/// background thread. Returns the bound address.
pub fn serve_in(
    netns: Option<&Path>,
    addr: &str,
    greeting: &'static str,
    count: usize,
) -> Result<SocketAddr> {
    let addr = addr.to_owned();
    let listener = match netns {
        Some(path) => network::netns::run_blocking(path, move || TcpListener::bind(addr))??,
        None => TcpListener::bind(addr)?,
    };
    let local = listener.local_addr()?;
    thread::spawn(move || {
        for mut stream in listener.incoming().take(count).flatten() {
            let _ = stream.write_all(greeting.as_bytes());
        }
    });
    Ok(local)
}

/// Connects from inside `netns` to `to` and returns what the server sent, or the connect
/// error, with the time it took.
pub fn fetch_from(netns: &Path, to: SocketAddr) -> Result<(std::io::Result<String>, Duration)> {
    let result = network::netns::run_blocking(netns, move || {
        let started = Instant::now();
        let result = TcpStream::connect_timeout(&to, Duration::from_secs(5)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        (result, started.elapsed())
    })?;
    Ok(result)
}

/// Fails unless `result` is the kernel's "no route to host" and came within `limit`.
pub fn expect_unreachable<T: std::fmt::Debug>(
    result: &std::io::Result<T>,
    took: Duration,
    limit: Duration,
    what: &str,
) -> Result<()> {
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::HostUnreachable => {}
        other => bail!("{what}: expected EHOSTUNREACH, got {other:?} after {took:?}"),
    }
    if took > limit {
        bail!("{what}: unreachable took {took:?}, expected it within {limit:?}");
    }
    Ok(())
}

/// Sends one UDP datagram from inside `netns` on a connected socket and waits for the ICMP
/// error to surface on the next receive (`IP_RECVERR`: without it UDP ignores "host
/// unreachable" as a soft error).
pub fn udp_probe_from(netns: &Path, to: SocketAddr) -> Result<(std::io::Result<usize>, Duration)> {
    let result = network::netns::run_blocking(netns, move || {
        let started = Instant::now();
        let result = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|socket| {
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv4RecvErr, &true)?;
            socket.connect(to)?;
            socket.set_read_timeout(Some(Duration::from_secs(5)))?;
            socket.send(b"probe")?;
            socket.recv(&mut [0u8; 16])
        });
        (result, started.elapsed())
    })?;
    Ok(result)
}
