//! The `k1s` binary: subcommands and wiring of the components, with one root cancellation
//! token. `k1s server` runs the API server (and, as they land, the controllers, scheduler and
//! kubelet) in one process.

mod agent;
mod image;
mod runtime_cli;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "k1s",
    version,
    about = "Kubernetes for one machine, in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the k1s server: API server and node components.
    Server(server::ServerArgs),
    /// Manage container images in the runtime's store.
    #[command(subcommand)]
    Image(image::ImageCmd),
    /// Inspect and debug the container runtime's sandboxes and containers (like crictl).
    #[command(subcommand)]
    Runtime(runtime_cli::RuntimeCmd),
    /// Internal: the per-pod shim (started by the runtime, not by users).
    #[command(hide = true, disable_help_flag = true)]
    Shim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    // The shim is started once per pod and stays resident: it skips building the whole command
    // line parser, which would fault in code and heap it never uses again.
    let mut args = std::env::args();
    if args.nth(1).as_deref() == Some("shim") {
        return shim_main(&args.collect::<Vec<_>>());
    }
    // `k1s runtime purge-trash` deletes what waits in the trash and exits: it needs no command
    // line parser, logging or async runtime either.
    let argv: Vec<String> = std::env::args().collect();
    if let [_, a, b, c, data_dir] = argv.as_slice() {
        if [a, b, c].map(String::as_str) == ["runtime", "purge-trash", "--data-dir"] {
            runtime::purge_trash(&agent::runtime_dir(std::path::Path::new(data_dir)));
            return std::process::ExitCode::SUCCESS;
        }
    }
    // `runtime run` forks its sandbox's shim first thing, so that the shim's set-up (above
    // all a network namespace, 0.3-0.5 ms) overlaps the parsing of the command line, which
    // it does alone (`RunAlone`).
    let code = if argv.get(1..3).is_some_and(|a| a == ["runtime", "run"]) {
        let preforked = runtime::shim::prefork();
        let run = runtime_cli::run::RunAlone::parse_args(argv.into_iter().skip(3).collect());
        runtime_cli::runtime_main(runtime_cli::RuntimeCmd::Run(run.args), preforked)
    } else {
        match Cli::parse().command {
            Command::Server(args) => return server::main(args),
            Command::Image(cmd) => image::image_main(cmd),
            Command::Runtime(cmd) => runtime_cli::runtime_main(cmd, None),
            Command::Shim { args } => return shim_main(&args),
        }
    };
    // A command's output is written; its exit need not wait for its address space to go.
    runtime::memory::hand_off_address_space();
    code
}

fn shim_main(args: &[String]) -> std::process::ExitCode {
    let code = runtime::shim::main(args);
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}

/// The async runtime of every k1s command: two workers are plenty on the small machines k1s
/// targets, and the blocking pool takes file and syscall work.
pub(crate) fn async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// The async runtime of a `k1s runtime` command: one thread. Its work is a chain of calls to
/// shims; a worker thread of its own would only add a hand-off (epoll on the worker, a futex
/// wake of the main thread) to each reply.
pub(crate) fn cli_async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Log to stderr for a CLI command: `K1S_LOG` if set, else `default` (an EnvFilter). A plain
/// level takes a level filter: building an EnvFilter cost a `runtime run` 0.04 ms.
pub(crate) fn cli_logging(default: &str) {
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match std::env::var("K1S_LOG") {
        Err(_) => match default.parse::<tracing_subscriber::filter::LevelFilter>() {
            Ok(level) => fmt.with_max_level(level).init(),
            Err(_) => fmt
                .with_env_filter(tracing_subscriber::EnvFilter::new(default))
                .init(),
        },
        Ok(filter) => fmt
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `runtime run` bypasses the full parser (`main`): it must parse, help and fail alike.
    #[test]
    fn run_parses_alone_as_in_the_full_parser() {
        let cases: &[&[&str]] = &[
            &["--help"],
            &["--bogus", "x"],
            &[],
            &["--rm", "--detach", "img"],
            &["--memory", "12q", "img"],
            &[
                "--rm", "--memory", "64Mi", "-e", "A=b", "img", "sh", "-c", "exit 3",
            ],
        ];
        for args in cases {
            let full = Cli::try_parse_from(["k1s", "runtime", "run"].iter().chain(args.iter()));
            let alone = runtime_cli::run::RunAlone::try_parse_from(
                std::iter::once(&"k1s runtime run").chain(args.iter()),
            );
            match (full, alone) {
                (Ok(f), Ok(a)) => match f.command {
                    Command::Runtime(runtime_cli::RuntimeCmd::Run(f)) => {
                        assert_eq!(format!("{f:?}"), format!("{:?}", a.args), "{args:?}")
                    }
                    _ => panic!("not a run: {args:?}"),
                },
                (Err(f), Err(a)) => {
                    assert_eq!(f.kind(), a.kind(), "{args:?}");
                    assert_eq!(f.render().to_string(), a.render().to_string(), "{args:?}");
                }
                (f, a) => panic!("{args:?}: full {:?}, alone {:?}", f.is_ok(), a.is_ok()),
            }
        }
    }
}
