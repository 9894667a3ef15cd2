//! Compiled plugins cached on disk, keyed by the component's SHA-256 and
//! the engine's compatibility hash, so a restart (or loading a known
//! version again) skips the compiler.
//!
//! Loading a cached file runs its machine code: the directory must be as
//! trusted as the binary itself (it is the operator's, created 0700).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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

/// Part of every key. 2: entries written before [`store`] gave each write
/// its own temporary file may hold another plugin's code, and are never
/// read again.
const LAYOUT: u32 = 2;

fn key(engine: &Engine, hash: &str) -> String {
    let mut engine_hash = DefaultHasher::new();
    LAYOUT.hash(&mut engine_hash);
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    format!("{hash}-{:016x}", engine_hash.finish())
}

/// Writes through a temporary file and a rename, so a concurrent reader
/// never sees half a file. The temporary file's name is this write's own:
/// with one name per process, two plugins compiled at once on two threads
/// wrote the same file, and one plugin's entry got the other's code.
fn store(dir: &Path, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let n = WRITES.fetch_add(1, Relaxed);
    let tmp = dir.join(format!(".{}-{n}.tmp", std::process::id()));
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

#[cfg(test)]
mod tests {
    use super::store;

    #[test]
    fn entries_stored_at_once_on_many_threads_each_keep_their_own_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|scope| {
            for thread in 0..8u8 {
                let dir = dir.path();
                scope.spawn(move || {
                    for round in 0..50u8 {
                        let path = dir.join(format!("{thread}-{round}.cwasm"));
                        store(dir, &path, &[thread; 4096]).unwrap();
                    }
                });
            }
        });
        for thread in 0..8u8 {
            for round in 0..50u8 {
                let path = dir.path().join(format!("{thread}-{round}.cwasm"));
                let stored = std::fs::read(&path).unwrap();
                assert!(
                    stored.len() == 4096 && stored.iter().all(|b| *b == thread),
                    "{} holds another entry's bytes",
                    path.display()
                );
            }
        }
    }
}
