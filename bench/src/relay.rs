//! `relay`: R rooms of K clients sending `ice:candidate` to each other.
//! Each candidate string carries the sender's index and its send time on
//! CLOCK_MONOTONIC, so the receiver measures delivery latency and credits
//! the sender's window without any extra round trip.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{self, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Connector, Errors, Joined, Ws};
use crate::stats::{self, Percentiles};
use crate::{Meter, Report};

/// Rooms set up at once.
const SETUP_PARALLELISM: usize = 32;
/// How long receivers wait after the senders stop for what is in flight.
const DRAIN: Duration = Duration::from_secs(2);
const MARK: &str = "bench=";

pub struct Args {
    pub rooms: usize,
    pub clients_per_room: usize,
    pub duration: Duration,
    /// Messages per second per client; `None` sends as fast as `window`
    /// allows (unbounded, windowed).
    pub rate: Option<f64>,
    /// Messages a client may have in flight in unbounded mode.
    pub window: u64,
    /// Unbounded mode: each client stops after sending this many, or at
    /// the end of `duration`, whichever comes first. A fixed count makes
    /// runs under an instruction counter (callgrind) comparable between
    /// servers, whatever their speed.
    pub messages: Option<u64>,
}

/// One sender's window: how many it sent, how many arrived.
#[derive(Default)]
struct Flow {
    sent: AtomicU64,
    delivered: AtomicU64,
    arrived: Notify,
}

struct Shared {
    flows: Vec<Flow>,
    errors: Errors,
    /// `error` replies by code: a server refusing the load (e.g. a rate
    /// limit) must show as such, not as latency.
    server_errors: Mutex<BTreeMap<String, u64>>,
}

struct Received {
    latencies_us: Vec<u32>,
    in_window: u64,
}

/// Runs the load against the servers behind `connectors`: member `m` of
/// every room connects through `connectors[m % len]`, so with two nodes of
/// a cluster each room is split over both. `pids` are the servers'.
pub async fn run(connectors: &[Connector], args: &Args, pids: &[u32]) -> anyhow::Result<Report> {
    anyhow::ensure!(!connectors.is_empty(), "no server to connect to");
    let errors = Errors::default();
    let rooms = set_up(connectors, args, &errors).await;
    let clients: usize = rooms.iter().map(Vec::len).sum();
    anyhow::ensure!(clients > 0, "no room could be set up: {:?}", errors.first());
    let shared = Arc::new(Shared {
        flows: (0..clients).map(|_| Flow::default()).collect(),
        errors,
        server_errors: Mutex::default(),
    });

    let meter = Meter::start(pids)?;
    let deadline = Instant::now() + args.duration;
    let (stop, stopped) = watch::channel(false);
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let mut index = 0;
    for room in rooms {
        let ids: Vec<String> = room.iter().map(|j| j.client_id.clone()).collect();
        for joined in room {
            let (sink, stream) = joined.ws.split();
            let targets = targets(&ids, &joined.client_id, index);
            let pace = pace(args, index, clients);
            let shared_s = Arc::clone(&shared);
            senders.push(tokio::spawn(send(
                sink, index, targets, pace, deadline, shared_s,
            )));
            let shared_r = Arc::clone(&shared);
            receivers.push(tokio::spawn(receive(
                stream,
                deadline,
                stopped.clone(),
                shared_r,
            )));
            index += 1;
        }
    }
    let mut sinks = Vec::new();
    for sender in senders {
        sinks.extend(sender.await.ok().flatten());
    }
    let window = meter.read()?;
    drain(&shared, deadline).await;
    let _ = stop.send(true);

    let mut latencies = Vec::new();
    let mut in_window = 0;
    let mut streams = Vec::new();
    for receiver in receivers {
        if let Ok((stream, received)) = receiver.await {
            latencies.extend(received.latencies_us);
            in_window += received.in_window;
            streams.extend(stream);
        }
    }
    close_all(sinks, streams).await;
    Ok(report(
        args,
        connectors.len(),
        clients,
        &shared,
        window,
        in_window,
        latencies,
    ))
}

/// Connects every room, in parallel across rooms; a room where any client
/// fails is left out and the failure counted.
async fn set_up(connectors: &[Connector], args: &Args, errors: &Errors) -> Vec<Vec<Joined>> {
    let results: Vec<_> = stream::iter(0..args.rooms)
        .map(|room| set_up_room(connectors, room, args.clients_per_room))
        .buffer_unordered(SETUP_PARALLELISM)
        .collect()
        .await;
    results
        .into_iter()
        .filter_map(|r| r.map_err(|e| errors.record(&e)).ok())
        .collect()
}

