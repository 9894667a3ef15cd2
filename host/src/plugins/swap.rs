//! Hot swap: loading a new version of a chain plugin off the hot path and
//! making it live atomically (`PUT /admin/plugins/{name}`, a changed file
//! in the plugins directory), and rollback. Rollouts: uploading a version
//! without making it live, running it as a canary in some rooms,
//! promoting or aborting it, and rolling it back when it overdraws its
//! error budget.
//!
//! A version that fails to compile, link, describe itself or start leaves
//! the running one in place. Plugin state lives in the hub's room storage,
//! keyed by the chain name, so it carries over.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::entries::Entry;
use super::registry::{Policy, Registry, SwapError, Version};
use super::rollout::Canary;
use super::wasm::{Loader, Plugin, PluginSource, lower_priority, sha256_hex};
use crate::metrics::Metrics;

/// How often canaries' error budgets are read.
const BUDGET_CHECK: Duration = Duration::from_millis(100);

pub(crate) struct Swapper {
    loader: Loader,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    entries: HashMap<String, Entry>,
    /// The plugins directory, where `<entry>@<label>.wasm` files are
    /// versions to upload.
    versions_dir: Option<PathBuf>,
    /// Held while a version loads.
    loading: Mutex<()>,
    /// Cluster mode: told of every swap and rollback made here, so every
    /// node makes it too.
    announce: OnceLock<Arc<dyn Announce>>,
}

/// Where a node's own swaps, rollbacks and rollout changes go to reach
/// the others.
pub(crate) trait Announce: Send + Sync {
    /// `name` now runs the version `hash`; `bytes` is its component when
    /// it is new (a rollback's version the other nodes have already).
    fn swapped(&self, name: &str, hash: &str, bytes: Option<&[u8]>);

    /// `name`'s canary is now `canary` (its policy and component), or it
    /// has none.
    fn rollout(&self, name: &str, canary: Option<(&Policy, &[u8])>);
}

impl Swapper {
    pub(crate) fn new(
        loader: Loader,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        entries: HashMap<String, Entry>,
        versions_dir: Option<PathBuf>,
    ) -> Swapper {
        Swapper {
            loader,
            registry,
            metrics,
            entries,
            versions_dir,
            loading: Mutex::new(()),
            announce: OnceLock::new(),
        }
    }

    pub(crate) fn announce_to(&self, announce: Arc<dyn Announce>) {
        let _ = self.announce.set(announce);
    }

    /// Loads `bytes` as the next version of chain entry `name` and makes it
    /// live, here and (in a cluster) on every node. Blocking (it may
    /// compile): call it off the async workers.
    pub(crate) fn swap(&self, name: &str, source: PluginSource) -> Result<Arc<Plugin>, SwapError> {
        let result = self.swap_here(name, &source);
        if let (Ok(plugin), Some(announce)) = (&result, self.announce.get()) {
            announce.swapped(name, &plugin.hash, Some(&source.bytes));
        }
        result
    }

    /// Makes the version `name` replaced last live again, here and on
    /// every node.
    pub(crate) fn rollback(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let result = self.rollback_here(name);
        if let (Ok(plugin), Some(announce)) = (&result, self.announce.get()) {
            announce.swapped(name, &plugin.hash, None);
        }
        result
    }

    /// Loads `source` as a version of chain entry `name` without making it
    /// live; a version loaded already is not loaded again. Returns it, and
    /// whether it is new to the entry's uploaded versions. Blocking.
    pub(crate) fn upload(
        &self,
        name: &str,
        source: PluginSource,
    ) -> Result<(Arc<Plugin>, bool), SwapError> {
        let hash = sha256_hex(&source.bytes);
        let plugin = match self.registry.loaded(name, &hash) {
            Some(plugin) => plugin,
            None => Arc::new(self.load(name, &source)?),
        };
        let version = Version {
            plugin: Arc::clone(&plugin),
            bytes: source.bytes.into(),
        };
        let added = self.registry.upload(name, version)?;
        if added {
            tracing::info!(plugin = name, version = %plugin.descriptor.version, hash = %plugin.hash, from = %source.origin, "plugin version uploaded");
        }
        Ok((plugin, added))
    }

    /// Starts or changes the canary of `name` on this node. Building the
    /// chains compiles schemas: call it off the async workers.
    pub(crate) fn set_rollout(&self, name: &str, policy: Policy) -> Result<Arc<Canary>, SwapError> {
        let canary = self.set_rollout_here(name, policy.clone())?;
        if let Some(announce) = self.announce.get() {
            announce.rollout(name, Some((&policy, &canary.bytes)));
        }
        Ok(canary)
    }

