//! The Switchboard server as a library: `main.rs` is its command line,
//! and the micro-benchmarks reach the plugin call path through here. See
//! ARCHITECTURE.md for the map.

mod admin;
pub mod builtin;
pub mod chain;
pub mod cli;
pub mod config;
mod connection;
pub mod hub;
pub mod metrics;
pub mod outbox;
pub mod plugin;
mod rate_limit;
pub mod router;
mod server;
pub mod session;
mod swap;
mod token;

// The wire format lives in its own crate (no I/O, no wasmtime) so the fuzz
// targets build fast; re-exported so `crate::envelope::...` reads as before.
pub use switchboard_protocol::{envelope, ids, schema};
