//! The Switchboard server as a library: `main.rs` is its command line, and
//! the micro-benchmarks drive an [`App`]'s router without sockets. See
//! ARCHITECTURE.md for the map; the folders are its layers:
//!
//! - `net`: sockets, connection tasks, outbound queues, rate limits;
//! - `session`: client ids, resume tokens, suspended sessions;
//! - `router`: the order of checks and what each event does;
//! - `state`: the membership table and the frames it announces;
//! - `plugins`: the chain, hot swap, the built-ins and the wasmtime facade;
//! - `record`: recording rooms' plugin calls, and replaying them;
//! - `admin`: the operator's HTTP API.
//!
//! Everything is crate-private but what the benchmarks and the binary use.

mod admin;
mod app;
pub mod cli;
mod cluster;
pub mod config;
mod memory;
mod metrics;
mod net;
mod plugins;
mod record;
mod router;
mod scaffold;
mod session;
mod state;
mod token;

// The wire format and the shared vocabulary live in their own crates (no
// I/O, no wasmtime), which the fuzz target and the guest SDK build fast.
pub(crate) use switchboard_protocol::{envelope, ids, schema};
pub(crate) use switchboard_vocab as vocab;

pub use app::App;
pub use net::{Inbox, Outbound, Outbox, QueueLimits, queue};
pub use plugins::{
    CompileCache, Loader, Plugin, PluginSource, Registry, Relay, SwapError, builtin,
    default_cache_dir,
};
pub use router::{Conn, Router, Verdict};
pub use session::ClientIds;
pub use state::{ClientInfo, Hub, Identity};