    /// [`Swapper::set_rollout`] on this node only.
    pub(crate) fn set_rollout_here(
        &self,
        name: &str,
        policy: Policy,
    ) -> Result<Arc<Canary>, SwapError> {
        let canary = self.registry.set_rollout(name, policy)?;
        tracing::info!(
            plugin = name,
            canary = %canary.plugin.hash,
            version = %canary.plugin.descriptor.version,
            percent = canary.percent,
            rooms = canary.rooms.len(),
            "canary set: rooms opening from now on follow it"
        );
        Ok(canary)
    }

    /// Makes the canary of `name` its stable version in every room, here
    /// and (announced as a swap) on every node.
    pub(crate) fn promote(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let canary = self.registry.promote(name)?;
        let plugin = &canary.plugin;
        tracing::info!(plugin = name, version = %plugin.descriptor.version, hash = %plugin.hash, "canary promoted: every room runs it");
        if let Some(announce) = self.announce.get() {
            announce.swapped(name, &plugin.hash, Some(&canary.bytes));
        }
        Ok(Arc::clone(plugin))
    }

    /// Ends the canary of `name`: its rooms run the stable version from
    /// their next event. Returns the stable version.
    pub(crate) fn abort(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let stable = self.abort_here(name)?;
        if let Some(announce) = self.announce.get() {
            announce.rollout(name, None);
        }
        Ok(stable)
    }

    /// [`Swapper::abort`] on this node only.
    pub(crate) fn abort_here(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let stable = self.registry.abort(name)?;
        tracing::info!(plugin = name, stable = %stable.hash, "canary aborted: its rooms run the stable version");
        Ok(stable)
    }

    /// Makes `name`'s canary the one another node set (`None`: no canary),
    /// replacing a different one. Blocking.
    pub(crate) fn follow_rollout(&self, name: &str, policy: Option<Policy>) {
        let running = match self.registry.rollout(name) {
            Ok(rollout) => rollout.canary,
            Err(e) => return tracing::warn!(plugin = name, "cluster: following a rollout: {e}"),
        };
        let replaced = match (&running, &policy) {
            (Some(running), Some(policy)) => running.plugin.hash != policy.canary,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if replaced {
            let _ = self.abort_here(name);
        }
        if let Some(policy) = policy
            && let Err(e) = self.set_rollout_here(name, policy)
        {
            tracing::warn!(plugin = name, "cluster: following a rollout: {e}");
        }
    }

    /// Rolls back every canary that overdraws its error budget, until
    /// shutdown. The budgets are read every [`BUDGET_CHECK`]: a canary
    /// failing on every call makes at most that much more of them.
    pub(crate) async fn guard_budgets(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(BUDGET_CHECK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.registry.overdrawn() {
                let swapper = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || swapper.roll_back_overdrawn()).await;
            }
        }
    }

    /// Ends the canaries over budget: said in the log and counted.
    /// Blocking: it builds the next chains.
    fn roll_back_overdrawn(&self) {
        let rolled_back = match self.registry.roll_back_overdrawn() {
            Ok(rolled_back) => rolled_back,
            Err(e) => return tracing::error!("rolling back a canary over its budget: {e}"),
        };
        for rolled in rolled_back {
            let canary = &rolled.canary;
            if let Some(announce) = self.announce.get() {
                announce.rollout(&canary.name, None);
            }
            self.metrics.canary_rollbacks.inc(&canary.name);
            tracing::warn!(
                plugin = %canary.name,
                canary = %canary.hash,
                version = %canary.descriptor.version,
                "canary rolled back: {rolled}; its rooms run the stable version"
            );
        }
    }

    /// [`Swapper::swap`] on this node only: another node announced it.
    pub(crate) fn swap_here(
        &self,
        name: &str,
        source: &PluginSource,
    ) -> Result<Arc<Plugin>, SwapError> {
        let result = self
            .load(name, source)
            .and_then(|plugin| self.registry.replace(plugin));
        self.record(name, &source.origin, &result);
        result
    }

    /// [`Swapper::rollback`] on this node only.
    pub(crate) fn rollback_here(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let result = self.registry.rollback(name);
        self.record(name, "rollback", &result);
        result
    }

    /// The hash of the live version of `name`, and of the one a rollback
    /// would bring back.
    pub(crate) fn hashes(&self, name: &str) -> (Option<String>, Option<String>) {
        let live = self.registry.chain().find(name).map(|p| p.hash.clone());
        (live, self.registry.previous_hash(name))
    }

