//! The live chains and every version the registry knows of each entry:
//! hot swap, rollback, uploaded versions, and canary rollouts (set,
//! promote, abort). Every change builds the next chains and swaps one
//! pointer, so calls in flight finish on the chains they started with.

use std::cell::{Ref, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use thread_local::ThreadLocal;

use super::budget::{Budget, RolledBack, Tally};
use super::chain::Chain;
use super::rollout::{Canary, Chains, MAX_CANARIES, MAX_POSITION, Rollout};
use super::wasm::{Plugin, unix_millis};
use crate::ids::RoomId;
use crate::state::Pin;

/// The live chains, and the versions of each entry that are not live.
pub struct Registry {
    live: RwLock<Live>,
    /// Counts the changes made live, so a thread can tell whether its copy
    /// in `local` is still the current one.
    installs: AtomicU64,
    /// Each thread's copy of the live chains, with the count of installs
    /// it was taken at. Taking the shared one for every message put its
    /// lock and its reference count, written by every worker, on cache
    /// lines the workers passed back and forth.
    local: ThreadLocal<RefCell<(u64, Live)>>,
    /// Held while a change builds the next chains, so changes never
    /// interleave.
    book: Mutex<Book>,
}

/// What events run on: the stable chain, and the rollout while a canary is
/// active.
#[derive(Clone)]
pub(crate) struct Live {
    stable: Arc<Chain>,
    rollout: Option<Arc<Rollout>>,
}

impl Live {
    pub(crate) fn chains(&self) -> Chains<'_> {
        Chains {
            stable: &self.stable,
            rollout: self.rollout.as_deref(),
        }
    }
}

/// The versions that are not (or not only) in the live chains.
#[derive(Default)]
struct Book {
    /// The versions each entry replaced, oldest first.
    history: HashMap<Arc<str>, Vec<Arc<Plugin>>>,
    /// The versions uploaded for each entry, oldest first.
    uploaded: HashMap<Arc<str>, Vec<Version>>,
    /// Each entry's canary, by its position in the chain.
    canaries: BTreeMap<usize, Arc<Canary>>,
    /// Canaries started so far.
    started: u64,
    /// The last canary of each entry its error budget ended.
    rolled_back: HashMap<Arc<str>, RolledBack>,
}

impl Book {
    /// Keeps a replaced stable version for rollback.
    fn remember(&mut self, old: Arc<Plugin>) {
        let versions = self.history.entry(Arc::clone(&old.name)).or_default();
        versions.push(old);
        if versions.len() > MAX_HISTORY {
            versions.remove(0);
        }
    }
}

/// An uploaded version: its component is kept to announce it to the other
/// nodes of a cluster once it is promoted.
#[derive(Clone)]
pub(crate) struct Version {
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) bytes: Arc<[u8]>,
}

/// What a version is to its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    Stable,
    Canary,
    /// Loaded, and running in no room.
    Idle,
}

/// A canary as asked for: the hash of an uploaded version, and the new
/// rooms that get it.
#[derive(Clone)]
pub(crate) struct Policy {
    pub(crate) canary: String,
    /// 0 to 100.
    pub(crate) percent: u8,
    pub(crate) rooms: HashSet<RoomId>,
    pub(crate) budget: Option<Budget>,
}

/// An entry's rollout as the admin API shows it.
pub(crate) struct EntryRollout {
    pub(crate) stable: Arc<Plugin>,
    pub(crate) canary: Option<Arc<Canary>>,
    pub(crate) rolled_back: Option<RolledBack>,
}

/// Versions kept per plugin for rollback.
const MAX_HISTORY: usize = 8;
/// Uploaded versions kept per plugin, beside the live ones (a canary keeps
/// its own component); the oldest goes first.
const MAX_UPLOADED: usize = 8;

/// Why a swap, an upload or a rollout change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("no plugin named `{0}` in the chain")]
    UnknownPlugin(String),
    #[error("plugin `{0}` has no previous version")]
    NoPrevious(String),
    #[error("{0:#}")]
    Invalid(anyhow::Error),
    #[error(
        "plugin `{name}` has no uploaded version {hash} (upload it with POST /admin/plugins/{name}/versions)"
    )]
    UnknownVersion { name: String, hash: String },
    #[error("plugin `{0}` has no canary")]
    NoCanary(String),
    /// The change contradicts the rollout under way.
    #[error("{0}")]
    Conflict(String),
}

