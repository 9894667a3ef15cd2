//! Builds plugin crates of this workspace as `wasm32-wasip2` components, for
//! build scripts that embed them (`host`) or hand them to tests (`tests`).
//!
//! A build script cannot depend on a crate built for another target, so this
//! runs a nested `cargo build`. It uses its own target directory: the outer
//! cargo holds the lock on the main one for the whole build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Variables the outer cargo sets for the build script or for rustc that
/// must not leak into the nested build: wrappers (clippy, sccache), flags
/// meant for the host target, and an explicit target.
const LEAKY_VARS: &[&str] = &[
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

/// Builds `packages` in release mode and returns the path of each one's
/// `.wasm`, in the same order. Prints the `rerun-if-changed` lines for the
/// sources every plugin depends on (`wit/`, `guest-sdk/`, `vocab/`) and for
/// `plugin_dirs`, the packages' own directories relative to the workspace.
pub fn build(packages: &[&str], plugin_dirs: &[&str]) -> Vec<PathBuf> {
    build_in("wasm-plugins", packages, plugin_dirs, &[])
}

/// Builds one package with extra cargo `features` into its own target
/// directory named after `variant`, so two builds of one crate (say, two
/// versions of a plugin for a hot-swap test) do not overwrite each other.
pub fn build_variant(package: &str, dir: &str, features: &[&str], variant: &str) -> PathBuf {
    let mut wasm = build_in(
        &format!("wasm-plugins-{variant}"),
        &[package],
        &[dir],
        features,
    );
    wasm.remove(0)
}

fn build_in(
    target_name: &str,
    packages: &[&str],
    plugin_dirs: &[&str],
    features: &[&str],
) -> Vec<PathBuf> {
    let workspace = workspace_root();
    for dir in ["wit", "guest-sdk", "vocab", "recording", "Cargo.lock"]
        .iter()
        .chain(plugin_dirs)
    {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    let target_dir = workspace.join("target").join(target_name);
    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&workspace)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for package in packages {
        cargo.args(["-p", package]);
    }
    if !features.is_empty() {
        cargo.arg("--features").arg(features.join(","));
    }
    for var in LEAKY_VARS {
        cargo.env_remove(var);
    }
    let status = cargo
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build plugins {packages:?}: {e}"));
    if !status.success() {
        panic!(
            "building plugins {packages:?} for {TARGET} failed (see above). \
             If the target is missing, run `rustup target add {TARGET}`."
        );
    }
    packages
        .iter()
        .map(|package| {
            let file = format!("{}.wasm", package.replace('-', "_"));
            target_dir.join(TARGET).join("release").join(file)
        })
        .collect()
}

fn workspace_root() -> PathBuf {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("run from a build script");
    Path::new(&manifest)
        .ancestors()
        .find(|dir| dir.join("wit").is_dir() && dir.join("Cargo.lock").is_file())
        .expect("the build script's crate is inside the Switchboard workspace")
        .to_path_buf()
}
