//! A recording: the plugin calls of chosen rooms, each with what the
//! plugin was asked (its [`Input`]), what it could see ([`View`]) and what
//! it decided ([`Decision`]), so that another version can be asked the same
//! and the answers compared.
//!
//! The file is JSON Lines: a [`Header`] first, then one [`Call`] per plugin
//! call in the order the server made them (one room's calls in that room's
//! order), then an [`End`] once the recording was stopped. Each is one
//! externally tagged object: `{"header": {...}}`, `{"call": {...}}`,
//! `{"end": {...}}`.
//!
//! The server (`switchboard`) writes it; `switchboard replay` and the guest
//! SDK's `testing::replay` read it with [`Recording::read`] and compare
//! with [`compare`], so the two replays cannot drift apart.

mod decision;
mod format;
mod replay;

pub use decision::{Decision, Ruling, Step};
pub use format::{
    Call, Client, End, Entry, Header, Input, Line, Member, ReadError, Recording, RoomView, View,
};
pub use replay::{Difference, Report, compare};

/// The format this crate writes and reads; a file of another is refused.
pub const FORMAT_VERSION: u32 = 1;

/// What stands in a recording for a credential: an `auth:request` token.
/// A call whose input holds it cannot be replayed as it was made.
pub const REDACTED: &str = "[redacted]";
