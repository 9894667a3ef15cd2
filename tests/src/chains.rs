//! Plugin chains for test configs.

/// The misbehave test plugin's component, built by tests/build.rs.
pub const MISBEHAVE_WASM: &str = env!("MISBEHAVE_WASM");

/// The sandbox probe test plugin's component, built by tests/build.rs.
pub const SANDBOX_WASM: &str = env!("SANDBOX_WASM");

/// The noisy test plugin's component (prints, grows, spins on demand),
/// built by tests/build.rs.
pub const NOISY_WASM: &str = env!("NOISY_WASM");

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

/// `entry` with its per-plugin `config` table, given as the table's keys.
/// Inline, so that keys added after it stay in the `[[plugins]]` table.
pub fn with_config(entry: String, table: &str) -> String {
    format!("{entry}\nconfig = {{ {table} }}")
}

/// The default chain with `extra` between `rooms` and `signaling`.
pub fn with_extra(preamble: &str, extra: &[String]) -> String {
    let mut chain = vec![builtin("auth-jwt"), builtin("rooms")];
    chain.extend_from_slice(extra);
    chain.push(builtin("signaling"));
    config(preamble, &chain)
}

/// The default chain with rooms capped at `capacity` members, for the
/// room-full rules.
pub fn rooms_capped(preamble: &str, capacity: usize) -> String {
    let rooms = with_config(builtin("rooms"), &format!("capacity = {capacity}"));
    config(
        preamble,
        &[builtin("auth-jwt"), rooms, builtin("signaling")],
    )
}

/// The default chain with the `misbehave` test plugin before `signaling`.
pub fn misbehave(preamble: &str) -> String {
    with_extra(preamble, &[from_file("misbehave", MISBEHAVE_WASM)])
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
