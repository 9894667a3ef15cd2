//! Compiled plugins cached on disk, keyed by the component's SHA-256 and
//! the engine's compatibility hash, so a restart (or loading a known
//! version again) skips the compiler.
//!
//! Loading a cached file runs its machine code: the directory must be as
//! trusted as the binary itself (it is the operator's, created 0700).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    /// `None` compiles every time.
    pub fn new(dir: Option<PathBuf>) -> CompileCache {
        CompileCache { dir }
    }

    /// `hash` is the component's SHA-256, hex.
    pub fn compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &str,
    ) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, bytes);
        };
        let path = dir.join(format!("{}.cwasm", key(engine, hash)));
        if path.is_file() {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the name),
            // in a directory only the operator controls.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached plugin: {e}")
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = store(dir, &path, &compiled) {
            tracing::warn!(dir = %dir.display(), "cannot cache compiled plugin: {e}");
        }
        // SAFETY: these bytes come from `precompile_component` just now.
        unsafe { Component::deserialize(engine, &compiled) }
    }
}

fn key(engine: &Engine, hash: &str) -> String {
    let mut engine_hash = DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    format!("{hash}-{:016x}", engine_hash.finish())
}

/// Writes through a temporary file and a rename, so a concurrent reader
/// never sees half a file.
fn store(dir: &Path, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, compiled)?;
    std::fs::rename(&tmp, path)
}

/// `$XDG_CACHE_HOME/switchboard`, else `$HOME/.cache/switchboard`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("switchboard"))
}
