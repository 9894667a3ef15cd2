//! The server's configuration: one TOML file in which every key has a
//! default. Unknown keys are errors, so a typo fails at start-up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::ids::EventName;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// Browser origins allowed to connect; empty allows any. Requests
    /// without an `Origin` header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    pub heartbeat: Heartbeat,
    pub auth: Auth,
    pub session: Session,
    pub shutdown: Shutdown,
    pub plugin_limits: PluginLimits,
    pub plugin_cache: PluginCache,
    pub admin: Admin,
    pub watch: Watch,
    pub recordings: Recordings,
    /// Several nodes sharing one Redis as one server; absent, this node is
    /// the whole server.
    pub cluster: Option<Cluster>,
    /// The plugin chain, in the order plugins are asked.
    pub plugins: Vec<PluginEntry>,
    /// Serve the demo call page at `/demo`, and a fresh dev token to anyone
    /// at `/demo/token`: for development only.
    pub demo: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_message_bytes: usize,
    /// Token bucket refill, messages per second per connection.
    pub rate_per_sec: f64,
    /// Token bucket size.
    pub rate_burst: f64,
    /// Beyond this many open WebSocket connections, upgrades get 503.
    pub max_connections: usize,
    /// A `room:join` that would open one more room than this is
    /// `ROOM_FULL`.
    pub max_rooms: usize,
    /// Time a new TCP connection has to send its HTTP request head.
    pub handshake_timeout_ms: u64,
    /// A client whose unsent messages exceed either bound is disconnected.
    pub outbound_max_messages: usize,
    pub outbound_max_bytes: usize,
    /// Token buckets of their own for some events, drawn from after the
    /// connection's: `[limits.events."chat:message"]`.
    pub events: HashMap<String, EventRate>,
}

/// One event's token bucket.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRate {
    pub rate_per_sec: f64,
    pub rate_burst: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Heartbeat {
    pub interval_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// When false, every connection counts as authenticated from the start,
    /// with its client id as its user id.
    pub required: bool,
    pub timeout_ms: u64,
}

/// Session resume (PROTOCOL.md, Session resume).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Session {
    /// How long a session outlives an unexpected disconnect.
    pub resume_grace_ms: u64,
    /// Messages kept for a disconnected session; one more ends it.
    pub replay_limit: usize,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            resume_grace_ms: 15_000,
            replay_limit: 256,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    pub drain_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Linear memory one plugin instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call into a plugin.
    pub deadline_ms: u64,
}

/// The operator API's listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Without `SWITCHBOARD_ADMIN_TOKEN` this must be a loopback address.
    pub listen: SocketAddr,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        }
    }
}

/// Recordings of rooms' plugin calls (`POST /admin/recordings`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recordings {
    /// Where recording files are written; created when the first one
    /// starts. Relative to the working directory.
    pub dir: PathBuf,
}

impl Default for Recordings {
    fn default() -> Self {
        Recordings {
            dir: PathBuf::from("recordings"),
        }
    }
}

/// Polling of the plugins directory for changed components.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Watch {
    pub interval_ms: u64,
}

impl Default for Watch {
    fn default() -> Self {
        Watch { interval_ms: 1000 }
    }
}

/// Cluster mode (docs/CLUSTER.md): nodes with the same `redis_url` and
/// `prefix` are one server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    pub redis_url: String,
    /// Put before every key and channel, so several clusters (or test
    /// runs) can share one Redis.
    pub prefix: String,
    /// Unique within the cluster; defaults to a random one per start.
    pub node_id: Option<String>,
    /// How often the node renews its lease and looks for dead nodes.
    pub heartbeat_ms: u64,
    /// A node that has not renewed its lease for this long is dead: its
    /// clients leave their rooms and its rooms move.
    pub lease_ms: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            redis_url: "redis://127.0.0.1:6379".into(),
            prefix: "switchboard".into(),
            node_id: None,
            heartbeat_ms: 1000,
            lease_ms: 3000,
        }
    }
}

/// Where compiled plugins are kept between runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginCache {
    pub enabled: bool,
    /// Defaults to `$XDG_CACHE_HOME/switchboard` or `~/.cache/switchboard`.
    pub dir: Option<PathBuf>,
    /// Past this many bytes of compiled plugins, those used longest ago
    /// are removed (a JavaScript plugin compiles to tens of MB).
    pub max_bytes: u64,
}

