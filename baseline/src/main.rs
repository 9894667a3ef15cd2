//! `switchboard-baseline --listen ADDR`: the native reference server the
//! benchmarks compare Switchboard against.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::net::{TcpListener, TcpSocket};

use switchboard_baseline::{SECRET_VAR, Server};

#[derive(Parser)]
#[command(name = "switchboard-baseline", version, about)]
struct Cli {
    /// WebSocket listen address (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let secret = std::env::var(SECRET_VAR).with_context(|| {
        format!("{SECRET_VAR} is not set; the baseline verifies tokens with it")
    })?;
    let listener = listen(cli.listen).with_context(|| format!("binding {}", cli.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // The same line as `switchboard serve`, so one script can start either.
    println!("switchboard listening on ws://{addr}/ws");
    Arc::new(Server::new(secret.into_bytes()))
        .accept(listener)
        .await;
    Ok(())
}

/// A listen backlog of 4096, as Switchboard's: tokio's `bind` asks for
/// 1024, which a thousand clients connecting at once overflow.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
