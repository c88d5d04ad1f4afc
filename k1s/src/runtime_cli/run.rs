//! `k1s runtime run [--rm] [--memory N] [--net] IMAGE [CMD...]`: one container in a fresh
//! sandbox, through the same `ContainerRuntime` calls the kubelet makes for a pod (run
//! sandbox, network, create, start, exit event, remove). Shows the container's output as it
//! comes (from its CRI log) and exits with its exit code, or like `docker run` with 125 when
//! k1s failed, 126 when the command could not be run and 127 when it does not exist.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use runtime::cri::{
    ContainerConfig, ContainerId, ContainerRuntime, ContainerState, NetMode, PodSandboxConfig,
    Resources, SandboxId, REASON_START_ERROR,
};
use runtime::layout::SandboxPaths;

use super::logs::LogFollower;
use super::remove::{remove_sandbox, NetOf};
use crate::agent::runtime_dir;

pub const EXIT_K1S_FAILED: u8 = 125;
pub const EXIT_CANNOT_INVOKE: u8 = 126;
pub const EXIT_NOT_FOUND: u8 = 127;

/// Marks the sandboxes `run` makes (the kubelet leaves sandboxes without a pod UID alone).
pub const RUN_LABEL: &str = "io.k1s.runtime.run";
/// How long a container gets between SIGTERM and SIGKILL when `run` is interrupted.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often the container's state is checked besides waiting for its exit event (a shim
/// that dies sends none).
const STATE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What `k1s runtime run --help` says the command does.
pub const ABOUT: &str = "Run one container in a fresh sandbox, the way a pod runs, and exit \
with its exit code (125: k1s failed, 126: the command could not be run, 127: it was not found)";

/// `k1s runtime run` parsed on its own (`main`): building the parser of every k1s command
/// took 0.2 ms of each run, most of it the first touch of code that only builds parsers.
/// Its help and errors read as the full parser's (test `run_parses_alone_as_in_the_full_parser`).
#[derive(clap::Parser, Debug)]
#[command(name = "k1s runtime run", about = ABOUT)]
pub struct RunAlone {
    #[command(flatten)]
    pub args: RunArgs,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
    data_dir: PathBuf,
    /// Remove the container and its sandbox when it exits.
    #[arg(long, conflicts_with = "detach")]
    rm: bool,
    /// Start the container, print its ID and return.
    #[arg(short, long)]
    detach: bool,
    /// Memory limit in bytes, or with a unit: 64m, 64Mi, 1g, 1Gi.
    #[arg(long, value_parser = parse_size)]
    memory: Option<u64>,
    /// Attach the sandbox to the pod network (bridge k1s0) and give it an address.
    #[arg(long)]
    net: bool,
    /// Container name (default: from the image name).
    #[arg(long)]
    name: Option<String>,
    /// Print how long each step took (ms) on stderr: `timings open=.. sandbox=.. net=..
    /// create=.. start=.. exit=.. remove=.. trash=.. total=..` (trash: the wait for the
    /// removed directories' deletion).
    #[arg(long, hide = true)]
    timings: bool,
    /// Environment variable `NAME=VALUE`; repeatable.
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Image reference or ID.
    image: String,
    /// Command and arguments; replace the image's Cmd, like Kubernetes `args`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

impl RunAlone {
    /// `args` (after `k1s runtime run`): the common shapes read directly, anything else
    /// (help, errors, `--opt=value`, short clusters, `--`, a command that starts with `-`,
    /// `K1S_DATA_DIR` set, an option added since) by clap. Reading them directly saves 0.1 ms
    /// of clap's cold code; test `the_direct_reading_agrees_with_clap` holds them equal.
    pub fn parse_args(args: Vec<String>) -> RunAlone {
        match read_plainly(&args, std::env::var_os("K1S_DATA_DIR").is_some()) {
            Some(args) => RunAlone { args },
            None => <RunAlone as clap::Parser>::parse_from(
                std::iter::once("k1s runtime run".to_string()).chain(args),
            ),
        }
    }
}

/// The options before the image, each with its value in the next argument, the image, and
/// a command whose first word does not start with `-`; None for anything else.
fn read_plainly(args: &[String], data_dir_env: bool) -> Option<RunArgs> {
    let mut it = args.iter();
    let mut data_dir = None;
    let (mut rm, mut detach, mut net, mut timings) = (false, false, false, false);
    let (mut memory, mut name, mut env) = (None, None, Vec::new());
    let value = |v: Option<&String>| v.filter(|v| !v.starts_with('-')).cloned();
    let image = loop {
        let a = it.next()?;
        match a.as_str() {
            "--rm" if !rm => rm = true,
            "-d" | "--detach" if !detach => detach = true,
            "--net" if !net => net = true,
            "--timings" if !timings => timings = true,
            "--data-dir" if data_dir.is_none() => data_dir = Some(value(it.next())?),
            "--memory" if memory.is_none() => memory = Some(parse_size(&value(it.next())?).ok()?),
            "--name" if name.is_none() => name = Some(value(it.next())?),
            "-e" | "--env" => env.push(value(it.next())?),
            _ if a.starts_with('-') => return None,
            _ => break a.clone(),
        }
    };
    let cmd: Vec<String> = it.cloned().collect();
    if (rm && detach) || cmd.first().is_some_and(|c| c.starts_with('-')) {
        return None;
    }
    let data_dir = match data_dir {
        Some(d) => PathBuf::from(d),
        None if data_dir_env => return None,
        None => PathBuf::from("/var/lib/k1s"),
    };
    Some(RunArgs {
        data_dir,
        rm,
        detach,
        memory,
        net,
        name,
        timings,
        env,
        image,
        cmd,
    })
}

/// Bytes with an optional decimal (k, m, g, t) or binary (Ki, Mi, Gi, Ti) unit.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {s:?} (use e.g. 67108864, 64m, 64Mi, 1g)");
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().map_err(|_| bad())?;
    let mult: u64 = match t[split..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|b| *b > 0).ok_or_else(bad)
}

