//! The plugin chain: which plugins run, in which order, for which events.
//!
//! A [`Chain`] is immutable; the [`Registry`] holds the current one behind
//! one pointer so a later chain can replace it atomically while calls in
//! flight finish on the one they started with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use parking_lot::RwLock;

use crate::builtin;
use crate::config::PluginEntry;
use crate::ids::EventName;
use crate::plugin::{Loader, Plugin, PluginSource};

pub struct Chain {
    pub plugins: Vec<Arc<Plugin>>,
    /// For each declared event, the plugins that declared it, in chain order.
    routes: HashMap<String, Vec<Arc<Plugin>>>,
}

impl Chain {
    pub fn new(plugins: Vec<Plugin>) -> anyhow::Result<Chain> {
        let plugins: Vec<Arc<Plugin>> = plugins.into_iter().map(Arc::new).collect();
        let mut routes: HashMap<String, Vec<Arc<Plugin>>> = HashMap::new();
        for plugin in &plugins {
            for event in &plugin.descriptor.events {
                if EventName::parse(&event.name).is_none() {
                    bail!(
                        "plugin `{}` declares an invalid event name {:?}",
                        plugin.name,
                        event.name
                    );
                }
                routes
                    .entry(event.name.clone())
                    .or_default()
                    .push(Arc::clone(plugin));
            }
        }
        Ok(Chain { plugins, routes })
    }

    /// The plugins that handle `event`, in order; empty if none declares it.
    pub fn route(&self, event: &str) -> &[Arc<Plugin>] {
        self.routes
            .get(event)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn with_hook(&self, hook: impl Fn(&Plugin) -> bool) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.iter().filter(move |p| hook(p))
    }
}

pub struct Registry {
    current: RwLock<Arc<Chain>>,
}

impl Registry {
    pub fn new(chain: Chain) -> Registry {
        Registry {
            current: RwLock::new(Arc::new(chain)),
        }
    }

    pub fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.current.read())
    }
}

/// Where a chain entry's component comes from: its `path`, else
/// `DIR/<name>.wasm` in the plugins directory, else the built-in plugin of
/// that name.
pub fn source(entry: &PluginEntry, plugins_dir: Option<&Path>) -> anyhow::Result<PluginSource> {
    let in_dir = plugins_dir.map(|dir| dir.join(format!("{}.wasm", entry.name)));
    let file: Option<PathBuf> = entry.path.clone().or(in_dir.filter(|p| p.is_file()));
    if let Some(file) = file {
        let bytes = std::fs::read(&file)
            .with_context(|| format!("reading plugin `{}` from {}", entry.name, file.display()))?;
        return Ok(PluginSource {
            origin: file.display().to_string(),
            bytes,
        });
    }
    match builtin::find(&entry.name) {
        Some(b) => Ok(PluginSource {
            origin: format!("built-in `{}`", b.name),
            bytes: b.wasm.to_vec(),
        }),
        None => bail!(
            "unknown plugin `{}`: it is not built in ({}), has no `path`, and is not in the plugins directory",
            entry.name,
            builtin::names()
        ),
    }
}

/// Loads every plugin of the chain, in order. `lookup_env` resolves the
/// environment variables a plugin is granted.
pub fn load(
    loader: &Loader,
    entries: &[PluginEntry],
    plugins_dir: Option<&Path>,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Chain> {
    let mut plugins = Vec::with_capacity(entries.len());
    for entry in entries {
        let source = source(entry, plugins_dir)?;
        let config = serde_json::to_string(&entry.config).expect("TOML tables are valid JSON");
        let granted: Vec<String> = match &entry.env {
            Some(names) => names.clone(),
            None => builtin::find(&entry.name)
                .map(|b| b.env.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default(),
        };
        let env = granted
            .into_iter()
            .filter_map(|k| lookup_env(&k).map(|v| (k, v)))
            .collect();
        let plugin = loader
            .load(&entry.name, &source, config, env)
            .with_context(|| format!("loading plugin `{}`", entry.name))?;
        tracing::info!(
            plugin = %entry.name,
            version = %plugin.descriptor.version,
            from = %source.origin,
            events = ?plugin.descriptor.events.iter().map(|e| &e.name).collect::<Vec<_>>(),
            "plugin loaded"
        );
        plugins.push(plugin);
    }
    Chain::new(plugins)
}
