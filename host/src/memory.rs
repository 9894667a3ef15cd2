//! Memory that comes back after a crowd has gone. A `HashMap` keeps its
//! largest capacity for good, and glibc's allocator keeps freed pages in
//! its arenas: after 50,000 clients (or suspended sessions) have come and
//! gone, both held on to what they needed at the peak.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::Hub;

/// Tables this small are left as they are.
const SMALL_TABLE: usize = 1024;

/// Removes `key` from a per-client table; once `map` holds under a
/// quarter of what it has room for, it shrinks to twice its size, so each
/// shrink is paid for by the removals before it.
pub(crate) fn remove<K: Eq + Hash, V, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    key: &K,
) -> Option<V> {
    let removed = map.remove(key);
    if map.capacity() > SMALL_TABLE && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
    removed
}

/// How often [`give_back`] looks at the number of clients.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// A drop in clients (local ones, proxies and suspended sessions) from
/// their peak since the last trim that is worth a trim.
const DROP_WORTH_A_TRIM: usize = 1000;

/// Hands the allocator's free pages back to the OS once the number of
/// clients has dropped well below its peak, until `shutdown`. A trim walks
/// the heap, so it runs only after a real drop, not on a timer.
pub(crate) async fn give_back(hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut peak = 0;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (recent, now) = hub.take_peak();
        peak = peak.max(recent);
        if peak - now >= DROP_WORTH_A_TRIM {
            let freed = trim();
            tracing::debug!(clients = now, peak, freed, "memory: trimmed the heap");
            peak = now;
        }
    }
}

/// glibc's `malloc_trim(0)`: true if it gave memory back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn trim() -> bool {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and is thread-safe; it only
    // returns free pages of the allocator's arenas to the OS.
    unsafe { malloc_trim(0) == 1 }
}

/// Other allocators give memory back by themselves, or not at all.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::remove;

    #[test]
    fn a_table_emptied_after_a_crowd_shrinks_and_a_small_one_is_left_alone() {
        let mut map: HashMap<u64, [u8; 64]> = (0..50_000).map(|k| (k, [0; 64])).collect();
        let peak = map.capacity();
        for k in 0..49_990 {
            assert!(remove(&mut map, &k).is_some());
        }
        assert!(map.capacity() <= 1024 * 2, "{} of {peak}", map.capacity());
        assert_eq!(map.len(), 10);
        assert!((49_990..50_000).all(|k| map.contains_key(&k)));

        let mut small: HashMap<u64, u64> = (0..500).map(|k| (k, k)).collect();
        for k in 0..499 {
            assert_eq!(remove(&mut small, &k), Some(k));
        }
        assert!(small.capacity() >= 500, "shrunk to {}", small.capacity());
    }
}
