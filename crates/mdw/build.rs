//! Link flags for the `mdw` binary.
//!
//! Packed relative relocations (DT_RELR, glibc ≥ 2.36): the loader reads a compact table
//! instead of the full relocation table at every start, so Russell's resident set is smaller
//! and every `mdw` process starts with fewer page faults (figures in docs/BENCHMARKS.md). Only on Linux with glibc,
//! where the linker (rust-lld, or GNU ld ≥ 2.38) and the loader both know the format.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let glibc = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux && glibc {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