    /// Whether the version `hash` of `name` is loaded here.
    pub(crate) fn has_version(&self, name: &str, hash: &str) -> bool {
        self.registry.loaded(name, hash).is_some()
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The chain entries' names.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Loads a version on a live server: one load at a time, on a thread
    /// of its own at low priority (`engine::lower_priority`), so that a
    /// compile takes the cores only when clients leave them idle; then the
    /// heap the compile used goes back to the system.
    fn load(&self, name: &str, source: &PluginSource) -> Result<Plugin, SwapError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| SwapError::UnknownPlugin(name.to_owned()))?;
        let _one_at_a_time = self.loading.lock();
        let load = || {
            lower_priority();
            let limits = entry.limits.clone();
            (self.loader).load(
                name,
                source,
                entry.config.clone(),
                entry.env.clone(),
                limits,
            )
        };
        let loaded = std::thread::scope(|scope| {
            let thread = std::thread::Builder::new().name(format!("load-{name}"));
            match thread.spawn_scoped(scope, load) {
                Ok(loading) => loading
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the load panicked"))),
                Err(e) => Err(anyhow::anyhow!("starting a thread to load on: {e}")),
            }
        });
        crate::memory::trim();
        loaded.map_err(SwapError::Invalid)
    }

    fn record(&self, name: &str, origin: &str, result: &Result<Arc<Plugin>, SwapError>) {
        match result {
            Ok(plugin) => {
                self.metrics.swaps.inc("ok");
                tracing::info!(plugin = name, version = %plugin.descriptor.version, hash = %plugin.hash, from = origin, "plugin swapped");
            }
            Err(e) => {
                self.metrics.swaps.inc("failed");
                tracing::warn!(plugin = name, from = origin, "plugin swap refused: {e}");
            }
        }
    }

    /// Polls the watched plugin files and swaps in any that changed, and
    /// uploads the versions in the plugins directory that are new or
    /// changed, until shutdown.
    pub(crate) async fn watch(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut seen: HashMap<String, Option<Stamp>> = self
            .entries
            .iter()
            .filter_map(|(name, entry)| {
                entry
                    .watched
                    .as_ref()
                    .map(|path| (name.clone(), stamp(path)))
            })
            .collect();
        if seen.is_empty() && self.versions_dir.is_none() {
            return;
        }
        let mut versions: HashMap<PathBuf, Stamp> = HashMap::new();
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Some(dir) = &self.versions_dir {
                self.upload_versions(dir, &mut versions).await;
            }
            for (name, last) in &mut seen {
                let Some(path) = self.entries[name].watched.clone() else {
                    continue;
                };
                let now = stamp(&path);
                if now.is_none() || now == *last {
                    continue;
                }
                *last = now;
                let swapper = Arc::clone(&self);
                let name = name.clone();
                let _ = tokio::task::spawn_blocking(move || swapper.swap_file(&name, path)).await;
            }
        }
    }

    /// Uploads every `<entry>@<label>.wasm` in `dir` that is new or
    /// changed since `seen` (by modification time and length).
    async fn upload_versions(self: &Arc<Self>, dir: &Path, seen: &mut HashMap<PathBuf, Stamp>) {
        let files = match std::fs::read_dir(dir) {
            Ok(files) => files,
            Err(e) => {
                return tracing::warn!(dir = %dir.display(), "reading the plugins directory: {e}");
            }
        };
        for file in files.flatten() {
            let path = file.path();
            let Some(name) = self.version_of(&path) else {
                continue;
            };
            let Some(now) = stamp(&path) else {
                continue;
            };
            if seen.insert(path.clone(), now) == Some(now) {
                continue;
            }
            let swapper = Arc::clone(self);
            let upload = move || match std::fs::read(&path) {
                Ok(bytes) => {
                    let origin = path.display().to_string();
                    if let Err(e) = swapper.upload(&name, PluginSource { origin, bytes }) {
                        tracing::warn!(plugin = name, path = %path.display(), "plugin version refused: {e}");
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = name, path = %path.display(), "reading a plugin version: {e}")
                }
            };
            let _ = tokio::task::spawn_blocking(upload).await;
        }
    }

    /// The chain entry `path` is a version of, if it is named
    /// `<entry>@<label>.wasm`.
    fn version_of(&self, path: &Path) -> Option<String> {
        let file = path.file_name()?.to_str()?.strip_suffix(".wasm")?;
        let (name, label) = file.split_once('@')?;
        (!label.is_empty() && self.entries.contains_key(name)).then(|| name.to_owned())
    }

    fn swap_file(&self, name: &str, path: PathBuf) {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                return tracing::warn!(plugin = name, path = %path.display(), "reading changed plugin: {e}");
            }
        };
        let live = self.registry.chain().find(name).map(|p| p.hash.clone());
        let source = PluginSource {
            origin: path.display().to_string(),
            bytes,
        };
        if live.is_some_and(|hash| hash == sha256_hex(&source.bytes)) {
            return;
        }
        let _ = self.swap(name, source);
    }
}

/// What tells a changed file apart: modification time and length.
type Stamp = (SystemTime, u64);

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