impl Registry {
    pub(crate) fn new(chain: Chain) -> Registry {
        Registry {
            live: RwLock::new(Live {
                stable: Arc::new(chain),
                rollout: None,
            }),
            installs: AtomicU64::new(0),
            local: ThreadLocal::new(),
            book: Mutex::default(),
        }
    }

    /// The stable chain.
    pub fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.live.read().stable)
    }

    /// The live chains, shared: for the paths that are not per message.
    pub(crate) fn live(&self) -> Live {
        self.live.read().clone()
    }

    /// The live chains, from this thread's copy: for the hot path, which
    /// takes them once per message. A copy is kept per thread until the
    /// next change, which the next call on that thread notices.
    pub(crate) fn current(&self) -> Current<'_> {
        let installs = self.installs.load(Ordering::Acquire);
        let local = self.local.get_or(|| RefCell::new((installs, self.live())));
        if local.borrow().0 != installs {
            match local.try_borrow_mut() {
                Ok(mut stale) => *stale = (installs, self.live()),
                // A caller further up this thread's stack still holds the
                // old copy (a message handled inside another).
                Err(_) => return Current::Shared(self.live()),
            }
        }
        Current::Local(Ref::map(local.borrow(), |(_, live)| live))
    }

    /// Makes `plugin` the live version of the chain entry of its name, in
    /// every room: a canary of the entry ends. Calls in flight finish on
    /// the chain they started with; the next event sees the new one.
    pub fn replace(&self, plugin: Plugin) -> Result<Arc<Plugin>, SwapError> {
        let mut book = self.book.lock();
        let plugin = Arc::new(plugin);
        let old = self.make_stable(&mut book, Arc::clone(&plugin))?;
        book.remember(old);
        Ok(plugin)
    }

    /// Makes the version `name` replaced last live again, in every room.
    pub(crate) fn rollback(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let mut book = self.book.lock();
        self.position(name)?;
        let previous = book
            .history
            .get(name)
            .and_then(|versions| versions.last())
            .cloned()
            .ok_or_else(|| SwapError::NoPrevious(name.to_owned()))?;
        self.make_stable(&mut book, Arc::clone(&previous))?;
        if let Some(versions) = book.history.get_mut(name) {
            versions.pop();
        }
        Ok(previous)
    }

    /// The hash of the version a rollback of `name` would make live.
    pub(crate) fn previous_hash(&self, name: &str) -> Option<String> {
        let book = self.book.lock();
        Some(book.history.get(name)?.last()?.hash.clone())
    }

    /// The version `hash` of `name` if it is loaded: uploaded, stable or
    /// canary.
    pub(crate) fn loaded(&self, name: &str, hash: &str) -> Option<Arc<Plugin>> {
        let book = self.book.lock();
        self.versions_of(&book, name)
            .ok()?
            .into_iter()
            .map(|(plugin, _)| plugin)
            .find(|plugin| plugin.hash == hash)
    }

    /// The component of `name`'s uploaded version or canary `hash`, for
    /// the other nodes of a cluster.
    pub(crate) fn component(&self, name: &str, hash: &str) -> Option<Arc<[u8]>> {
        let book = self.book.lock();
        let mut uploaded = book.uploaded.get(name).into_iter().flatten();
        if let Some(version) = uploaded.find(|v| v.plugin.hash == hash) {
            return Some(Arc::clone(&version.bytes));
        }
        let canary = book
            .canaries
            .values()
            .find(|c| *c.plugin.name == *name && c.plugin.hash == hash);
        canary.map(|canary| Arc::clone(&canary.bytes))
    }

    /// Keeps `version` among `name`'s uploaded versions; false if it is
    /// there already.
    pub(crate) fn upload(&self, name: &str, version: Version) -> Result<bool, SwapError> {
        let mut book = self.book.lock();
        let position = self.position(name)?;
        let key: Arc<str> = Arc::clone(&self.chain().plugins[position].name);
        let idle = !self.is_live(&book, position, &version.plugin);
        let uploaded = book.uploaded.entry(key).or_default();
        if uploaded
            .iter()
            .any(|v| v.plugin.hash == version.plugin.hash)
        {
            return Ok(false);
        }
        if uploaded.len() == MAX_UPLOADED {
            uploaded.remove(0);
        }
        if idle {
            // Loading started an instance; a version no room runs keeps
            // none.
            version.plugin.retire();
        }
        uploaded.push(version);
        Ok(true)
    }

    /// Every loaded version of `name`: stable, canary, then the uploaded
    /// ones oldest first.
    pub(crate) fn versions(&self, name: &str) -> Result<Vec<(Arc<Plugin>, Role)>, SwapError> {
        let book = self.book.lock();
        self.versions_of(&book, name)
    }

    /// `name`'s stable version, its canary if it has one, and the last
    /// canary its budget ended.
    pub(crate) fn rollout(&self, name: &str) -> Result<EntryRollout, SwapError> {
        let book = self.book.lock();
        let position = self.position(name)?;
        Ok(EntryRollout {
            stable: Arc::clone(&self.chain().plugins[position]),
            canary: book.canaries.get(&position).cloned(),
            rolled_back: book.rolled_back.get(name).cloned(),
        })
    }

    /// Every active canary, in chain order.
    pub(crate) fn canaries(&self) -> Vec<Arc<Canary>> {
        self.book.lock().canaries.values().cloned().collect()
    }

    /// Starts a canary of `name`, or changes which new rooms its canary
    /// gets (the rooms already open keep their version).
    pub(crate) fn set_rollout(&self, name: &str, policy: Policy) -> Result<Arc<Canary>, SwapError> {
        let mut book = self.book.lock();
        let position = self.position(name)?;
        let stable = self.chain();
        if stable.plugins[position].hash == policy.canary {
            return Err(SwapError::Conflict(format!(
                "version {} is `{name}`'s stable version already",
                policy.canary
            )));
        }
        let running = book.canaries.get(&position).cloned();
        let (version, started, tally_at_start) = match &running {
            Some(canary) if canary.plugin.hash == policy.canary => (
                Version {
                    plugin: Arc::clone(&canary.plugin),
                    bytes: Arc::clone(&canary.bytes),
                },
                canary.started,
                canary.tally_at_start,
            ),
            Some(canary) => {
                return Err(SwapError::Conflict(format!(
                    "plugin `{name}` has the canary {} already: promote or abort it first",
                    canary.plugin.hash
                )));
            }
            None => {
                if book.canaries.len() == MAX_CANARIES {
                    return Err(SwapError::Conflict(format!(
                        "{MAX_CANARIES} plugins have a canary already: promote or abort one first"
                    )));
                }
                if position >= MAX_POSITION {
                    return Err(SwapError::Conflict(format!(
                        "only the first {MAX_POSITION} plugins of the chain can have a canary"
                    )));
                }
                let version = book
                    .uploaded
                    .get(name)
                    .and_then(|versions| versions.iter().find(|v| v.plugin.hash == policy.canary))
                    .cloned()
                    .ok_or_else(|| SwapError::UnknownVersion {
                        name: name.to_owned(),
                        hash: policy.canary.clone(),
                    })?;
                let tally = Tally::of(&version.plugin.stats);
                (version, book.started + 1, tally)
            }
        };
        let canary = Arc::new(Canary {
            plugin: version.plugin,
            bytes: version.bytes,
            percent: policy.percent,
            rooms: policy.rooms,
            started,
            budget: policy.budget,
            tally_at_start,
        });
        let mut canaries = book.canaries.clone();
        canaries.insert(position, Arc::clone(&canary));
        // A new canary's `started` is one more than any before it.
        let at = book.started.max(started);
        self.publish(stable, &canaries, at)?;
        if running.is_none() {
            canary.plugin.revive();
        }
        book.canaries = canaries;
        book.started = at;
        Ok(canary)
    }

    /// Makes `name`'s canary its stable version, in every room; the
    /// stable one it replaces can be rolled back to.
    pub(crate) fn promote(&self, name: &str) -> Result<Arc<Canary>, SwapError> {
        let mut book = self.book.lock();
        let position = self.position(name)?;
        let canary = book
            .canaries
            .get(&position)
            .cloned()
            .ok_or_else(|| SwapError::NoCanary(name.to_owned()))?;
        let old = self.make_stable(&mut book, Arc::clone(&canary.plugin))?;
        book.remember(old);
        Ok(canary)
    }

    /// Ends `name`'s canary: the rooms that ran it run the stable version
    /// from their next event. Returns the stable version.
    pub(crate) fn abort(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
        let mut book = self.book.lock();
        let position = self.position(name)?;
        if !book.canaries.contains_key(&position) {
            return Err(SwapError::NoCanary(name.to_owned()));
        }
        self.end_canaries(&mut book, &[position])?;
        Ok(Arc::clone(&self.chain().plugins[position]))
    }

    /// The pin of an open room whose `pin` is moved to `name`'s canary
    /// (`to_canary`) or its stable version, and the version of `name` it
    /// runs then. Without a canary every room runs stable already.
    pub(crate) fn repin(
        &self,
        name: &str,
        pin: Pin,
        to_canary: bool,
    ) -> Result<(Pin, Arc<Plugin>), SwapError> {
        let _book = self.book.lock();
        let position = self.position(name)?;
        let live = self.live();
        let Some(rollout) = live.rollout.as_deref() else {
            if to_canary {
                return Err(SwapError::NoCanary(name.to_owned()));
            }
            return Ok((pin, Arc::clone(&live.stable.plugins[position])));
        };
        if to_canary && !rollout.has_canary_at(position) {
            return Err(SwapError::NoCanary(name.to_owned()));
        }
        let moved = rollout.repin(pin, position, to_canary);
        Ok((moved, Arc::clone(&rollout.chain(moved).plugins[position])))
    }

    /// Whether some canary has failed more often than its budget allows.
    /// Cheap: for a watch to ask often.
    pub(crate) fn overdrawn(&self) -> bool {
        let book = self.book.lock();
        book.canaries.values().any(|canary| canary.overdrawn())
    }

    /// Ends every canary that has overdrawn its budget, as an abort does,
    /// and keeps why; returns them. Judged under the lock changes take, so
    /// an operator's change in between cannot be the one ended.
    pub(crate) fn roll_back_overdrawn(&self) -> Result<Vec<RolledBack>, SwapError> {
        let mut book = self.book.lock();
        let overdrawn: Vec<(usize, Arc<Canary>)> = (book.canaries.iter())
            .filter(|(_, canary)| canary.overdrawn())
            .map(|(position, canary)| (*position, Arc::clone(canary)))
            .collect();
        if overdrawn.is_empty() {
            return Ok(Vec::new());
        }
        let positions: Vec<usize> = overdrawn.iter().map(|(position, _)| *position).collect();
        self.end_canaries(&mut book, &positions)?;
        let at = unix_millis();
        let rolled_back: Vec<RolledBack> = overdrawn
            .into_iter()
            .filter_map(|(_, canary)| {
                Some(RolledBack {
                    spent: canary.spent(),
                    budget: canary.budget?,
                    canary: Arc::clone(&canary.plugin),
                    at,
                })
            })
            .collect();
        for rolled in &rolled_back {
            let name = Arc::clone(&rolled.canary.name);
            book.rolled_back.insert(name, rolled.clone());
        }
        Ok(rolled_back)
    }

    /// Ends the canaries at `positions`: the rooms that ran them run the
    /// stable versions from their next event.
    fn end_canaries(&self, book: &mut Book, positions: &[usize]) -> Result<(), SwapError> {
        let mut canaries = book.canaries.clone();
        let ended: Vec<Arc<Canary>> = positions
            .iter()
            .filter_map(|position| canaries.remove(position))
            .collect();
        self.publish(self.chain(), &canaries, book.started)?;
        book.canaries = canaries;
        for canary in ended {
            canary.plugin.retire();
        }
        Ok(())
    }

    /// Makes `plugin` the stable version of its entry and ends the entry's
    /// canary; returns the stable version it replaced.
    fn make_stable(&self, book: &mut Book, plugin: Arc<Plugin>) -> Result<Arc<Plugin>, SwapError> {
        let chain = self.chain();
        let position = self.position(&plugin.name)?;
        let mut plugins = chain.plugins.clone();
        let old = std::mem::replace(&mut plugins[position], Arc::clone(&plugin));
        let next = Arc::new(Chain::new(plugins).map_err(SwapError::Invalid)?);
        let mut canaries = book.canaries.clone();
        let canary = canaries.remove(&position);
        self.publish(next, &canaries, book.started)?;
        plugin.revive();
        book.canaries = canaries;
        for gone in [Some(&old), canary.as_ref().map(|c| &c.plugin)]
            .into_iter()
            .flatten()
        {
            if !Arc::ptr_eq(gone, &plugin) {
                gone.retire();
            }
        }
        Ok(old)
    }

    /// Makes `stable` and a rollout of `canaries` live.
    fn publish(
        &self,
        stable: Arc<Chain>,
        canaries: &BTreeMap<usize, Arc<Canary>>,
        at: u64,
    ) -> Result<(), SwapError> {
        let rollout = Rollout::new(&stable, at, canaries).map_err(SwapError::Invalid)?;
        *self.live.write() = Live {
            stable,
            rollout: rollout.map(Arc::new),
        };
        // After the write: a thread that sees the new count takes the new
        // chains.
        self.installs.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Where the entry `name` is in the chain.
    fn position(&self, name: &str) -> Result<usize, SwapError> {
        self.chain()
            .plugins
            .iter()
            .position(|p| &*p.name == name)
            .ok_or_else(|| SwapError::UnknownPlugin(name.to_owned()))
    }

    fn is_live(&self, book: &Book, position: usize, plugin: &Arc<Plugin>) -> bool {
        Arc::ptr_eq(&self.chain().plugins[position], plugin)
            || book
                .canaries
                .get(&position)
                .is_some_and(|c| Arc::ptr_eq(&c.plugin, plugin))
    }

    fn versions_of(&self, book: &Book, name: &str) -> Result<Vec<(Arc<Plugin>, Role)>, SwapError> {
        let position = self.position(name)?;
        let mut versions = vec![(Arc::clone(&self.chain().plugins[position]), Role::Stable)];
        if let Some(canary) = book.canaries.get(&position) {
            versions.push((Arc::clone(&canary.plugin), Role::Canary));
        }
        for version in book.uploaded.get(name).into_iter().flatten() {
            if !versions.iter().any(|(p, _)| p.hash == version.plugin.hash) {
                versions.push((Arc::clone(&version.plugin), Role::Idle));
            }
        }
        Ok(versions)
    }
}

