//! Sessions: who a connection is, and what survives it. A session is a
//! client id with its outbound queue and its resume token; it outlives an
//! unexpected disconnect for the grace period (PROTOCOL.md, Session resume).
//!
//! This layer knows nothing of sockets or plugins: the connection task
//! (`net`) opens, releases and claims sessions; the router only reads who
//! a connection is.

mod ids;
mod table;

pub use ids::ClientIds;
pub(crate) use table::{Claim, Released, ResumeToken, Sessions, Suspension};