impl Default for PluginCache {
    fn default() -> Self {
        PluginCache {
            enabled: true,
            dir: None,
            max_bytes: 1 << 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    pub name: String,
    /// Load from this file instead of the built-in plugin or the plugins
    /// directory.
    pub path: Option<PathBuf>,
    /// Environment variables the plugin may read. Defaults to what the
    /// built-in plugin of that name needs.
    pub env: Option<Vec<String>>,
    /// The plugin's own settings, handed to its `init` as JSON.
    #[serde(default = "empty_table")]
    pub config: toml::Table,
    /// This plugin's `[plugin_limits] memory_bytes` (a JavaScript or
    /// Python runtime needs more than a Rust plugin).
    pub memory_bytes: Option<usize>,
    /// This plugin's `[plugin_limits] deadline_ms`.
    pub deadline_ms: Option<u64>,
}

impl PluginEntry {
    /// The limits this plugin runs under: its own where the entry sets
    /// them, `[plugin_limits]` otherwise.
    pub fn limits(&self, defaults: &PluginLimits) -> PluginLimits {
        PluginLimits {
            memory_bytes: self.memory_bytes.unwrap_or(defaults.memory_bytes),
            deadline_ms: self.deadline_ms.unwrap_or(defaults.deadline_ms),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(bytes) = self.memory_bytes {
            check_plugin_memory("memory_bytes", bytes)?;
        }
        if self.deadline_ms == Some(0) {
            bail!("`deadline_ms` must be greater than 0");
        }
        Ok(())
    }
}

/// One wasm page: no plugin starts with less memory.
const MIN_PLUGIN_MEMORY: usize = 64 << 10;
/// All that a 32-bit wasm memory can address.
pub(crate) const MAX_PLUGIN_MEMORY: usize = 4 << 30;

/// Checks one plugin memory limit; `key` names it in the error.
fn check_plugin_memory(key: &str, bytes: usize) -> anyhow::Result<()> {
    if !(MIN_PLUGIN_MEMORY..=MAX_PLUGIN_MEMORY).contains(&bytes) {
        bail!(
            "`{key}` is {bytes} bytes; it must be at least {MIN_PLUGIN_MEMORY} (one wasm page) \
             and at most {MAX_PLUGIN_MEMORY} (4 GiB, all a wasm32 memory can address)"
        );
    }
    Ok(())
}

fn empty_table() -> toml::Table {
    toml::Table::new()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            heartbeat: Heartbeat::default(),
            auth: Auth::default(),
            session: Session::default(),
            shutdown: Shutdown::default(),
            plugin_limits: PluginLimits::default(),
            plugin_cache: PluginCache::default(),
            admin: Admin::default(),
            watch: Watch::default(),
            recordings: Recordings::default(),
            cluster: None,
            demo: false,
            plugins: ["auth-jwt", "rooms", "signaling"]
                .into_iter()
                .map(|name| PluginEntry {
                    name: name.into(),
                    path: None,
                    env: None,
                    config: empty_table(),
                    memory_bytes: None,
                    deadline_ms: None,
                })
                .collect(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 65536,
            rate_per_sec: 100.0,
            rate_burst: 200.0,
            max_connections: 50_000,
            max_rooms: 100_000,
            handshake_timeout_ms: 10_000,
            outbound_max_messages: 4096,
            outbound_max_bytes: 4 << 20,
            events: HashMap::new(),
        }
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval_ms: 30_000,
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            required: true,
            timeout_ms: 10_000,
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            drain_timeout_ms: 10_000,
        }
    }
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: 32 << 20,
            deadline_ms: 100,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            (
                "limits.max_message_bytes",
                self.limits.max_message_bytes as u64,
            ),
            ("limits.max_connections", self.limits.max_connections as u64),
            ("limits.max_rooms", self.limits.max_rooms as u64),
            (
                "limits.handshake_timeout_ms",
                self.limits.handshake_timeout_ms,
            ),
            ("heartbeat.interval_ms", self.heartbeat.interval_ms),
            ("auth.timeout_ms", self.auth.timeout_ms),
            ("plugin_limits.deadline_ms", self.plugin_limits.deadline_ms),
            ("plugin_cache.max_bytes", self.plugin_cache.max_bytes),
            ("watch.interval_ms", self.watch.interval_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                bail!("`{key}` must be greater than 0");
            }
        }
        for (key, value) in [
            ("limits.rate_per_sec", self.limits.rate_per_sec),
            ("limits.rate_burst", self.limits.rate_burst),
        ] {
            if !(value.is_finite() && value >= 1.0) {
                bail!("`{key}` must be a number of at least 1");
            }
        }
        for (event, rate) in &self.limits.events {
            if EventName::parse(event).is_none() {
                bail!("`limits.events`: `{event}` is not a valid event name");
            }
            if !(rate.rate_per_sec.is_finite() && rate.rate_per_sec > 0.0) {
                bail!("`limits.events.\"{event}\".rate_per_sec` must be a positive number");
            }
            if !(rate.rate_burst.is_finite() && rate.rate_burst >= 1.0) {
                bail!("`limits.events.\"{event}\".rate_burst` must be a number of at least 1");
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        if self.plugins.is_empty() {
            bail!("`plugins` must name at least one plugin");
        }
        check_plugin_memory(
            "plugin_limits.memory_bytes",
            self.plugin_limits.memory_bytes,
        )?;
        for (i, plugin) in self.plugins.iter().enumerate() {
            if self.plugins[..i].iter().any(|p| p.name == plugin.name) {
                bail!("`plugins`: `{}` is listed twice", plugin.name);
            }
            plugin
                .validate()
                .with_context(|| format!("`[[plugins]]` entry `{}`", plugin.name))?;
        }
        Ok(())
    }
}

impl Cluster {
    fn validate(&self) -> anyhow::Result<()> {
        if self.heartbeat_ms == 0 {
            bail!("`cluster.heartbeat_ms` must be greater than 0");
        }
        // A lease renewed less than twice per lifetime expires on one
        // late heartbeat.
        if self.lease_ms < 2 * self.heartbeat_ms {
            bail!("`cluster.lease_ms` must be at least twice `cluster.heartbeat_ms`");
        }
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !valid(&self.prefix) {
            bail!("`cluster.prefix` must be letters, digits, `-`, `_` or `.`");
        }
        if let Some(id) = &self.node_id
            && !valid(id)
        {
            bail!("`cluster.node_id` must be letters, digits, `-`, `_` or `.`");
        }
        Ok(())
    }
}

impl Heartbeat {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.limits.max_message_bytes, 65536);
        assert_eq!(config.plugins.len(), 3);
        assert!(config.auth.required);
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let err = format!(
            "{:#}",
            Config::parse("[limits]\nmax_mesage_bytes = 1").unwrap_err()
        );
        assert!(err.contains("max_mesage_bytes"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("[heartbeat]\ninterval_ms = 0").unwrap_err()
        );
        assert!(err.contains("heartbeat.interval_ms"), "{err}");
        let err = format!("{:#}", Config::parse("listen = \"nope\"").unwrap_err());
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn a_chain_entry_overrides_the_plugin_limits() {
        let text = "[plugin_limits]\ndeadline_ms = 50\n\n\
                    [[plugins]]\nname = \"js\"\nmemory_bytes = 134217728\n\n\
                    [[plugins]]\nname = \"rooms\"\ndeadline_ms = 500\n";
        let config = Config::parse(text).unwrap();
        let js = config.plugins[0].limits(&config.plugin_limits);
        assert_eq!((js.memory_bytes, js.deadline_ms), (128 << 20, 50));
        let rooms = config.plugins[1].limits(&config.plugin_limits);
        assert_eq!((rooms.memory_bytes, rooms.deadline_ms), (32 << 20, 500));
    }

    #[test]
    fn plugin_limits_out_of_range_are_named() {
        for (text, expected) in [
            (
                "[[plugins]]\nname = \"js\"\nmemory_bytes = 64\n",
                "`[[plugins]]` entry `js`: `memory_bytes` is 64 bytes",
            ),
            (
                "[[plugins]]\nname = \"js\"\nmemory_bytes = 8589934592\n",
                "at most 4294967296",
            ),
            (
                "[[plugins]]\nname = \"js\"\ndeadline_ms = 0\n",
                "`[[plugins]]` entry `js`: `deadline_ms` must be greater than 0",
            ),
            (
                "[plugin_limits]\nmemory_bytes = 1000\n",
                "`plugin_limits.memory_bytes` is 1000 bytes",
            ),
            ("[[plugins]]\nname = \"js\"\nmemory = 1\n", "memory"),
        ] {
            let err = format!("{:#}", Config::parse(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn a_chain_replaces_the_default_one() {
        let text = "[[plugins]]\nname = \"rooms\"\nconfig = { capacity = 2 }\n";
        let config = Config::parse(text).unwrap();
        assert_eq!(config.plugins.len(), 1);
        assert_eq!(config.plugins[0].config["capacity"].as_integer(), Some(2));
    }
}
