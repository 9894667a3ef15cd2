//! Builds the plugins the end-to-end tests load from files and tells the
//! tests where they are (`env!("MISBEHAVE_WASM")` and so on): the test
//! plugins in `tests/plugins/`, the three builds of `stamp`, and `rooms` and
//! the example plugins of `plugins/`, which tests load by path (or swap in)
//! as well as by their built-in names.

fn main() {
    let packages = [
        ("misbehave", "tests/plugins/misbehave", "MISBEHAVE_WASM"),
        ("noisy", "tests/plugins/noisy", "NOISY_WASM"),
        ("sandbox", "tests/plugins/sandbox", "SANDBOX_WASM"),
        ("script", "tests/plugins/script", "SCRIPT_WASM"),
        ("stamp", "tests/plugins/stamp", "STAMP_WASM"),
        ("rooms", "plugins/rooms", "ROOMS_WASM"),
        ("chat", "plugins/chat", "CHAT_WASM"),
        ("moderation", "plugins/moderation", "MODERATION_WASM"),
        ("room-ttl", "plugins/room-ttl", "ROOM_TTL_WASM"),
    ];
    let names: Vec<&str> = packages.iter().map(|(name, _, _)| *name).collect();
    let dirs: Vec<&str> = packages.iter().map(|(_, dir, _)| *dir).collect();
    let wasm = plugin_build::build(&names, &dirs);
    for ((_, _, var), path) in packages.iter().zip(&wasm) {
        println!("cargo:rustc-env={var}={}", path.display());
    }

    // The same source with the `v2` feature, in a target dir of its own so
    // that it does not overwrite version 1.
    let v2 = plugin_build::build_variant("stamp", "tests/plugins/stamp", &["v2"], "stamp-v2");
    println!("cargo:rustc-env=STAMP_V2_WASM={}", v2.display());
    let flaky =
        plugin_build::build_variant("stamp", "tests/plugins/stamp", &["flaky"], "stamp-flaky");
    println!("cargo:rustc-env=STAMP_FLAKY_WASM={}", flaky.display());
}
