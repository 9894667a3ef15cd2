//! The chain entries of the config, resolved to components (an explicit
//! `path`, `<name>.wasm` in the plugins directory, or a built-in) and
//! loaded in order; and how each entry was started, so its next versions
//! start the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::builtin;
use super::chain::Chain;
use super::wasm::{Loader, PluginSource};
use crate::config::{PluginEntry, PluginLimits};

/// How a chain entry is started, kept to start its next versions the same
/// way.
pub(crate) struct Entry {
    pub(crate) config: String,
    pub(crate) env: Vec<(String, String)>,
    /// `[plugin_limits]` with the entry's own `memory_bytes` and
    /// `deadline_ms` in place.
    pub(crate) limits: PluginLimits,
    /// The plugins-directory file it was loaded from, watched for changes.
    pub(crate) watched: Option<PathBuf>,
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
pub(crate) fn load(
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
        let limits = entry.limits(loader.default_limits());
        let plugin = loader
            .load(
                &entry.name,
                &source,
                config.clone(),
                env.clone(),
                limits.clone(),
            )
            .with_context(|| format!("loading plugin `{}`", entry.name))?;
        tracing::info!(
            plugin = %entry.name,
            version = %plugin.descriptor.version,
            from = %source.origin,
            memory_bytes = limits.memory_bytes,
            deadline_ms = limits.deadline_ms,
            events = ?plugin.descriptor.events.iter().map(|e| &e.name).collect::<Vec<_>>(),
            "plugin loaded"
        );
        started.insert(
            entry.name.clone(),
            Entry {
                config,
                env,
                limits,
                watched,
            },
        );
        plugins.push(Arc::new(plugin));
    }
    Ok((Chain::new(plugins)?, started))
}