/// `docker.io/library/busybox:1.36` -> `busybox`.
fn name_from_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let base = last.split(['@', ':']).next().unwrap_or(last);
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if clean.is_empty() {
        "run".into()
    } else {
        clean
    }
}

fn hosts_file(ip: Option<&str>, hostname: &str) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = ip {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// What `run` exits with for a container that ended in `state`.
pub fn exit_code(state: &ContainerState) -> u8 {
    match state {
        ContainerState::Exited {
            reason, message, ..
        } if reason == REASON_START_ERROR => {
            if message.contains("not found") || message.contains("no such file") {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_INVOKE
            }
        }
        ContainerState::Exited { exit_code, .. } => (*exit_code).clamp(0, 255) as u8,
        _ => EXIT_K1S_FAILED,
    }
}

pub async fn run(
    args: RunArgs,
    shim: Option<runtime::shim::Preforked>,
) -> anyhow::Result<ExitCode> {
    let mut t = Timings::new();
    let opened = super::open(&args.data_dir).await?;
    if let Some(shim) = shim {
        opened.use_preforked_shim(shim);
    }
    // The kubelet's code path: the `ContainerRuntime` trait.
    let rt: &dyn ContainerRuntime = &opened;
    if rt.image_status(&args.image).await?.is_none() {
        anyhow::bail!(
            "image {:?} not found (import it with `k1s image import` or pull it with `k1s image pull`)",
            args.image
        );
    }
    let net = match args.net {
        true => {
            let n = network::PodNetwork::new(network::NetworkConfig::new(&args.data_dir))
                .await
                .context("failed to open the pod network")?;
            n.ensure_host_setup()
                .await
                .context("failed to set up the pod network on the host")?;
            Some(n)
        }
        false => None,
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| name_from_image(&args.image));
    let suffix: String = format!(
        "{:08x}",
        u32::from_ne_bytes(runtime::daemon::random_bytes::<4>())
    );
    let sandbox_name = format!("{name}-{suffix}");
    let cfg = PodSandboxConfig {
        name: sandbox_name.clone(),
        namespace: "k1s-runtime-run".into(),
        hostname: sandbox_name.clone(),
        dns: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        hosts: hosts_file(None, &sandbox_name),
        net: NetMode::Pod,
        labels: vec![(RUN_LABEL.into(), "true".into())],
        ..Default::default()
    };
    t.mark("open");
    let sid = rt.run_pod_sandbox(&cfg).await?;
    t.mark("sandbox");
    let outcome = run_in_sandbox(rt, &args, &sid, &name, net.as_ref(), &mut t).await;
    let remove = args.rm || matches!(outcome, Err(_) | Ok(Outcome::NotStarted(_)));
    if remove {
        remove_sandbox(rt, &args.data_dir, &sid, NetOf::Known(net.as_ref())).await?;
        t.mark("remove");
    }
    // The removed directories, and the spare `rw/` one the sandbox took.
    super::remove::hand_over_trash(&opened);
    t.mark("trash");
    if args.timings {
        eprintln!("{}", t.line());
    }
    match outcome? {
        Outcome::Detached(cid) => {
            println!("{cid}");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Exited(state) | Outcome::NotStarted(state) => {
            if let ContainerState::Exited {
                reason, message, ..
            } = &state
            {
                if reason == REASON_START_ERROR {
                    eprintln!("k1s: container failed to start ({reason}): {message}");
                }
            }
            Ok(ExitCode::from(exit_code(&state)))
        }
    }
}

/// Durations of the steps of one `run`, in order.
struct Timings {
    started: std::time::Instant,
    last: std::time::Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl Timings {
    fn new() -> Timings {
        let now = std::time::Instant::now();
        Timings {
            started: now,
            last: now,
            steps: Vec::new(),
        }
    }

    /// Records the time since the previous step as `step`.
    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.steps.push((step, now - self.last));
        self.last = now;
    }

    fn line(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut s = String::from("timings");
        for (k, d) in &self.steps {
            s.push_str(&format!(" {k}={:.1}", ms(*d)));
        }
        s.push_str(&format!(" total={:.1}", ms(self.started.elapsed())));
        s
    }
}

enum Outcome {
    /// `--detach`: the container runs on.
    Detached(ContainerId),
    Exited(ContainerState),
    /// The container never ran (StartError): its sandbox goes whatever `--rm` says.
    NotStarted(ContainerState),
}

async fn run_in_sandbox(
    rt: &dyn ContainerRuntime,
    args: &RunArgs,
    sid: &SandboxId,
    name: &str,
    net: Option<&network::PodNetwork>,
    t: &mut Timings,
) -> anyhow::Result<Outcome> {
    let rdir = runtime_dir(&args.data_dir);
    let paths = SandboxPaths::new(&rdir, &sid.0);
    if let Some(net) = net {
        let ns = rt
            .pod_sandbox_status(sid)
            .await?
            .netns_path
            .context("the sandbox has no network namespace")?;
        let st = net
            .setup_pod(&sid.0, &ns)
            .await
            .context("failed to set up the pod network")?;
        t.mark("net");
        let hostname = rt.pod_sandbox_status(sid).await?.config.hostname;
        let hosts = paths.etc().join("hosts");
        std::fs::write(&hosts, hosts_file(Some(&st.ip.to_string()), &hostname))
            .with_context(|| format!("failed to write {}", hosts.display()))?;
    }
    // On the data dir's disk beside the writable layers, not in the sandbox's state (a tmpfs
    // where /run is one): nothing rotates this log. It goes with the sandbox. No directory of
    // its own: one inode fewer to make and free per run.
    let log_path = runtime::layout::rw_sandbox_dir(&rdir, &sid.0).join(format!("{name}.log"));
    let env = args
        .env
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let ccfg = ContainerConfig {
        name: name.to_string(),
        image: args.image.clone(),
        args: args.cmd.clone(),
        env,
        resources: Resources {
            memory_limit_bytes: args.memory,
            ..Default::default()
        },
        log_path: Some(log_path.clone()),
        ..Default::default()
    };
    let mut events = rt.events();
    let cid = rt.create_container(sid, &ccfg).await?;
    t.mark("create");
    let started = rt.start_container(&cid).await;
    t.mark("start");
    if let Err(e) = started {
        let state = rt.container_status(&cid).await?.state;
        return match state {
            ContainerState::Exited { .. } => Ok(Outcome::NotStarted(state)),
            _ => Err(e.into()),
        };
    }
    if args.detach {
        return Ok(Outcome::Detached(cid));
    }
    let mut logs = LogFollower::new(&log_path);
    let exited = tokio::select! {
        r = wait_exit(rt, &cid, &mut events, &mut logs) => Some(r?),
        _ = interrupt() => None,
    };
    let state = match exited {
        Some(state) => state,
        None => {
            rt.stop_container(&cid, STOP_GRACE).await?;
            rt.container_status(&cid).await?.state
        }
    };
    logs.pump().await?;
    t.mark("exit");
    Ok(Outcome::Exited(state))
}

/// Returns the container's final state once it has exited (from its exit event, which
/// carries it), printing its output meanwhile.
async fn wait_exit(
    rt: &dyn ContainerRuntime,
    cid: &ContainerId,
    events: &mut tokio::sync::broadcast::Receiver<runtime::cri::ContainerExitEvent>,
    logs: &mut LogFollower,
) -> anyhow::Result<ContainerState> {
    let first = tokio::time::Instant::now() + STATE_CHECK_INTERVAL;
    let mut check = tokio::time::interval_at(first, STATE_CHECK_INTERVAL);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pump = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            ev = events.recv() => {
                if let Ok(e) = ev {
                    if e.container_id == *cid {
                        return Ok(e.state);
                    }
                }
            }
            _ = check.tick() => {
                let s = rt.container_status(cid).await?;
                if matches!(s.state, ContainerState::Exited { .. }) {
                    return Ok(s.state);
                }
            }
            _ = pump.tick() => logs.pump().await?,
        }
    }
}