/// The chains one message runs on: this thread's copy, or the shared one
/// when the copy is in use further up the stack and stale.
pub(crate) enum Current<'a> {
    Local(Ref<'a, Live>),
    Shared(Live),
}

impl Current<'_> {
    pub(crate) fn chains(&self) -> Chains<'_> {
        match self {
            Current::Local(live) => live.chains(),
            Current::Shared(live) => live.chains(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{load_builtin, loader};
    use crate::plugins::{PluginSource, builtin};

    /// The chain `rooms`, `chat`.
    fn registry() -> Registry {
        let plugins = ["rooms", "chat"].map(|name| Arc::new(load_builtin(name, "{}").unwrap()));
        Registry::new(Chain::new(plugins.to_vec()).unwrap())
    }

    /// Another version of the `chat` entry: the built-in `component`
    /// loaded under that name.
    fn chat_version(component: &str) -> Version {
        let bytes = builtin::find(component).unwrap().wasm;
        let source = PluginSource {
            origin: component.into(),
            bytes: bytes.to_vec(),
        };
        let loader = loader();
        let limits = loader.default_limits().clone();
        let plugin = loader
            .load("chat", &source, "{}".into(), Vec::new(), limits)
            .unwrap();
        Version {
            plugin: Arc::new(plugin),
            bytes: bytes.into(),
        }
    }

    fn policy(canary: &Version, percent: u8) -> Policy {
        Policy {
            canary: canary.plugin.hash.clone(),
            percent,
            rooms: HashSet::new(),
            budget: None,
        }
    }

    /// The `chat` a room with `pin` runs now.
    fn chat_of(registry: &Registry, pin: Pin) -> String {
        let live = registry.live();
        let chains = live.chains();
        let chain = match chains.rollout {
            Some(rollout) => rollout.chain(pin),
            None => chains.stable,
        };
        chain.plugins[1].hash.clone()
    }

    fn opening(registry: &Registry, room: &str) -> Pin {
        let live = registry.live();
        let rollout = live.chains().rollout.expect("a canary is active");
        rollout.assign(&RoomId::parse(room).unwrap())
    }

    fn roles(registry: &Registry) -> Vec<(String, Role)> {
        let versions = registry.versions("chat").unwrap();
        versions.iter().map(|(p, r)| (p.hash.clone(), *r)).collect()
    }

    #[test]
    fn a_canary_runs_in_the_rooms_pinned_to_it_until_promoted_or_aborted() {
        let registry = registry();
        let v1 = registry.chain().plugins[1].hash.clone();
        let v2 = chat_version("moderation");
        let h2 = v2.plugin.hash.clone();
        assert!(matches!(
            registry.set_rollout("chat", policy(&v2, 100)),
            Err(SwapError::UnknownVersion { .. })
        ));
        assert!(registry.upload("chat", v2.clone()).unwrap());
        assert!(!registry.upload("chat", v2.clone()).unwrap(), "once");
        assert_eq!(
            roles(&registry),
            [(v1.clone(), Role::Stable), (h2.clone(), Role::Idle)]
        );

        registry.set_rollout("chat", policy(&v2, 100)).unwrap();
        assert_eq!(
            roles(&registry),
            [(v1.clone(), Role::Stable), (h2.clone(), Role::Canary)]
        );
        let early = opening(&registry, "early");
        assert_eq!(chat_of(&registry, early), h2);
        assert_eq!(chat_of(&registry, Pin::default()), v1, "rooms from before");

        // Fewer new rooms: the open ones keep their version.
        registry.set_rollout("chat", policy(&v2, 0)).unwrap();
        assert_eq!(chat_of(&registry, opening(&registry, "late")), v1);
        assert_eq!(chat_of(&registry, early), h2);

        registry.abort("chat").unwrap();
        assert!(registry.live().rollout.is_none(), "no canary, no rollout");
        assert_eq!(chat_of(&registry, early), v1);
        assert!(matches!(
            registry.abort("chat"),
            Err(SwapError::NoCanary(_))
        ));

        // A canary started later does not take the rooms an earlier one
        // had.
        registry.set_rollout("chat", policy(&v2, 100)).unwrap();
        assert_eq!(chat_of(&registry, early), v1);
        assert_eq!(chat_of(&registry, opening(&registry, "later")), h2);

        registry.promote("chat").unwrap();
        assert!(registry.live().rollout.is_none());
        assert_eq!(registry.chain().plugins[1].hash, h2);
        assert_eq!(chat_of(&registry, early), h2, "every room");
        assert_eq!(registry.previous_hash("chat"), Some(v1.clone()));
        assert!(matches!(
            registry.promote("chat"),
            Err(SwapError::NoCanary(_))
        ));
        registry.rollback("chat").unwrap();
        assert_eq!(registry.chain().plugins[1].hash, v1);
    }

    #[test]
    fn a_rollout_that_contradicts_the_one_under_way_is_a_conflict() {
        let registry = registry();
        let (v2, v3) = (chat_version("moderation"), chat_version("signaling"));
        registry.upload("chat", v2.clone()).unwrap();
        registry.upload("chat", v3.clone()).unwrap();
        let stable = Policy {
            canary: registry.chain().plugins[1].hash.clone(),
            percent: 10,
            rooms: HashSet::new(),
            budget: None,
        };
        assert!(matches!(
            registry.set_rollout("chat", stable),
            Err(SwapError::Conflict(_))
        ));
        assert!(matches!(
            registry.set_rollout("nope", policy(&v2, 10)),
            Err(SwapError::UnknownPlugin(_))
        ));
        registry.set_rollout("chat", policy(&v2, 10)).unwrap();
        assert!(matches!(
            registry.set_rollout("chat", policy(&v3, 10)),
            Err(SwapError::Conflict(_))
        ));
        assert_eq!(
            registry
                .rollout("chat")
                .unwrap()
                .canary
                .unwrap()
                .plugin
                .hash,
            v2.plugin.hash
        );
    }

    #[test]
    fn one_open_room_moves_onto_the_canary_and_back() {
        let registry = registry();
        let v1 = registry.chain().plugins[1].hash.clone();
        let v2 = chat_version("moderation");
        assert!(matches!(
            registry.repin("chat", Pin::default(), true),
            Err(SwapError::NoCanary(_))
        ));
        registry.upload("chat", v2.clone()).unwrap();
        registry.set_rollout("chat", policy(&v2, 0)).unwrap();
        let room = opening(&registry, "r");
        assert_eq!(chat_of(&registry, room), v1);
        let (moved, runs) = registry.repin("chat", room, true).unwrap();
        assert_eq!(
            (chat_of(&registry, moved), &runs.hash),
            (v2.plugin.hash.clone(), &v2.plugin.hash)
        );
        let (back, runs) = registry.repin("chat", moved, false).unwrap();
        assert_eq!((chat_of(&registry, back), &runs.hash), (v1.clone(), &v1));
        assert!(matches!(
            registry.repin("nope", room, true),
            Err(SwapError::UnknownPlugin(_))
        ));
    }

    /// Counts `calls` calls of `version`, `failed` of them trapped.
    fn called(version: &Version, calls: u64, failed: u64) {
        let stats = &version.plugin.stats;
        for _ in 0..calls {
            stats.record(0.000_001);
        }
        stats.traps.fetch_add(failed, Ordering::Relaxed);
    }

    #[test]
    fn a_canary_over_its_budget_is_rolled_back_and_one_within_it_is_not() {
        let registry = registry();
        let v1 = registry.chain().plugins[1].hash.clone();
        let v2 = chat_version("moderation");
        // Calls before it became the canary are not the canary's.
        called(&v2, 50, 50);
        registry.upload("chat", v2.clone()).unwrap();
        let budget = Budget {
            error_percent: 10.0,
            min_calls: 20,
        };
        let budgeted = Policy {
            budget: Some(budget),
            ..policy(&v2, 100)
        };
        registry.set_rollout("chat", budgeted).unwrap();
        let pinned = opening(&registry, "r");
        called(&v2, 19, 2);
        assert!(!registry.overdrawn(), "too few calls to judge");
        called(&v2, 1, 0);
        assert!(!registry.overdrawn(), "2 in 20 is the budget, not over it");
        assert!(registry.roll_back_overdrawn().unwrap().is_empty());
        assert!(registry.rollout("chat").unwrap().canary.is_some());

        called(&v2, 1, 1);
        assert!(registry.overdrawn());
        let rolled = registry.roll_back_overdrawn().unwrap();
        assert_eq!(rolled.len(), 1);
        assert_eq!(
            rolled[0].spent,
            Tally {
                calls: 21,
                errors: 3
            }
        );
        assert_eq!(rolled[0].budget, budget);
        assert!(registry.live().rollout.is_none(), "no canary, no rollout");
        assert_eq!(chat_of(&registry, pinned), v1, "its rooms went back");
        let state = registry.rollout("chat").unwrap();
        assert!(state.canary.is_none());
        let kept = state.rolled_back.expect("the rollback is kept");
        assert_eq!(kept.canary.hash, v2.plugin.hash);
        assert!(!registry.overdrawn() && registry.roll_back_overdrawn().unwrap().is_empty());
    }

    #[test]
    fn a_canary_without_a_budget_is_never_rolled_back() {
        let registry = registry();
        let v2 = chat_version("moderation");
        registry.upload("chat", v2.clone()).unwrap();
        registry.set_rollout("chat", policy(&v2, 100)).unwrap();
        called(&v2, 1_000, 1_000);
        assert!(!registry.overdrawn());
        assert!(registry.roll_back_overdrawn().unwrap().is_empty());
    }

    #[test]
    fn a_hot_swap_moves_every_room_and_ends_the_canary() {
        let registry = registry();
        let v2 = chat_version("moderation");
        registry.upload("chat", v2.clone()).unwrap();
        registry.set_rollout("chat", policy(&v2, 100)).unwrap();
        let pinned = opening(&registry, "r");
        let v3 = chat_version("signaling");
        let h3 = v3.plugin.hash.clone();
        registry
            .replace(Arc::into_inner(v3.plugin).unwrap())
            .unwrap();
        assert!(registry.rollout("chat").unwrap().canary.is_none());
        assert_eq!(chat_of(&registry, pinned), h3);
        assert_eq!(chat_of(&registry, Pin::default()), h3);
    }
}
