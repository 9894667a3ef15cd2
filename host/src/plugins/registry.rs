//! The live chain and the versions each plugin replaced: hot swap and
//! rollback build the next chain and swap one pointer.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::chain::Chain;
use super::wasm::Plugin;

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
    pub(crate) fn new(chain: Chain) -> Registry {
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
        old.retire();
        Ok(old)
    }
}