/// SIGINT or SIGTERM.
async fn interrupt() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("67108864"), Ok(67_108_864));
        assert_eq!(parse_size("64m"), Ok(64_000_000));
        assert_eq!(parse_size("64Mi"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1_000_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12q").is_err());
        assert!(parse_size("m").is_err());
    }

    #[test]
    fn the_direct_reading_agrees_with_clap() {
        if std::env::var_os("K1S_DATA_DIR").is_some() {
            eprintln!("skipped: K1S_DATA_DIR is set, and clap would read it");
            return;
        }
        let cases: &[&[&str]] = &[
            &["img"],
            &["img", "/bin/true"],
            &[
                "--rm",
                "--timings",
                "--data-dir",
                "/d",
                "k1s.local/busybox",
                "/bin/true",
            ],
            &[
                "--rm", "--net", "--memory", "64Mi", "-e", "A=b", "--env", "C=d", "img", "sh",
                "-c", "exit 3",
            ],
            &["-d", "--name", "web", "img", "sleep", "9"],
            &["--detach", "img"],
            &["img", "--rm"],
            &["img", "echo", "--rm", "-x"],
            &["--memory", "12q", "img"],
            &["--rm", "--rm", "img"],
            &["--rm", "-d", "img"],
            &["--name", "-x", "img"],
            &["--data-dir=/d", "img"],
            &["-de", "A=b", "img"],
            &["--", "img"],
            &["img", "--", "x"],
            &["--bogus", "img"],
            &["--help"],
            &[],
            &["--data-dir", "/d"],
        ];
        let mut read = 0;
        for args in cases {
            let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let Some(direct) = read_plainly(&owned, false) else {
                continue;
            };
            read += 1;
            let clap = <RunAlone as clap::Parser>::try_parse_from(
                std::iter::once("k1s runtime run").chain(args.iter().copied()),
            )
            .unwrap_or_else(|e| panic!("{args:?}: read directly, but clap says {e}"));
            assert_eq!(
                format!("{direct:?}"),
                format!("{:?}", clap.args),
                "{args:?}"
            );
        }
        assert!(read >= 6, "only {read} cases were read directly");
        // With K1S_DATA_DIR set, clap's reading of the environment decides.
        assert!(read_plainly(&["img".to_string()], true).is_none());
    }

    #[test]
    fn names_from_images() {
        assert_eq!(name_from_image("docker.io/library/busybox:1.36"), "busybox");
        assert_eq!(name_from_image("k1s.local/my_app@sha256:abc"), "my-app");
        assert_eq!(name_from_image("app"), "app");
    }

    #[test]
    fn exit_codes_like_docker_run() {
        let exited = |code: i32, reason: &str, message: &str| ContainerState::Exited {
            exit_code: code,
            reason: reason.into(),
            message: message.into(),
            started_at: None,
            finished_at: chrono::Utc::now(),
        };
        assert_eq!(exit_code(&exited(3, "Error", "")), 3);
        assert_eq!(exit_code(&exited(137, "OOMKilled", "")), 137);
        let missing = "exec: \"nope\": executable file not found in $PATH";
        assert_eq!(exit_code(&exited(128, REASON_START_ERROR, missing)), 127);
        let denied = "exec: \"/etc/passwd\": permission denied";
        assert_eq!(exit_code(&exited(128, REASON_START_ERROR, denied)), 126);
    }
}
