//! The `k1s` binary: subcommands and wiring.
fn main() {}
