//! Plugin chains for test configs.

/// The misbehave test plugin's component, built by tests/build.rs.
pub const MISBEHAVE_WASM: &str = env!("MISBEHAVE_WASM");

/// A config whose chain is the default one with the `misbehave` test plugin
/// before `signaling`; `preamble` holds the tables that come first (e.g.
/// `[plugin_limits]`).
pub fn misbehave(preamble: &str) -> String {
    format!(
        r#"{preamble}
[[plugins]]
name = "auth-jwt"

[[plugins]]
name = "rooms"

[[plugins]]
name = "misbehave"
path = "{MISBEHAVE_WASM}"

[[plugins]]
name = "signaling"
"#
    )
}
