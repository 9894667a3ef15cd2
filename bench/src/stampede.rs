//! `stampede`: N clients connect, authenticate and join at the same
//! moment (rooms of `room_size`): how long each waits for `room:joined`.
//! A p99 near one second is a SYN retransmit: the listen backlog filled,
//! or the accept loop fell behind.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Barrier;
use tokio::time::Instant;

use crate::client::{Connector, Errors, Joined};
use crate::stats::{self, Percentiles};
use crate::{Meter, Report};

pub struct Args {
    pub clients: usize,
    pub room_size: usize,
}

pub async fn run(
    connector: Arc<Connector>,
    args: &Args,
    pid: Option<u32>,
) -> anyhow::Result<Report> {
    let errors = Arc::new(Errors::default());
    let start = Arc::new(Barrier::new(args.clients));
    let meter = Meter::start(pid.as_slice())?;
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            let (connector, errors, start) = (
                Arc::clone(&connector),
                Arc::clone(&errors),
                Arc::clone(&start),
            );
            let room = format!("stampede-{}", i / args.room_size.max(1));
            tokio::spawn(async move {
                start.wait().await;
                let began = Instant::now();
                match connector.join(&format!("stampede-{i}"), &room).await {
                    Ok(joined) => Some((micros(began), joined)),
                    Err(e) => {
                        errors.record(&e);
                        None
                    }
                }
            })
        })
        .collect();
    let mut waited = Vec::with_capacity(args.clients);
    // Held until every client has joined, so the rooms fill as they would.
    let mut held: Vec<Joined> = Vec::with_capacity(args.clients);
    for client in clients {
        if let Some((us, joined)) = client.await? {
            waited.push(us);
            held.push(joined);
        }
    }
    let window = meter.read()?;
    drop(held);
    let joined = waited.len() as u64;
    let latency: Percentiles = stats::percentiles(waited);
    let mut json = json!({
        "bench": "stampede",
        "clients": args.clients,
        "room_size": args.room_size,
        "joined": joined,
        "time_to_joined_us": latency,
    });
    errors.add_to(&mut json);
    window.add_to(&mut json, joined);
    let human = format!(
        "stampede of {}: {joined} joined, time to joined us {}, {} errors; {}",
        args.clients,
        latency.human(),
        errors.count(),
        window.human("join", joined),
    );
    Ok(Report { json, human })
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u32::MAX as u128) as u32
}
