//! Builds the plugins that exist only for the end-to-end tests and tells
//! the tests where they are (`env!("MISBEHAVE_WASM")`).

fn main() {
    let wasm = plugin_build::build(&["misbehave"], &["tests/plugins/misbehave"]);
    println!("cargo:rustc-env=MISBEHAVE_WASM={}", wasm[0].display());
}
