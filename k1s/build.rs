//! Links the `k1s` binary as a position-dependent executable (see "The binary" in
//! docs/ARCHITECTURE.md): a PIE k1s has about 46,000 relative relocations, which the loader
//! applies in every process, dirtying 0.8 MB of pointers per shim. `K1S_PIE=1` at build time
//! keeps the toolchain's PIE default.

fn main() {
    println!("cargo:rerun-if-env-changed=K1S_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let pie = std::env::var("K1S_PIE").is_ok_and(|v| v == "1");
    if linux && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
