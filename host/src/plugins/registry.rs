//! The live chain and the versions each plugin replaced: hot swap and
//! rollback build the next chain and swap one pointer.

use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use thread_local::ThreadLocal;

use super::chain::Chain;
use super::wasm::Plugin;

/// The current chain, and the versions each plugin replaced.
pub struct Registry {
    current: RwLock<Arc<Chain>>,
    /// Counts the chains made live, so a thread can tell whether its copy
    /// in `local` is still the current one.
    installs: AtomicU64,
    /// Each thread's copy of the current chain, with the count of installs
    /// it was taken at. Taking the shared one for every message put its
    /// lock and its reference count, written by every worker, on cache
    /// lines the workers passed back and forth.
    local: ThreadLocal<RefCell<(u64, Arc<Chain>)>>,
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
    pub(crate) fn new(chain: Chain) -> Registry {
        Registry {
            current: RwLock::new(Arc::new(chain)),
            installs: AtomicU64::new(0),
            local: ThreadLocal::new(),
            history: Mutex::default(),
        }
    }

    pub fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.current.read())
    }

    /// The current chain, from this thread's copy: for the hot path, which
    /// takes it once per message. A copy is kept per thread until the next
    /// swap, which the next call on that thread notices.
    pub(crate) fn current(&self) -> Current<'_> {
        let installs = self.installs.load(Ordering::Acquire);
        let local = self.local.get_or(|| RefCell::new((installs, self.chain())));
        if local.borrow().0 != installs {
            match local.try_borrow_mut() {
                Ok(mut stale) => *stale = (installs, self.chain()),
                // A caller further up this thread's stack still holds the
                // old copy (a message handled inside another).
                Err(_) => return Current::Shared(self.chain()),
            }
        }
        Current::Local(Ref::map(local.borrow(), |(_, chain)| &**chain))
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
    pub(crate) fn rollback(&self, name: &str) -> Result<Arc<Plugin>, SwapError> {
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

    /// The hash of the version a rollback of `name` would make live.
    pub(crate) fn previous_hash(&self, name: &str) -> Option<String> {
        let history = self.history.lock();
        Some(history.get(name)?.last()?.hash.clone())
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
        // After the write: a thread that sees the new count takes the new
        // chain.
        self.installs.fetch_add(1, Ordering::Release);
        old.retire();
        Ok(old)
    }
}

/// The chain one message runs on: this thread's copy, or the shared one
/// when the copy is in use further up the stack and stale.
pub(crate) enum Current<'a> {
    Local(Ref<'a, Chain>),
    Shared(Arc<Chain>),
}

impl Deref for Current<'_> {
    type Target = Chain;

    fn deref(&self) -> &Chain {
        match self {
            Current::Local(chain) => chain,
            Current::Shared(chain) => chain,
        }
    }
}
