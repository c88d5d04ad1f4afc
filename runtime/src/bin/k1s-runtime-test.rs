//! Test helper: stands in for the k1s binary's `shim` subcommand in runtime tests
//! (`/proc/self/exe` is the test harness there). `k1s-runtime-test shim <args>`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "shim" => std::process::exit(runtime::shim::main(rest)),
        _ => {
            eprintln!("usage: k1s-runtime-test shim ...");
            std::process::exit(2);
        }
    }
}
