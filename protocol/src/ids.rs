//! Validated identifiers: defined once in `switchboard-vocab`, which the
//! guest SDK shares; re-exported here so the wire format reads as one
//! crate.

pub use switchboard_vocab::ids::{ClientId, CorrelationId, EventName, RoomId, char_len};
