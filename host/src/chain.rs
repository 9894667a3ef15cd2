//! The plugin chain: which plugins run, in which order, for which events.
//!
//! A [`Chain`] is immutable; the [`Registry`] holds the current one behind
//! one pointer so a new chain (one plugin swapped) replaces it atomically
//! while calls in flight finish on the one they started with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use jsonschema::Validator;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use crate::builtin;
use crate::config::PluginEntry;
use crate::ids::EventName;
use crate::plugin::{Loader, Plugin, PluginSource};
use crate::schema;
use crate::swap::Entry;

pub struct Chain {
    pub plugins: Vec<Arc<Plugin>>,
    /// For each declared event, the plugins that declared it, in chain order.
    routes: HashMap<String, Vec<Arc<Plugin>>>,
    /// The `data` schemas of custom events, from the first plugin in the
    /// chain that gave one.
    schemas: HashMap<String, Validator>,
}

impl Chain {
    pub fn new(plugins: Vec<Arc<Plugin>>) -> anyhow::Result<Chain> {
        let mut routes: HashMap<String, Vec<Arc<Plugin>>> = HashMap::new();
        let mut schemas = HashMap::new();
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
                if let Some(schema) = &event.schema
                    && !schema::is_protocol_event(&event.name)
                    && !schemas.contains_key(&event.name)
                {
                    let validator = compile_schema(schema).with_context(|| {
                        format!("plugin `{}`, schema of `{}`", plugin.name, event.name)
                    })?;
                    schemas.insert(event.name.clone(), validator);
                }
            }
        }
        Ok(Chain {
            plugins,
            routes,
            schemas,
        })
    }

    /// The plugins that handle `event`, in order; empty if none declares it.
    pub fn route(&self, event: &str) -> &[Arc<Plugin>] {
        self.routes
            .get(event)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Checks a custom event's data against its declared schema; the error
    /// names the failing path.
    pub fn validate(&self, event: &str, data: &Value) -> Result<(), String> {
        let Some(validator) = self.schemas.get(event) else {
            return Ok(());
        };
        validator.validate(data).map_err(|e| {
            let path = e.instance_path().to_string();
            format!("`data{path}`: {e}")
        })
    }

    pub fn find(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| &*p.name == name)
    }

    pub fn with_hook(&self, hook: impl Fn(&Plugin) -> bool) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.iter().filter(move |p| hook(p))
    }

    pub fn check_auth(&self, required: bool) -> anyhow::Result<()> {
        if required && self.with_hook(|p| p.descriptor.hooks.auth).next().is_none() {
            bail!(
                "`auth.required` is true but no plugin in the chain handles auth (add `auth-jwt`)"
            );
        }
        Ok(())
    }
}

fn compile_schema(text: &str) -> anyhow::Result<Validator> {
    let schema: Value = serde_json::from_str(text).context("the schema is not JSON")?;
    jsonschema::validator_for(&schema).map_err(|e| anyhow::anyhow!("invalid JSON Schema: {e}"))
}

/// The current chain, and the versions each plugin replaced.
pub struct Registry {
    current: RwLock<Arc<Chain>>,
    /// Held while a swap builds the next chain, so swaps never interleave.
    /// Maps a plugin name to the versions it replaced, oldest first.
    history: Mutex<HashMap<Arc<str>, Vec<Arc<Plugin>>>>,
}

/// Versions kept per plugin for rollback.
const MAX_HISTORY: usize = 8;

/// Why a swap or rollback did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("no plugin named `{0}` in the chain")]
    UnknownPlugin(String),
    #[error("plugin `{0}` has no previous version")]
    NoPrevious(String),
    #[error("{0:#}")]
    Invalid(anyhow::Error),
}

impl Registry {
    pub fn new(chain: Chain) -> Registry {
        Registry {
            current: RwLock::new(Arc::new(chain)),
            history: Mutex::default(),
        }
    }

