//! `switchboard-bench relay|idle|churn`: see `switchboard_bench`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use switchboard_bench::client::Connector;
use switchboard_bench::{churn, idle, plot, relay, stampede, sys};

const SECRET_VAR: &str = "SWITCHBOARD_JWT_SECRET";

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    version,
    about = "Load generator for PROTOCOL.md servers"
)]
struct Cli {
    /// The server's WebSocket URL. `relay` takes it more than once: the
    /// nodes of a cluster, over which each room's members are spread.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8080/ws")]
    url: Vec<String>,
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
        /// Unbounded: messages each client sends before it stops (the run
        /// still ends at `--duration`). For instruction counts per message
        /// under callgrind, where the server's speed is not the point.
        #[arg(long)]
        messages: Option<u64>,
        /// The server's pid, to report its CPU time per message; once per
        /// node of a cluster, for their sum.
        #[arg(long)]
        pid: Vec<u32>,
    },
    /// N authenticated clients in rooms, idle: server RSS per connection.
    Idle {
        #[arg(long, default_value_t = 2000)]
        clients: usize,
        /// The first client's index (and so its room's).
        #[arg(long, default_value_t = 0)]
        first: usize,
        /// The server's pid (its RSS is read from /proc).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 4)]
        room_size: usize,
        /// Seconds the clients stay connected before RSS is read again.
        #[arg(long, default_value_t = 2.0)]
        hold: f64,
        /// Processes to split the clients over (this program, run again):
        /// each process may open only so many files.
        #[arg(long, default_value_t = 1)]
        procs: usize,
    },
    /// Relay latency p50/p99 against offered load, per server, as SVG: from
    /// the fixed-rate relay runs of a results file (`scripts/bench`).
    Plot {
        /// One JSON report a line, tagged with `server`.
        #[arg(long, default_value = "target/bench/results.jsonl")]
        results: PathBuf,
        #[arg(long, default_value = "target/bench/latency.svg")]
        out: PathBuf,
        #[arg(long, default_value = "Relay latency against offered load")]
        title: String,
    },
    /// One process's share of `idle --procs`: not for direct use.
    #[command(hide = true)]
    IdleWorker {
        #[arg(long)]
        first: usize,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        room_size: usize,
    },
    /// N clients connecting, authenticating and joining at the same
    /// moment: time to `room:joined` (a connect stall shows as a p99 of
    /// about a second, a SYN retransmit).
    Stampede {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 4)]
        room_size: usize,
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Connect, auth, join, leave, disconnect cycles per second.
    Churn {
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Join a room never used before each cycle, as another user,
        /// instead of the worker's one room: what the server keeps per
        /// room or per user shows as growth.
        #[arg(long)]
        fresh_rooms: bool,
        /// End each cycle by dropping the TCP connection, without leaving
        /// or a close frame: the server keeps each session for its resume
        /// grace period.
        #[arg(long)]
        abrupt: bool,
        /// Stop each worker after this many cycles (or at the duration,
        /// whichever comes first): a fixed amount of work, for counting
        /// instructions per cycle.
        #[arg(long)]
        cycles: Option<usize>,
        #[arg(long)]
        pid: Option<u32>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let url = cli.url[0].as_str();
    let report = match cli.command {
        Command::Relay {
            rooms,
            clients_per_room,
            duration,
            rate,
            window,
            messages,
            pid,
        } => {
            let args = relay::Args {
                rooms,
                clients_per_room,
                duration: seconds(duration)?,
                rate,
                window,
                messages,
            };
            let mut connectors = Vec::with_capacity(cli.url.len());
            for url in &cli.url {
                connectors.push(connect(url).await?);
            }
            relay::run(&connectors, &args, &pid).await?
        }
        Command::Idle {
            clients,
            first,
            pid,
            room_size,
            hold,
            procs,
        } => {
            let args = idle::Args {
                clients,
                first,
                room_size,
                hold: seconds(hold)?,
                procs,
            };
            idle::run(&connect(url).await?, &args, pid).await?
        }
        Command::IdleWorker {
            first,
            count,
            room_size,
        } => return idle::worker(&connect(url).await?, first, count, room_size).await,
        Command::Stampede {
            clients,
            room_size,
            pid,
        } => {
            let args = stampede::Args { clients, room_size };
            stampede::run(Arc::new(connect(url).await?), &args, pid).await?
        }
        Command::Churn {
            duration,
            concurrency,
            fresh_rooms,
            abrupt,
            cycles,
            pid,
        } => {
            let args = churn::Args {
                duration: seconds(duration)?,
                concurrency,
                fresh_rooms,
                abrupt,
                cycles,
            };
            churn::run(Arc::new(connect(url).await?), &args, pid).await?
        }
        Command::Plot {
            results,
            out,
            title,
        } => return plot(&results, &out, &title),
    };
    println!("{}", report.json);
    eprintln!("{}", report.human);
    Ok(())
}

/// A connector for the server at `url`, with every client a file away.
async fn connect(url: &str) -> anyhow::Result<Connector> {
    sys::raise_nofile()?;
    let secret = std::env::var(SECRET_VAR)
        .with_context(|| format!("{SECRET_VAR} is not set; set it to the server's secret"))?;
    Connector::new(url, secret.as_bytes()).await
}

fn plot(results: &Path, out: &Path, title: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("reading {}", results.display()))?;
    let svg = plot::svg(&plot::series(&text)?, title)?;
    std::fs::write(out, svg).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn seconds(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{s} is not a duration in seconds"))
}
