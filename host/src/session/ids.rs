//! Allocating client ids.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ids::ClientId;

/// Hands out the ids of new connections.
///
/// Ids come from a counter passed through a bijection keyed at start-up, so
/// they never repeat within a process yet do not reveal how many clients
/// came before.
pub struct ClientIds {
    next: AtomicU64,
    key: u64,
}

impl Default for ClientIds {
    fn default() -> ClientIds {
        ClientIds::new()
    }
}

impl ClientIds {
    pub fn new() -> ClientIds {
        ClientIds {
            next: AtomicU64::new(rand::random()),
            key: rand::random(),
        }
    }

    pub fn next(&self) -> ClientId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Multiplying by an odd constant is a bijection on u64.
        ClientId::from_u64(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_round_trip_through_their_text() {
        let ids = ClientIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(ClientId::parse(&a.to_string()), Some(a));
    }
}