    pub fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.current.read())
    }

    /// Makes `plugin` the live version of the chain entry of its name. Calls
    /// in flight finish on the chain they started with; the next event
    /// sees the new one.
    pub fn replace(&self, plugin: Plugin) -> Result<Arc<Plugin>, SwapError> {
        let mut history = self.history.lock();
        let plugin = Arc::new(plugin);
        let old = self.install(Arc::clone(&plugin))?;
        let versions = history.entry(Arc::clone(&plugin.name)).or_default();
        versions.push(old);
        if versions.len() > MAX_HISTORY {
            versions.remove(0);
        }
        Ok(plugin)
    }

    /// Makes the version `name` replaced last live again.
    pub fn rollback(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let mut history = self.history.lock();
        if self.chain().find(name).is_none() {
            return Err(SwapError::UnknownPlugin(name.to_owned()));
        }
        let previous = history
            .get_mut(name)
            .and_then(Vec::pop)
            .ok_or_else(|| SwapError::NoPrevious(name.to_owned()))?;
        self.install(Arc::clone(&previous))?;
        Ok(previous)
    }

    /// Swaps `plugin` in for the entry of its name; returns the old one.
    fn install(&self, plugin: Arc<Plugin>) -> Result<Arc<Plugin>, SwapError> {
        let chain = self.chain();
        let index = chain
            .plugins
            .iter()
            .position(|p| p.name == plugin.name)
            .ok_or_else(|| SwapError::UnknownPlugin(plugin.name.to_string()))?;
        let mut plugins = chain.plugins.clone();
        let old = std::mem::replace(&mut plugins[index], plugin);
        let next = Chain::new(plugins).map_err(SwapError::Invalid)?;
        next.plugins[index].revive();
        *self.current.write() = Arc::new(next);
        old.retire();
        Ok(old)
    }
}

/// Where a chain entry's component comes from: its `path`, else
/// `DIR/<name>.wasm` in the plugins directory (returned too, to be
/// watched), else the built-in plugin of that name.
fn source(
    entry: &PluginEntry,
    plugins_dir: Option<&Path>,
) -> anyhow::Result<(PluginSource, Option<PathBuf>)> {
    let in_dir = plugins_dir
        .map(|dir| dir.join(format!("{}.wasm", entry.name)))
        .filter(|p| p.is_file());
    if let Some(file) = entry.path.as_ref().or(in_dir.as_ref()) {
        let bytes = std::fs::read(file)
            .with_context(|| format!("reading plugin `{}` from {}", entry.name, file.display()))?;
        let source = PluginSource {
            origin: file.display().to_string(),
            bytes,
        };
        let watched = if entry.path.is_none() {
            in_dir.clone()
        } else {
            None
        };
        return Ok((source, watched));
    }
    match builtin::find(&entry.name) {
        Some(b) => {
            let origin = format!("built-in `{}`", b.name);
            Ok((
                PluginSource {
                    origin,
                    bytes: b.wasm.to_vec(),
                },
                None,
            ))
        }
        None => bail!(
            "unknown plugin `{}`: it is not built in ({}), has no `path`, and is not in the plugins directory",
            entry.name,
            builtin::names()
        ),
    }
}

/// Loads every plugin of the chain, in order, and says how each was
/// started. `lookup_env` resolves the environment variables a plugin is
/// granted.
pub fn load(
    loader: &Loader,
    entries: &[PluginEntry],
    plugins_dir: Option<&Path>,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(Chain, HashMap<String, Entry>)> {
    let mut plugins = Vec::with_capacity(entries.len());
    let mut started = HashMap::new();
    for entry in entries {
        let (source, watched) = source(entry, plugins_dir)?;
        let config = serde_json::to_string(&entry.config).expect("TOML tables are valid JSON");
        let granted: Vec<String> = match &entry.env {
            Some(names) => names.clone(),
            None => builtin::find(&entry.name)
                .map(|b| b.env.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default(),
        };
        let env: Vec<(String, String)> = granted
            .into_iter()
            .filter_map(|k| lookup_env(&k).map(|v| (k, v)))
            .collect();
        let plugin = loader
            .load(&entry.name, &source, config.clone(), env.clone())
            .with_context(|| format!("loading plugin `{}`", entry.name))?;
        tracing::info!(
            plugin = %entry.name,
            version = %plugin.descriptor.version,
            from = %source.origin,
            events = ?plugin.descriptor.events.iter().map(|e| &e.name).collect::<Vec<_>>(),
            "plugin loaded"
        );
        started.insert(
            entry.name.clone(),
            Entry {
                config,
                env,
                watched,
            },
        );
        plugins.push(Arc::new(plugin));
    }
    Ok((Chain::new(plugins)?, started))
}
