//! Test support for Switchboard's end-to-end tests.
//!
//! The tests in `tests/tests/` run the real `switchboard` binary with real
//! plugins and talk to it over real sockets, one server per test (port 0),
//! so they are independent and run in parallel. This crate only holds the
//! harness they share:
//!
//! - [`Server`] starts `switchboard serve` with a TOML config and kills it on
//!   drop (printing its log if the test failed);
//! - [`Client`] is a WebSocket client whose every receive has a timeout and
//!   whose `expect_*` methods check the wire shape of PROTOCOL.md;
//! - [`token`] mints the JSON Web Tokens the default auth policy accepts,
//!   and the broken ones it must refuse;
//! - [`http`] sends raw HTTP/1.1 requests for the transport rules that a
//!   WebSocket client cannot express.

pub mod client;
pub mod http;
pub mod server;
pub mod token;

pub use client::{Client, RECV_TIMEOUT};
pub use server::Server;
