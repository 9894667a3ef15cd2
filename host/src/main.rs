//! `switchboard`: a WebRTC signaling server whose room and signaling logic
//! runs as WebAssembly plugins. See ARCHITECTURE.md for the map.

use std::process::ExitCode;

use clap::Parser;
use switchboard::cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}
