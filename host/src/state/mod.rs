//! The state every connection shares: the authoritative table of clients
//! and room membership (`hub`), with each room's plugin storage and pin,
//! and the frames its changes announce (`frames`).
//!
//! Membership changes only here, through `Hub::join`, `Hub::leave` and
//! `Hub::unregister`; nothing here blocks or awaits, and delivery only
//! enqueues on a client's outbound queue.

mod frames;
mod hub;

pub(crate) use frames::{peer_joined, peer_left};
pub(crate) use hub::{Adopted, JoinError, NodeId, Peer, Pin, Remote, Seat};
pub use hub::{ClientInfo, Hub, Identity};
