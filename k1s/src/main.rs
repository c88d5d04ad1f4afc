//! The `k1s` binary: subcommands and wiring of the components, with one root cancellation
//! token. `k1s server` runs the API server (and, as they land, the controllers, scheduler and
//! kubelet) in one process.

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::main(args),
    }
}
