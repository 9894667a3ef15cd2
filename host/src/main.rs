//! `switchboard`: a WebRTC signaling server whose room and signaling logic
//! runs as WebAssembly plugins. See ARCHITECTURE.md for the map.

mod admin;
mod builtin;
mod chain;
mod cli;
mod config;
mod connection;
mod envelope;
mod hub;
mod ids;
mod metrics;
mod outbox;
mod plugin;
mod rate_limit;
mod router;
mod schema;
mod server;
mod swap;
mod token;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}
