//! The network: the HTTP listener and the upgrade to WebSocket (`server`),
//! one task per connection that owns its socket (`connection`, writing
//! through `write`), the bounded outbound queue each connection drains
//! (`outbox`), the per-connection token bucket (`rate_limit`), reads that
//! take a client's burst at once (`read_ahead`), the flags a connection's
//! task watches on every wake (`signal`), and the opt-in demo call page
//! (`demo`).
//!
//! Nothing here knows what a message means: text goes to the router, and
//! what comes back is queued frames and a verdict. Only this layer sees
//! tungstenite or hyper's upgrade.

mod connection;
mod demo;
mod outbox;
mod rate_limit;
mod read_ahead;
mod server;
mod signal;
mod write;

pub(crate) use connection::{Context, Settings};
pub(crate) use demo::Demo;
pub(crate) use outbox::Overflow;
pub use outbox::{Inbox, Outbound, Outbox, QueueLimits, queue};
pub(crate) use rate_limit::{Admit, RateLimit};
pub(crate) use server::{Server, listen, ws_config};
pub(crate) use signal::Signal;
