//! `churn`: C workers each repeating connect, auth, join, leave, disconnect
//! (a clean 1000 close) as fast as the server lets them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::client::{self, Connector, Errors};
use crate::stats::{self, Percentiles};
use crate::{Meter, Report};

/// Pause after a failed cycle, so a refusing server is not spun on.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

pub struct Args {
    pub duration: Duration,
    pub concurrency: usize,
    /// A new room and user each cycle.
    pub fresh_rooms: bool,
    /// Drop the connection instead of leaving and closing.
    pub abrupt: bool,
    /// Cycles per worker, when the run is a fixed amount of work.
    pub cycles: Option<usize>,
}

pub async fn run(
    connector: Arc<Connector>,
    args: &Args,
    pid: Option<u32>,
) -> anyhow::Result<Report> {
    let errors = Arc::new(Errors::default());
    let meter = Meter::start(pid.as_slice())?;
    let deadline = Instant::now() + args.duration;
    let workers: Vec<_> = (0..args.concurrency)
        .map(|w| {
            tokio::spawn(worker(
                Arc::clone(&connector),
                w,
                (args.fresh_rooms, args.abrupt),
                (deadline, args.cycles.unwrap_or(usize::MAX)),
                Arc::clone(&errors),
            ))
        })
        .collect();
    let mut cycle_us = Vec::new();
    for worker in workers {
        cycle_us.extend(worker.await.unwrap_or_default());
    }
    let window = meter.read()?;
    let cycles = cycle_us.len() as u64;
    let rate = cycles as f64 / window.wall.as_secs_f64();
    let latency: Percentiles = stats::percentiles(cycle_us);
    let mut json = json!({
        "bench": "churn",
        "concurrency": args.concurrency,
        "fresh_rooms": args.fresh_rooms,
        "abrupt": args.abrupt,
        "cycles": cycles,
        "cycles_per_sec": rate.round(),
        "cycle_us": latency,
    });
    errors.add_to(&mut json);
    window.add_to(&mut json, cycles);
    let human = format!(
        "churn x{}{}{}: {:.0} cycles/s, cycle us {}, {} errors; {}",
        args.concurrency,
        if args.fresh_rooms {
            ", fresh rooms"
        } else {
            ""
        },
        if args.abrupt { ", abrupt" } else { "" },
        rate,
        latency.human(),
        errors.count(),
        window.human("cycle", cycles),
    );
    Ok(Report { json, human })
}

/// Cycles until the deadline or the limit; the duration of each completed cycle in us.
async fn worker(
    connector: Arc<Connector>,
    w: usize,
    (fresh_rooms, abrupt): (bool, bool),
    (deadline, limit): (Instant, usize),
    errors: Arc<Errors>,
) -> Vec<u32> {
    let mut cycles = Vec::new();
    while cycles.len() < limit && Instant::now() < deadline {
        let n = if fresh_rooms { cycles.len() } else { 0 };
        let (user, room) = (format!("churn-{w}-{n}"), format!("bench-churn-{w}-{n}"));
        let began = Instant::now();
        match cycle(&connector, &user, &room, abrupt).await {
            Ok(()) => cycles.push(began.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Err(e) => {
                errors.record(&e);
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    cycles
}

async fn cycle(connector: &Connector, user: &str, room: &str, abrupt: bool) -> anyhow::Result<()> {
    let mut joined = connector.join(user, room).await?;
    if abrupt {
        drop(joined.ws);
        return Ok(());
    }
    client::send(
        &mut joined.ws,
        &json!({ "event": "room:leave", "data": {} }),
    )
    .await?;
    client::expect(&mut joined.ws, "room:left").await?;
    client::close(joined.ws).await
}
