//! `switchboard-bench relay|idle|churn`: see `switchboard_bench`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use switchboard_bench::client::Connector;
use switchboard_bench::{churn, idle, relay, sys};

const SECRET_VAR: &str = "SWITCHBOARD_JWT_SECRET";

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    version,
    about = "Load generator for PROTOCOL.md servers"
)]
struct Cli {
    /// The server's WebSocket URL.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rooms of clients relaying `ice:candidate` to each other: msgs/s and latency.
    Relay {
        #[arg(long, default_value_t = 50)]
        rooms: usize,
        #[arg(long, default_value_t = 4)]
        clients_per_room: usize,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Messages per second per client; without it, unbounded (windowed).
        #[arg(long)]
        rate: Option<f64>,
        /// Messages in flight per client when unbounded.
        #[arg(long, default_value_t = 32)]
        window: u64,
        /// The server's pid, to report its CPU time per message.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// N authenticated clients in rooms, idle: server RSS per connection.
    Idle {
        #[arg(long, default_value_t = 2000)]
        clients: usize,
        /// The server's pid (its RSS is read from /proc).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 4)]
        room_size: usize,
        /// Seconds the clients stay connected before RSS is read again.
        #[arg(long, default_value_t = 2.0)]
        hold: f64,
    },
    /// Connect, auth, join, leave, disconnect cycles per second.
    Churn {
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long)]
        pid: Option<u32>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sys::raise_nofile()?;
    let secret = std::env::var(SECRET_VAR)
        .with_context(|| format!("{SECRET_VAR} is not set; set it to the server's secret"))?;
    let connector = Arc::new(Connector::new(&cli.url, secret.as_bytes()).await?);
    let report = match cli.command {
        Command::Relay {
            rooms,
            clients_per_room,
            duration,
            rate,
            window,
            pid,
        } => {
            let args = relay::Args {
                rooms,
                clients_per_room,
                duration: seconds(duration)?,
                rate,
                window,
            };
            relay::run(&connector, &args, pid).await?
        }
        Command::Idle {
            clients,
            pid,
            room_size,
            hold,
        } => {
            let args = idle::Args {
                clients,
                room_size,
                hold: seconds(hold)?,
            };
            idle::run(&connector, &args, pid).await?
        }
        Command::Churn {
            duration,
            concurrency,
            pid,
        } => {
            let args = churn::Args {
                duration: seconds(duration)?,
                concurrency,
            };
            churn::run(connector, &args, pid).await?
        }
    };
    println!("{}", report.json);
    eprintln!("{}", report.human);
    Ok(())
}

fn seconds(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{s} is not a duration in seconds"))
}
