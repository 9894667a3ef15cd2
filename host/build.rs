//! Builds the shipped plugins and hands their paths to `builtin.rs`, which
//! embeds them so that `switchboard` is one self-contained binary.

const BUILTIN: &[(&str, &str)] = &[
    ("auth-jwt", "plugins/auth-jwt"),
    ("rooms", "plugins/rooms"),
    ("signaling", "plugins/signaling"),
    ("chat", "plugins/chat"),
    ("moderation", "plugins/moderation"),
    ("room-ttl", "plugins/room-ttl"),
];

fn main() {
    let packages: Vec<&str> = BUILTIN.iter().map(|(name, _)| *name).collect();
    let dirs: Vec<&str> = BUILTIN.iter().map(|(_, dir)| *dir).collect();
    let wasm = plugin_build::build(&packages, &dirs);
    for (name, path) in packages.iter().zip(wasm) {
        let var = format!(
            "SWITCHBOARD_PLUGIN_{}",
            name.replace('-', "_").to_uppercase()
        );
        println!("cargo:rustc-env={var}={}", path.display());
    }
}
