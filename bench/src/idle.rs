//! `idle`: N authenticated clients in rooms of 4, doing nothing but
//! answering heartbeats; the server's RSS before and after, per connection.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{self, Connector, Errors, Ws};
use crate::{Meter, Report, sys};

/// Clients connecting at once.
const CONNECT_PARALLELISM: usize = 64;

pub struct Args {
    pub clients: usize,
    pub room_size: usize,
    /// How long the clients stay connected before RSS is read again.
    pub hold: Duration,
}

pub async fn run(connector: &Connector, args: &Args, pid: u32) -> anyhow::Result<Report> {
    let rss_before = sys::process_rss(pid)?;
    let meter = Meter::start(Some(pid))?;
    let errors = Errors::default();
    let (stop, stopped) = watch::channel(false);
    let holders: Vec<JoinHandle<Option<Ws>>> = stream::iter(0..args.clients)
        .map(|i| connect(connector, i, args.room_size.max(1), stopped.clone()))
        .buffer_unordered(CONNECT_PARALLELISM)
        .filter_map(|r| async { r.map_err(|e| errors.record(&e)).ok() })
        .collect()
        .await;
    let connected = holders.len() as u64;
    tokio::time::sleep(args.hold).await;
    let rss_after = sys::process_rss(pid)?;
    let window = meter.read()?;
    let _ = stop.send(true);
    let mut open = Vec::new();
    for holder in holders {
        open.extend(holder.await.ok().flatten());
    }
    let dropped = connected - open.len() as u64;
    stream::iter(open)
        .for_each_concurrent(CONNECT_PARALLELISM * 4, |ws| async {
            let _ = client::close(ws).await;
        })
        .await;

    let per_connection = rss_after.saturating_sub(rss_before) as f64 / connected.max(1) as f64;
    let mut json = json!({
        "bench": "idle",
        "clients": args.clients,
        "connected": connected,
        "dropped_while_idle": dropped,
        "room_size": args.room_size,
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "bytes_per_connection": per_connection.round(),
        "errors": errors.count(),
        "first_error": errors.first(),
    });
    window.add_to(&mut json, connected);
    let human = format!(
        "idle {connected}/{} clients: server RSS {:.1} -> {:.1} MiB, {:.0} bytes/connection, {dropped} dropped, {} errors; {}",
        args.clients,
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        per_connection,
        errors.count(),
        window.human("conn", connected),
    );
    Ok(Report { json, human })
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
