//! Test support for Switchboard's end-to-end tests.
//!
//! The tests in `tests/tests/e2e/` run the real `switchboard` binary with real
//! plugins and talk to it over real sockets, one server per test (port 0),
//! so they are independent and run in parallel. This crate only holds the
//! harness they share:
//!
//! - [`Server`] starts `switchboard serve` with a TOML config (and, through
//!   [`Server::builder`], extra flags and environment) and kills it on drop
//!   (printing its log if the test failed);
//! - [`Client`] is a WebSocket client whose every receive has a timeout and
//!   whose `expect_*` methods check the wire shape of PROTOCOL.md;
//! - [`chains`] builds plugin chains for configs;
//! - [`token`] mints the JSON Web Tokens the default auth policy accepts,
//!   and the broken ones it must refuse;
//! - [`http`] sends raw HTTP/1.1 requests for the transport rules that a
//!   WebSocket client cannot express;
//! - [`raw`] writes WebSocket frames by hand on a `TcpStream`, for the
//!   hostile input a client library refuses to send;
//! - [`admin`] is an HTTP/1.1 client for the admin listener (hot swap,
//!   rooms, kicks, metrics), and [`metrics`] a strict reader of the
//!   Prometheus text `/metrics` answers;
//! - [`max_rooms`] runs the `limits.max_rooms` scenario on one server or
//!   across a cluster's nodes;
//! - [`soak`] keeps the books of a soak's relays and checks that each
//!   arrived at most once, in order, and exactly once where it must;
//! - [`swap_load`] runs hot swaps under load, on one server or a cluster,
//!   and checks that nothing was dropped, duplicated or stamped by a
//!   version that was not live.

pub mod admin;
pub mod chains;
pub mod client;
pub mod http;
pub mod max_rooms;
pub mod metrics;
pub mod raw;
pub mod server;
pub mod soak;
pub mod swap_load;
pub mod token;

pub use admin::Admin;
pub use client::{Client, Incoming, RECV_TIMEOUT};
pub use metrics::Metrics;
pub use raw::RawWs;
pub use server::{Server, ServerBuilder};
