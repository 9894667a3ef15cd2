//! Compiled plugins cached on disk, keyed by the component's SHA-256 and
//! the engine's compatibility hash, so a restart (or loading a known
//! version again) skips the compiler, and `switchboard compile` can fill it
//! at deploy time. Bounded: past its size, the entries used longest ago go
//! (a load marks its entry used).
//!
//! Loading a cached file runs its machine code: the directory must be as
//! trusted as the binary itself (it is the operator's, created 0700).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct CompileCache {
    dir: Option<PathBuf>,
    /// Bytes of entries kept in `dir`; more are evicted.
    max_bytes: u64,
}

impl CompileCache {
    /// `None` compiles every time.
    pub fn new(dir: Option<PathBuf>) -> CompileCache {
        CompileCache {
            dir,
            max_bytes: u64::MAX,
        }
    }

    /// Keeps at most `max_bytes` of entries, evicting those used longest
    /// ago.
    pub fn bounded(self, max_bytes: u64) -> CompileCache {
        CompileCache { max_bytes, ..self }
    }

    /// Where the entry for a component would be, if this cache keeps any.
    pub(super) fn path(&self, engine: &Engine, hash: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}.cwasm", key(engine, hash))))
    }

    /// `hash` is the component's SHA-256, hex.
    pub fn compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &str,
    ) -> wasmtime::Result<Component> {
        let (Some(dir), Some(path)) = (&self.dir, self.path(engine, hash)) else {
            return Component::new(engine, bytes);
        };
        if path.is_file() {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the name),
            // in a directory only the operator controls.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    // Marks it used, for eviction; at worst it goes early.
                    let _ = std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|file| file.set_modified(SystemTime::now()));
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached plugin: {e}")
                }
            }
        }
        let started = Instant::now();
        let compiled = engine.precompile_component(bytes)?;
        tracing::info!(
            component = hash,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled a plugin that was not in the compile cache"
        );
        match store(dir, &path, &compiled) {
            Ok(()) => evict(dir, self.max_bytes, &path),
            Err(e) => tracing::warn!(dir = %dir.display(), "cannot cache compiled plugin: {e}"),
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

/// Removes the entries used longest ago until those left fit in
/// `max_bytes`; `kept` (just written) stays whatever its size. Failures
/// are only logged: another server sharing the directory may be evicting
/// the same files.
fn evict(dir: &Path, max_bytes: u64, kept: &Path) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = listing
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "cwasm"))
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), entry.path()))
        })
        .collect();
    // Newest first: what is kept is a prefix.
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let mut total = 0u64;
    for (_, len, path) in entries {
        total = total.saturating_add(len);
        if total > max_bytes && path != kept {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "evicted from the compile cache"),
                Err(e) => tracing::debug!(path = %path.display(), "cannot evict: {e}"),
            }
        }
    }
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
    use std::time::{Duration, SystemTime};

    use super::{evict, store};

    #[test]
    fn eviction_keeps_the_most_recently_used_entries_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        // a is the oldest, d the newest; each 1000 bytes.
        for (age, name) in [(4, "a"), (3, "b"), (2, "c"), (1, "d")] {
            let path = dir.path().join(format!("{name}.cwasm"));
            std::fs::write(&path, [0u8; 1000]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(age * 60))
                .unwrap();
        }
        std::fs::write(dir.path().join("other.txt"), [0u8; 5000]).unwrap();
        // The oldest is the one just written: it stays, and so does d.
        evict(dir.path(), 2500, &dir.path().join("a.cwasm"));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["a.cwasm", "c.cwasm", "d.cwasm", "other.txt"]);
    }

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
