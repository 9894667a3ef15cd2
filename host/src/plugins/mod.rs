//! Plugins: the chain an operator configured (`entries`), the current chain
//! and its routes (`chain`, behind the `registry`'s one pointer, with the
//! versions that are not live), canary rollouts and the rooms pinned to a
//! version (`rollout`), a canary's error budget (`budget`), hot swap,
//! uploads, rollout changes and the plugins-directory watch (`swap`), the
//! plugins shipped in the binary (`builtin`), and the wasmtime facade that
//! loads and calls them (`wasm`).
//!
//! Plugins decide; they never act. Everything they ask for comes out of a
//! call as an [`Effect`] for the router to carry out.

mod budget;
pub mod builtin;
mod chain;
mod entries;
mod registry;
mod rollout;
mod swap;
mod wasm;
mod world;

pub(crate) use budget::{Budget, RolledBack, Tally};
pub use chain::Chain;
pub(crate) use entries::load;
pub(crate) use registry::{EntryRollout, Policy, Role};
pub use registry::{Registry, SwapError};
pub(crate) use rollout::{Canary, Chains};
pub(crate) use swap::{Announce, Swapper};
pub use wasm::{
    Answer, AuthOutcome, CompileCache, Effect, Loader, Outcome, Plugin, PluginSource, Relay,
    default_cache_dir,
};
pub(crate) use wasm::{
    Called, Import, PluginFault, Support, WIT_VERSION, lower_priority, unix_millis,
};
pub use world::Scratch;
pub(crate) use world::{recorded_client, view};

/// Loading the built-in plugins in unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::{CompileCache, Loader, Plugin, PluginSource, builtin};
    use crate::config::Config;
    use crate::state::Hub;

    /// A loader over an empty membership table, with a compile cache the
    /// unit tests share.
    pub(crate) fn loader() -> Loader {
        loader_on(Arc::new(Hub::new(16)))
    }

    /// A loader whose plugins' calls reach `hub`.
    fn loader_on(hub: Arc<Hub>) -> Loader {
        let dir = std::env::temp_dir().join("switchboard-unit-tests-cache");
        let limits = Config::default().plugin_limits;
        Loader::new(hub, limits, CompileCache::new(Some(dir))).unwrap()
    }

    /// The built-in plugin `name` started with the JSON `config`.
    pub(crate) fn load_builtin(name: &str, config: &str) -> anyhow::Result<Plugin> {
        load_builtin_on(Arc::new(Hub::new(16)), name, config)
    }

    /// [`load_builtin`], its calls reaching `hub`.
    pub(crate) fn load_builtin_on(
        hub: Arc<Hub>,
        name: &str,
        config: &str,
    ) -> anyhow::Result<Plugin> {
        let found = builtin::find(name).unwrap();
        let source = PluginSource {
            origin: format!("built-in `{name}`"),
            bytes: found.wasm.to_vec(),
        };
        let env = vec![(builtin::JWT_SECRET_VAR.to_owned(), "unit".to_owned())];
        load_with_defaults(&loader_on(hub), name, &source, config, env)
    }

    /// The component a script of this repository builds, at `path` from the
    /// repository's root, loaded as `name` with the default limits.
    pub(crate) fn load_built(name: &str, path: &str, script: &str) -> Plugin {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run {script}", path.display()));
        let source = PluginSource {
            origin: path.display().to_string(),
            bytes,
        };
        load_with_defaults(&loader(), name, &source, "{}", vec![]).unwrap()
    }

    /// `source` loaded as `name` with the default limits.
    fn load_with_defaults(
        loader: &Loader,
        name: &str,
        source: &PluginSource,
        config: &str,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Plugin> {
        let limits = loader.default_limits().clone();
        loader.load(name, source, config.to_owned(), env, limits)
    }
}