async fn set_up_room(
    connectors: &[Connector],
    room: usize,
    size: usize,
) -> anyhow::Result<Vec<Joined>> {
    let name = format!("bench-relay-{room}");
    let mut members = Vec::with_capacity(size);
    for member in 0..size {
        members.push(
            connectors[member % connectors.len()]
                .join(&format!("relay-{room}-{member}"), &name)
                .await?,
        );
    }
    Ok(members)
}

/// The message prefix for each other member, up to where the timestamp
/// goes: the JSON is written once here, not per message.
fn targets(ids: &[String], me: &str, index: usize) -> Vec<String> {
    ids.iter()
        .filter(|id| *id != me)
        .map(|id| {
            format!(
                r#"{{"event":"ice:candidate","data":{{"to":{},"candidate":{{"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0 {MARK}{index}:"#,
                json!(id)
            )
        })
        .collect()
}

fn message(prefix: &str) -> Message {
    Message::text(format!(r#"{prefix}{}"}}}}}}"#, crate::sys::monotonic_ns()))
}

enum Pace {
    /// Messages in flight, and how many to send in all.
    Windowed { window: u64, messages: Option<u64> },
    /// Period, and the first send's offset so clients do not tick together.
    Rate(Duration, Duration),
}

fn pace(args: &Args, index: usize, clients: usize) -> Pace {
    match args.rate {
        None => Pace::Windowed {
            window: args.window.max(1),
            messages: args.messages,
        },
        Some(rate) => {
            let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
            Pace::Rate(period, period.mul_f64(index as f64 / clients as f64))
        }
    }
}

type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

/// Sends until the deadline; returns the sink for a clean close, or `None`
/// after a network error (counted).
async fn send(
    mut sink: Sink,
    me: usize,
    targets: Vec<String>,
    pace: Pace,
    deadline: Instant,
    shared: Arc<Shared>,
) -> Option<Sink> {
    if targets.is_empty() {
        return Some(sink);
    }
    let result = match pace {
        Pace::Windowed { window, messages } => {
            let until = Until { messages, deadline };
            send_windowed(&mut sink, me, &targets, window, until, &shared).await
        }
        Pace::Rate(period, offset) => {
            send_paced(&mut sink, me, &targets, period, offset, deadline, &shared).await
        }
    };
    match result {
        Ok(()) => Some(sink),
        Err(e) => {
            shared.errors.record(&e.context("sending candidates"));
            None
        }
    }
}

/// When a windowed sender stops: at the deadline, or once it has sent
/// `messages`.
struct Until {
    messages: Option<u64>,
    deadline: Instant,
}

/// Keeps `window` messages in flight: fills it, flushes once, and waits
/// for deliveries to open it again.
async fn send_windowed(
    sink: &mut Sink,
    me: usize,
    targets: &[String],
    window: u64,
    until: Until,
    shared: &Shared,
) -> anyhow::Result<()> {
    let flow = &shared.flows[me];
    let mut turn = 0;
    while Instant::now() < until.deadline {
        let sent = flow.sent.load(Ordering::Relaxed);
        let left = until.messages.map_or(u64::MAX, |n| n.saturating_sub(sent));
        if left == 0 {
            break;
        }
        let in_flight = sent - flow.delivered.load(Ordering::Relaxed);
        if in_flight >= window {
            tokio::select! {
                _ = flow.arrived.notified() => {}
                _ = tokio::time::sleep_until(until.deadline) => {}
            }
            continue;
        }
        for _ in 0..(window - in_flight).min(left) {
            sink.feed(message(&targets[turn % targets.len()])).await?;
            flow.sent.fetch_add(1, Ordering::Relaxed);
            turn += 1;
        }
        sink.flush().await?;
    }
    Ok(())
}

/// One message per tick, at a fixed offered rate whatever the latency.
async fn send_paced(
    sink: &mut Sink,
    me: usize,
    targets: &[String],
    period: Duration,
    offset: Duration,
    deadline: Instant,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut turn = 0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
        }
        sink.send(message(&targets[turn % targets.len()])).await?;
        shared.flows[me].sent.fetch_add(1, Ordering::Relaxed);
        turn += 1;
    }
}

