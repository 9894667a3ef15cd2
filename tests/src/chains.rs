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

/// The sandbox probe test plugin's component, built by tests/build.rs.
pub const SANDBOX_WASM: &str = env!("SANDBOX_WASM");

/// A config whose chain is the default one with the `sandbox` probe plugin
/// after `signaling`, granted the environment variables `env` (by name, as
/// `[[plugins]] env` does); `preamble` holds the tables that come first.
pub fn sandbox(preamble: &str, env: &[&str]) -> String {
    let env = env
        .iter()
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"{preamble}
[[plugins]]
name = "auth-jwt"

[[plugins]]
name = "rooms"

[[plugins]]
name = "signaling"

[[plugins]]
name = "sandbox"
path = "{SANDBOX_WASM}"
env = [{env}]
"#
    )
}
