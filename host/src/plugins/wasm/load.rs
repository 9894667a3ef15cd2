//! Turning component bytes into a ready [`Plugin`]: compile, check the
//! interface version, pre-instantiate, ask `describe()`, start one
//! instance with the plugin's config. All of it happens before the plugin
//! serves a single event.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::cache::CompileCache;

use super::bindings::PluginPre;
use super::engine::{engine, linker};
use super::outcome::Descriptor;
use super::pool::Plugin;
use super::provided::{self, Import, Support};
use super::state::PluginState;
use crate::config::PluginLimits;
use crate::state::Hub;

/// The WIT package version this host implements.
pub(crate) const WIT_VERSION: &str = "0.3.0";
const GUEST_EXPORT: &str = "switchboard:plugin/guest";

/// A component to load, and where it came from (for messages).
pub struct PluginSource {
    pub origin: String,
    pub bytes: Vec<u8>,
}

/// What `switchboard check` shows of a component.
pub struct Inspection {
    pub imports: Vec<Import>,
    /// What it declares, or why it cannot load (with what to do about it).
    pub described: anyhow::Result<Descriptor>,
}

/// A compiled, linked and described component, not yet started.
pub(super) struct Prepared {
    pub pre: PluginPre<PluginState>,
    pub descriptor: Descriptor,
    pub hash: String,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Everything a plugin load needs, built once per process.
pub struct Loader {
    engine: Engine,
    cache: CompileCache,
    linker: Linker<PluginState>,
    hub: Arc<Hub>,
    limits: PluginLimits,
}

impl Loader {
    pub fn new(hub: Arc<Hub>, limits: PluginLimits, cache: CompileCache) -> anyhow::Result<Loader> {
        let engine = engine()?;
        let linker = linker(&engine)?;
        Ok(Loader {
            engine,
            cache,
            linker,
            hub,
            limits,
        })
    }

    /// The limits of a plugin whose chain entry sets none.
    pub fn default_limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// Loads a plugin ready to serve under `name`, the chain's name for it.
    /// `config` is JSON text for its `init`; `env` the variables its WASI
    /// context may read; `limits` its memory and time for each call.
    pub fn load(
        &self,
        name: &str,
        source: &PluginSource,
        config: String,
        env: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> anyhow::Result<Plugin> {
        let prepared = self.prepare(source, &limits)?;
        let hub = Arc::clone(&self.hub);
        let plugin = Plugin::new(name.into(), prepared, hub, config, env, limits);
        plugin
            .warm_up()
            .with_context(|| format!("starting plugin from {}", source.origin))?;
        Ok(plugin)
    }

    /// Compiles a plugin and says what it imports and declares, without
    /// starting it (`switchboard check`), under the default limits.
    pub fn inspect(&self, source: &PluginSource) -> anyhow::Result<Inspection> {
        let hash = sha256_hex(&source.bytes);
        let component = self.compile(source, &hash)?;
        let imports = provided::imports(&self.engine, &component);
        let described = self
            .link(source, &component, &self.limits)
            .map(|(_, descriptor)| descriptor);
        Ok(Inspection { imports, described })
    }

    /// The compile cache's entry for `source`, if it is there.
    pub fn cached(&self, source: &PluginSource) -> Option<PathBuf> {
        let path = self.cache.path(&self.engine, &sha256_hex(&source.bytes))?;
        path.is_file().then_some(path)
    }

    fn prepare(&self, source: &PluginSource, limits: &PluginLimits) -> anyhow::Result<Prepared> {
        let hash = sha256_hex(&source.bytes);
        let component = self.compile(source, &hash)?;
        let (pre, descriptor) = self.link(source, &component, limits)?;
        Ok(Prepared {
            pre,
            descriptor,
            hash,
        })
    }

    fn compile(&self, source: &PluginSource, hash: &str) -> anyhow::Result<Component> {
        self.cache
            .compile(&self.engine, &source.bytes, hash)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "compiling plugin {} (is it a wasm32-wasip2 component?)",
                    source.origin
                )
            })
    }

    /// Checks the interface version, links and describes a compiled plugin.
    fn link(
        &self,
        source: &PluginSource,
        component: &Component,
        limits: &PluginLimits,
    ) -> anyhow::Result<(PluginPre<PluginState>, Descriptor)> {
        let origin = &source.origin;
        check_interface(&self.engine, component).with_context(|| format!("plugin {origin}"))?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(PluginPre::new)
            .map_err(|e| link_error(&self.engine, component, e.into()))
            .with_context(|| format!("linking plugin {origin}"))?;
        let descriptor = self
            .call_describe(&pre, origin, limits)
            .with_context(|| format!("describing plugin {origin}"))?;
        Ok((pre, descriptor))
    }

    fn call_describe(
        &self,
        pre: &PluginPre<PluginState>,
        origin: &str,
        limits: &PluginLimits,
    ) -> anyhow::Result<Descriptor> {
        let state = PluginState::new(
            origin.into(),
            Arc::clone(&self.hub),
            &[],
            limits.memory_bytes,
        );
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(100);
        let described = pre.instantiate(&mut store).and_then(|bindings| {
            bindings
                .switchboard_plugin_guest()
                .call_describe(&mut store)
        });
        store.data().flush_output();
        let descriptor: Descriptor = described?.into();
        if descriptor.name.is_empty() {
            bail!("it describes itself with an empty name");
        }
        Ok(descriptor)
    }
}

/// A link failure with what to do about it in front of wasmtime's own
/// words, which name only the first import it could not match.
fn link_error(engine: &Engine, component: &Component, error: anyhow::Error) -> anyhow::Error {
    let imports = provided::imports(engine, component);
    let missing: Vec<&str> = imports
        .iter()
        .filter(|import| import.support == Support::Missing)
        .map(|import| import.name.as_str())
        .collect();
    if missing.is_empty() {
        error.context(
            "it imports an interface this host provides, but with other types: was it built \
             against another WASI 0.2 or switchboard:plugin release?",
        )
    } else {
        error.context(provided::fix(&missing))
    }
}

/// Refuses a component built against another major version of the WIT
/// package with a message that says so, instead of a link error.
fn check_interface(engine: &Engine, component: &Component) -> anyhow::Result<()> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let Some(export) = exports.iter().find(|name| name.starts_with(GUEST_EXPORT)) else {
        bail!(
            "it is not a Switchboard plugin: it does not export `{GUEST_EXPORT}` (it exports: {})",
            if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            }
        );
    };
    let version = export
        .strip_prefix(GUEST_EXPORT)
        .and_then(|v| v.strip_prefix('@'))
        .unwrap_or("");
    if !compatible(version, WIT_VERSION) {
        bail!(
            "it targets interface switchboard:plugin@{}, this host speaks {WIT_VERSION}",
            if version.is_empty() {
                "(unversioned)"
            } else {
                version
            }
        );
    }
    Ok(())
}

/// Semver compatibility as cargo reads it: same major, and for 0.x the
/// same minor.
fn compatible(theirs: &str, ours: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(theirs), parts(ours)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn versions_follow_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.7", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(!compatible("", "0.1.0"));
    }
}