/// Records every candidate's latency until told to stop; counts towards
/// throughput only what arrived before the deadline.
async fn receive(
    mut stream: Stream,
    deadline: Instant,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
) -> (Option<Stream>, Received) {
    let mut received = Received {
        latencies_us: Vec::new(),
        in_window: 0,
    };
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = stop.wait_for(|stopped| *stopped) => return (Some(stream), received),
        };
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                shared
                    .errors
                    .record(&anyhow::Error::from(e).context("receiving candidates"));
                return (None, received);
            }
            None => {
                shared
                    .errors
                    .record(&anyhow::anyhow!("server closed a relay client"));
                return (None, received);
            }
        };
        let Some((sender, sent_ns)) = parse_mark(&text) else {
            count_server_error(&text, &shared);
            continue;
        };
        let latency_ns = crate::sys::monotonic_ns().saturating_sub(sent_ns);
        received
            .latencies_us
            .push((latency_ns / 1000).min(u32::MAX as u64) as u32);
        if Instant::now() < deadline {
            received.in_window += 1;
        }
        if let Some(flow) = shared.flows.get(sender) {
            flow.delivered.fetch_add(1, Ordering::Relaxed);
            flow.arrived.notify_one();
        }
    }
}

fn count_server_error(text: &str, shared: &Shared) {
    let Ok(message) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if message["event"] == "error" {
        let code = message["data"]["code"].as_str().unwrap_or("?").to_owned();
        let mut counts = shared
            .server_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *counts.entry(code).or_default() += 1;
    }
}

/// The sender index and send time a candidate carries.
fn parse_mark(text: &str) -> Option<(usize, u64)> {
    let (_, mark) = text.split_once(MARK)?;
    let (sender, rest) = mark.split_once(':')?;
    let sent = &rest[..rest.find('"')?];
    Some((sender.parse().ok()?, sent.parse().ok()?))
}

/// Waits until everything sent has arrived, or `DRAIN` after the deadline.
async fn drain(shared: &Shared, deadline: Instant) {
    let give_up = deadline.max(Instant::now()) + DRAIN;
    while Instant::now() < give_up && outstanding(shared) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn outstanding(shared: &Shared) -> u64 {
    shared
        .flows
        .iter()
        .map(|f| {
            f.sent
                .load(Ordering::Relaxed)
                .saturating_sub(f.delivered.load(Ordering::Relaxed))
        })
        .sum()
}

async fn close_all(sinks: Vec<Sink>, streams: Vec<Stream>) {
    // Halves are reunited by matching pairs; a half lost to an error
    // leaves its partner to be dropped, which closes the socket anyway.
    let mut pairs = Vec::new();
    let mut streams = streams;
    for sink in sinks {
        if let Some(at) = streams.iter().position(|s| s.is_pair_of(&sink)) {
            pairs.push(streams.swap_remove(at).reunite(sink));
        }
    }
    stream::iter(pairs.into_iter().flatten())
        .for_each_concurrent(SETUP_PARALLELISM * 8, |ws| async {
            let _ = client::close(ws).await;
        })
        .await;
}

fn report(
    args: &Args,
    servers: usize,
    clients: usize,
    shared: &Shared,
    window: crate::Measured,
    in_window: u64,
    latencies: Vec<u32>,
) -> Report {
    let sent: u64 = shared
        .flows
        .iter()
        .map(|f| f.sent.load(Ordering::Relaxed))
        .sum();
    let delivered = latencies.len() as u64;
    let rate = in_window as f64 / window.wall.as_secs_f64();
    let latency: Percentiles = stats::percentiles(latencies);
    let mode = args.rate.map_or(format!("windowed {}", args.window), |r| {
        format!("{r}/s per client")
    });
    let mut json = json!({
        "bench": "relay",
        "rooms": args.rooms,
        "clients_per_room": args.clients_per_room,
        "clients": clients,
        "servers": servers,
        "mode": mode,
        "msgs_per_sec": rate.round(),
        "sent": sent,
        "delivered": delivered,
        "undelivered": sent.saturating_sub(delivered),
        "latency_us": latency,
        "server_errors": *shared.server_errors.lock().unwrap_or_else(|e| e.into_inner()),
    });
    shared.errors.add_to(&mut json);
    if let Some(rate) = args.rate {
        json["offered_msgs_per_sec"] = json!((rate * clients as f64).round());
    }
    window.add_to(&mut json, in_window);
    let human = format!(
        "relay {}x{} ({mode}): {:.0} msgs/s, latency us p50 {} p90 {} p99 {} max {}, {} undelivered, {} errors; {}",
        args.rooms,
        args.clients_per_room,
        rate,
        latency.p50,
        latency.p90,
        latency.p99,
        latency.max,
        sent.saturating_sub(delivered),
        shared.errors.count(),
        window.human("msg", in_window),
    );
    Report { json, human }
}
