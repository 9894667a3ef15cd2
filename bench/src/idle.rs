//! `idle`: N authenticated clients in rooms of 4, doing nothing but
//! answering heartbeats; the server's RSS before and after, per connection.
//!
//! One process may open only so many files (20,000 here), so with
//! `--procs P` the clients are split over P copies of this program
//! (`idle-worker`), each connecting its share and holding it until this one
//! has read the server's RSS.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{self, Connector, Errors, Ws};
use crate::{Meter, Report, sys};

/// Clients connecting at once, per process.
const CONNECT_PARALLELISM: usize = 64;

pub struct Args {
    pub clients: usize,
    /// The first client's index: runs against several servers at once
    /// take disjoint ranges, so their clients and rooms are distinct.
    pub first: usize,
    pub room_size: usize,
    /// How long the clients stay connected before RSS is read again.
    pub hold: Duration,
    /// Processes the clients are split over.
    pub procs: usize,
}

/// What a group of clients reports once connected, and once released.
#[derive(Serialize, Deserialize)]
struct Connected {
    connected: u64,
    errors: u64,
    first_error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Released {
    dropped: u64,
}

pub async fn run(connector: &Connector, args: &Args, pid: u32) -> anyhow::Result<Report> {
    let rss_before = sys::process_rss(pid)?;
    let meter = Meter::start(&[pid])?;
    let room_size = args.room_size.max(1);
    let procs = args.procs.clamp(1, args.clients.max(1));
    let mut groups = Vec::with_capacity(procs);
    let mut first = args.first;
    for p in 0..procs {
        let count = args.clients / procs + usize::from(p < args.clients % procs);
        groups.push(if procs == 1 {
            Group::Local(Held::connect(connector, first, count, room_size).await)
        } else {
            Group::Worker(Box::new(Worker::spawn(
                connector.url(),
                first,
                count,
                room_size,
            )?))
        });
        first += count;
    }
    let mut connected = Connected {
        connected: 0,
        errors: 0,
        first_error: None,
    };
    for group in &mut groups {
        let c = group.connected().await?;
        connected.connected += c.connected;
        connected.errors += c.errors;
        connected.first_error = connected.first_error.or(c.first_error);
    }
    tokio::time::sleep(args.hold).await;
    let rss_after = sys::process_rss(pid)?;
    let window = meter.read()?;
    let mut dropped = 0;
    for group in groups {
        dropped += group.release().await?;
    }

    let per_connection =
        rss_after.saturating_sub(rss_before) as f64 / connected.connected.max(1) as f64;
    let mut json = json!({
        "bench": "idle",
        "clients": args.clients,
        "procs": procs,
        "connected": connected.connected,
        "dropped_while_idle": dropped,
        "room_size": room_size,
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "bytes_per_connection": per_connection.round(),
        "errors": connected.errors,
        "first_error": connected.first_error,
    });
    window.add_to(&mut json, connected.connected);
    let human = format!(
        "idle {}/{} clients in {procs} process(es): server RSS {:.1} -> {:.1} MiB, {:.0} bytes/connection, {dropped} dropped, {} errors; {}",
        connected.connected,
        args.clients,
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        per_connection,
        connected.errors,
        window.human("conn", connected.connected),
    );
    Ok(Report { json, human })
}

/// `idle-worker`: connects clients `first..first + count`, prints a
/// [`Connected`] line, holds them until its stdin closes, then closes them
/// and prints a [`Released`] line.
pub async fn worker(
    connector: &Connector,
    first: usize,
    count: usize,
    room_size: usize,
) -> anyhow::Result<()> {
    let held = Held::connect(connector, first, count, room_size.max(1)).await;
    println!("{}", serde_json::to_string(&held.report())?);
    let mut rest = Vec::new();
    tokio::io::stdin().read_to_end(&mut rest).await?;
    let released = Released {
        dropped: held.release().await,
    };
    println!("{}", serde_json::to_string(&released)?);
    Ok(())
}

enum Group {
    Local(Held),
    Worker(Box<Worker>),
}

impl Group {
    async fn connected(&mut self) -> anyhow::Result<Connected> {
        match self {
            Group::Local(held) => Ok(held.report()),
            Group::Worker(worker) => worker.line().await,
        }
    }

    /// Closes the clients; how many the server had dropped meanwhile.
    async fn release(self) -> anyhow::Result<u64> {
        match self {
            Group::Local(held) => Ok(held.release().await),
            Group::Worker(mut worker) => {
                // Closing its stdin is the signal to let go.
                drop(worker.child.stdin.take());
                let released: Released = worker.line().await?;
                worker.child.wait().await?;
                Ok(released.dropped)
            }
        }
    }
}

/// Another process of this program running `idle-worker`.
struct Worker {
    child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn spawn(url: &str, first: usize, count: usize, room_size: usize) -> anyhow::Result<Worker> {
        let exe = std::env::current_exe().context("finding this program to run workers")?;
        let mut child = Command::new(exe)
            .args(["--url", url, "idle-worker"])
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--room-size", &room_size.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting an idle worker")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        Ok(Worker {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    async fn line<T: for<'de> Deserialize<'de>>(&mut self) -> anyhow::Result<T> {
        match self.lines.next_line().await? {
            Some(line) => {
                serde_json::from_str(&line).with_context(|| format!("worker said {line:?}"))
            }
            None => bail!("an idle worker ended early (its errors are above)"),
        }
    }
}

/// Clients connected in this process, each with a task reading its socket.
struct Held {
    holders: Vec<JoinHandle<Option<Ws>>>,
    stop: watch::Sender<bool>,
    errors: Errors,
}

impl Held {
    async fn connect(connector: &Connector, first: usize, count: usize, room_size: usize) -> Held {
        let errors = Errors::default();
        let (stop, stopped) = watch::channel(false);
        let holders = stream::iter(first..first + count)
            .map(|i| connect(connector, i, room_size, stopped.clone()))
            .buffer_unordered(CONNECT_PARALLELISM)
            .filter_map(|r| async { r.map_err(|e| errors.record(&e)).ok() })
            .collect()
            .await;
        Held {
            holders,
            stop,
            errors,
        }
    }

    fn report(&self) -> Connected {
        Connected {
            connected: self.holders.len() as u64,
            errors: self.errors.count(),
            first_error: self.errors.first(),
        }
    }

    /// Closes every client; returns how many the server had dropped.
    async fn release(self) -> u64 {
        let _ = self.stop.send(true);
        let connected = self.holders.len() as u64;
        let mut open = Vec::new();
        for holder in self.holders {
            open.extend(holder.await.ok().flatten());
        }
        let dropped = connected - open.len() as u64;
        stream::iter(open)
            .for_each_concurrent(CONNECT_PARALLELISM * 4, |ws| async {
                let _ = client::close(ws).await;
            })
            .await;
        dropped
    }
}

/// Connects client `i` into room `i / room_size` and leaves a task reading
/// its socket (tungstenite answers the server's pings while reading).
async fn connect(
    connector: &Connector,
    i: usize,
    room_size: usize,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<Option<Ws>>> {
    let joined = connector
        .join(
            &format!("idle-{i}"),
            &format!("bench-idle-{}", i / room_size),
        )
        .await?;
    Ok(tokio::spawn(hold(joined.ws, stop)))
}

/// Reads until told to stop; `None` if the server closed the connection.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>) -> Option<Ws> {
    loop {
        tokio::select! {
            next = ws.next() => if !matches!(next, Some(Ok(_))) { return None },
            _ = stop.wait_for(|stopped| *stopped) => return Some(ws),
        }
    }
}
