//! `switchboard replay FILE --plugin NEW.wasm`: the recorded calls of one
//! chain entry asked again of another version, offline, each against a
//! scratch world built from the view recorded with it, and every decision
//! that differs printed. Each call gets the view the recorded version had,
//! so one decision that differs does not make every later one differ.
//!
//! Exit status, for CI: 0 when every decision matches, 1 when any
//! differs, 2 when the replay could not run (a file that is not a
//! recording, a component that does not load).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_recording::{Recording, Report, compare};

use crate::config::PluginLimits;
use crate::plugins::{CompileCache, Loader, Plugin, PluginSource, Scratch, default_cache_dir};
use crate::state::Hub;

/// What to replay against what.
pub(crate) struct Replay {
    pub(crate) file: PathBuf,
    pub(crate) plugin: PathBuf,
    /// The chain entry whose calls to replay; by default the one named as
    /// the component describes itself.
    pub(crate) entry: Option<String>,
    /// JSON for the version's `init`; by default the recorded entry's.
    pub(crate) config: Option<String>,
}

/// Replays, prints the differences and the summary, and says how it went.
pub(crate) fn replay(replay: &Replay) -> ExitCode {
    match run(replay) {
        Ok(report) => {
            println!("{report}");
            ExitCode::from(if report.is_clean() { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("switchboard replay: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(replay: &Replay) -> anyhow::Result<Report> {
    let recording = Recording::read(&replay.file)?;
    let bytes = std::fs::read(&replay.plugin)
        .with_context(|| format!("reading plugin {}", replay.plugin.display()))?;
    let source = PluginSource {
        origin: format!("`{}`", replay.plugin.display()),
        bytes,
    };
    // The scratch worlds are the only world its calls see; the loader's
    // hub serves nothing.
    let hub = Arc::new(Hub::new(0));
    let cache = CompileCache::new(default_cache_dir());
    let loader = Loader::new(hub, PluginLimits::default(), cache)?;
    let entry = match &replay.entry {
        Some(entry) => entry.clone(),
        None => loader.inspect(&source)?.described?.name,
    };
    if !recording.calls.iter().any(|call| call.entry == entry) {
        let mut recorded: Vec<&str> = recording.calls.iter().map(|c| c.entry.as_str()).collect();
        recorded.sort_unstable();
        recorded.dedup();
        bail!(
            "{} has no calls of `{entry}` (it has calls of: {}); name the entry with --entry",
            replay.file.display(),
            if recorded.is_empty() {
                "none".to_owned()
            } else {
                recorded.join(", ")
            }
        );
    }
    let plugin = load(
        &loader,
        &source,
        &recording,
        &entry,
        replay.config.as_deref(),
    )?;
    Ok(compare(&recording, &entry, |call| {
        let scratch = Scratch::from_view(&call.view);
        plugin
            .trace(&call.input, call.view.now, Some(scratch))
            .decision
    }))
}

/// Starts the version as the entry was started when it was recorded: its
/// config (unless `config` replaces it) and the variables it could read,
/// from this process's environment (their values are not recorded).
fn load(
    loader: &Loader,
    source: &PluginSource,
    recording: &Recording,
    entry: &str,
    config: Option<&str>,
) -> anyhow::Result<Plugin> {
    let recorded = recording.entry(entry);
    let config = match config {
        Some(config) => {
            let value: serde_json::Value =
                serde_json::from_str(config).context("--config is not JSON")?;
            if !value.is_object() {
                bail!("--config must be a JSON object, not {value}");
            }
            config.to_owned()
        }
        None => recorded.map_or_else(|| "{}".to_owned(), |e| e.config.clone()),
    };
    let names = recorded.map(|e| e.env.as_slice()).unwrap_or_default();
    let env = names
        .iter()
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    let limits = loader.default_limits().clone();
    loader.load(entry, source, config, env, limits)
}
