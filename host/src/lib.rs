//! The Switchboard server as a library: `main.rs` is its command line,
//! and the fuzz targets and micro-benchmarks reach the parts they
//! exercise (envelope parsing, the plugin call path) through here. See
//! ARCHITECTURE.md for the map.

mod admin;
pub mod builtin;
pub mod chain;
pub mod cli;
pub mod config;
mod connection;
pub mod envelope;
pub mod hub;
pub mod ids;
pub mod metrics;
pub mod outbox;
pub mod plugin;
mod rate_limit;
pub mod router;
pub mod schema;
mod server;
mod swap;
mod token;
