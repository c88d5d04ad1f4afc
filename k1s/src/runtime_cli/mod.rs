//! `k1s runtime`: a debug CLI for the container runtime, like crictl and ctr. Every command
//! opens the runtime on `<data-dir>/runtime` itself (re-adopting the shims found there), so it
//! works whether or not `k1s server` runs on that data dir: shims accept any number of
//! clients, and the runtime's records are written atomically. `run` goes through the same
//! `ContainerRuntime` calls as the kubelet's pods. Listing lives in `list`, `run` in `run`,
//! log reading in `logs`, exec in `exec`, removal in `remove`.

mod exec;
mod list;
mod logs;
mod remove;
pub(crate) mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use runtime::cri::{ContainerId, SandboxId};

use crate::agent::runtime_dir;

#[derive(Subcommand, Debug)]
pub enum RuntimeCmd {
    /// List pod sandboxes (like `crictl pods`).
    Sandboxes {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// List containers (like `crictl ps`): running ones, or all with `-a`.
    Ps {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        /// Show all containers, not only running ones.
        #[arg(short, long)]
        all: bool,
        /// Print container IDs only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a container's (or sandbox's) status and resolved configuration as JSON.
    Inspect {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        /// Container or sandbox ID (a unique prefix is enough).
        id: String,
    },
    /// Print a container's log (stdout and stderr).
    Logs {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        id: String,
    },
    /// Run a command in a running container; exits with the command's exit code.
    Exec {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        /// Allocate a terminal.
        #[arg(short, long)]
        tty: bool,
        /// Pass stdin to the command.
        #[arg(short, long)]
        interactive: bool,
        id: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    #[command(about = run::ABOUT)]
    Run(run::RunArgs),
    /// Remove containers (killing them first).
    Rm {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Stop and remove sandboxes with their containers and network.
    Rmp {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Internal: delete removed containers and sandboxes still waiting in the trash.
    #[command(hide = true)]
    PurgeTrash {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
    },
}

/// `shim`: the one `main` forked for a `run` before it parsed the command line (see
/// `shim::prefork`); None for other commands, or when that fork failed, and then `run` starts
/// a shim the usual way.
pub fn runtime_main(cmd: RuntimeCmd, shim: Option<runtime::shim::Preforked>) -> ExitCode {
    crate::cli_logging("warn");
    let rt = match crate::cli_async_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("k1s: failed to start the async runtime: {e}");
            return ExitCode::from(run::EXIT_K1S_FAILED);
        }
    };
    match rt.block_on(dispatch(cmd, shim)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("k1s: {e:#}");
            // Like `docker run`: 125 when the tool itself failed.
            ExitCode::from(run::EXIT_K1S_FAILED)
        }
    }
}

async fn dispatch(
    cmd: RuntimeCmd,
    shim: Option<runtime::shim::Preforked>,
) -> anyhow::Result<ExitCode> {
    match cmd {
        RuntimeCmd::Sandboxes { data_dir } => list::sandboxes(&open(&data_dir).await?).await,
        RuntimeCmd::Ps {
            data_dir,
            all,
            quiet,
        } => list::ps(&open(&data_dir).await?, all, quiet).await,
        RuntimeCmd::Inspect { data_dir, id } => list::inspect(&open(&data_dir).await?, &id).await,
        RuntimeCmd::Logs {
            data_dir,
            follow,
            id,
        } => logs::logs(&open(&data_dir).await?, &id, follow).await,
        RuntimeCmd::Exec {
            data_dir,
            tty,
            interactive,
            id,
            cmd,
        } => exec::exec(&open(&data_dir).await?, &id, &cmd, tty, interactive).await,
        RuntimeCmd::Run(args) => run::run(args, shim).await,
        RuntimeCmd::Rm { data_dir, ids } => {
            let rt = open(&data_dir).await?;
            let code = remove::rm(&rt, &ids).await;
            remove::hand_over_trash(&rt);
            code
        }
        RuntimeCmd::Rmp { data_dir, ids } => {
            let rt = open(&data_dir).await?;
            let code = remove::rmp(&rt, &data_dir, &ids).await;
            remove::hand_over_trash(&rt);
            code
        }
        RuntimeCmd::PurgeTrash { data_dir } => {
            runtime::purge_trash(&runtime_dir(&data_dir));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The runtime on `<data_dir>/runtime`, with every sandbox on disk re-adopted.
pub(crate) async fn open(data_dir: &Path) -> anyhow::Result<runtime::Runtime> {
    let cfg = runtime::RuntimeConfig {
        deferred_cleanup: true,
        ..runtime::RuntimeConfig::new(runtime_dir(data_dir))
    };
    runtime::Runtime::new(cfg)
        .await
        .context("failed to open the container runtime")
}

/// The one ID among `ids` that starts with `prefix` (an exact match wins).
fn unique<'a>(
    what: &str,
    prefix: &str,
    ids: impl Iterator<Item = &'a str>,
) -> anyhow::Result<String> {
    if prefix.is_empty() {
        anyhow::bail!("empty {what} ID");
    }
    let matches: Vec<&str> = ids.filter(|id| id.starts_with(prefix)).collect();
    if let Some(exact) = matches.iter().find(|id| **id == prefix) {
        return Ok(exact.to_string());
    }
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] => anyhow::bail!("{what} {prefix:?} not found"),
        _ => anyhow::bail!(
            "{what} ID {prefix:?} is ambiguous ({} matches)",
            matches.len()
        ),
    }
}

pub(crate) async fn resolve_container(
    rt: &runtime::Runtime,
    prefix: &str,
) -> anyhow::Result<ContainerId> {
    let all = rt.list_containers().await?;
    unique("container", prefix, all.iter().map(|c| c.id.0.as_str())).map(ContainerId)
}

pub(crate) async fn resolve_sandbox(
    rt: &runtime::Runtime,
    prefix: &str,
) -> anyhow::Result<SandboxId> {
    let all = rt.list_pod_sandboxes().await?;
    unique("sandbox", prefix, all.iter().map(|s| s.id.0.as_str())).map(SandboxId)
}

#[cfg(test)]
mod tests {
    use super::unique;

    #[test]
    fn id_prefixes() {
        let ids = ["abc123", "abd456", "abc"];
        assert_eq!(
            unique("container", "abd", ids.iter().copied()).ok(),
            Some("abd456".into())
        );
        // An exact ID wins over longer IDs it prefixes.
        assert_eq!(
            unique("container", "abc", ids.iter().copied()).ok(),
            Some("abc".into())
        );
        assert!(unique("container", "ab", ids.iter().copied()).is_err());
        assert!(unique("container", "x", ids.iter().copied()).is_err());
        assert!(unique("container", "", ids.iter().copied()).is_err());
    }
}
