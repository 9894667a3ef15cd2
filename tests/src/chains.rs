//! Plugin chains for test configs.

/// The misbehave test plugin's component, built by tests/build.rs.
pub const MISBEHAVE_WASM: &str = env!("MISBEHAVE_WASM");

/// The sandbox probe test plugin's component, built by tests/build.rs.
pub const SANDBOX_WASM: &str = env!("SANDBOX_WASM");

/// A config: `preamble` (the tables that come first, e.g.
/// `[plugin_limits]`), then one `[[plugins]]` table per entry, in order.
pub fn config(preamble: &str, entries: &[String]) -> String {
    let mut config = format!("{preamble}\n");
    for entry in entries {
        config.push_str(&format!("\n[[plugins]]\n{entry}\n"));
    }
    config
}

/// A chain entry for the built-in plugin `name`.
pub fn builtin(name: &str) -> String {
    format!("name = {name:?}")
}

/// A chain entry loading `name` from the component at `path`.
pub fn from_file(name: &str, path: &str) -> String {
    format!("name = {name:?}\npath = {path:?}")
}

/// The default chain with the `misbehave` test plugin before `signaling`.
pub fn misbehave(preamble: &str) -> String {
    let misbehave = from_file("misbehave", MISBEHAVE_WASM);
    let chain = [
        builtin("auth-jwt"),
        builtin("rooms"),
        misbehave,
        builtin("signaling"),
    ];
    config(preamble, &chain)
}

/// The default chain with the `sandbox` probe plugin after `signaling`,
/// granted the environment variables `env` (by name, as `[[plugins]] env`
/// does).
pub fn sandbox(preamble: &str, env: &[&str]) -> String {
    let sandbox = format!("{}\nenv = {env:?}", from_file("sandbox", SANDBOX_WASM));
    let chain = [
        builtin("auth-jwt"),
        builtin("rooms"),
        builtin("signaling"),
        sandbox,
    ];
    config(preamble, &chain)
}
