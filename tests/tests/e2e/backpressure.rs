//! Bounded outbound queues: a client that stops reading is disconnected
//! when its queue is full, nobody else waits for it, and the server's
//! memory stays bounded.

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::{Client, Server};

/// A queue of 1 MiB: 64 of the 16 KiB offers below, but room for the
/// sender's ~2000 small `PEER_NOT_FOUND` errors once the sleeper is gone;
/// and a rate limit high enough not to be what stops the senders.
const CONFIG: &str = r#"
[limits]
outbound_max_messages = 4096
outbound_max_bytes = 1048576
rate_per_sec = 100000
rate_burst = 100000
"#;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_the_others_get_everything() {
    let server = Server::start(CONFIG).await;
    let mut sender = Client::joined(&server, "sender", "stuck").await;
    let sleeper = Client::joined(&server, "sleeper", "stuck").await;
    sender.expect_event("room:peer-joined").await;
    let mut a = Client::joined(&server, "alice", "busy").await;
    let mut b = Client::joined(&server, "bob", "busy").await;
    a.expect_event("room:peer-joined").await;

    // The sleeper never reads again: its socket buffers fill, then its
    // queue, and the server must drop it.
    let sdp = "x".repeat(16 * 1024);
    for _ in 0..2000 {
        sender
            .send_json(
                json!({ "event": "sdp:offer", "data": { "to": sleeper.client_id, "sdp": sdp } }),
            )
            .await;
    }
    let left = sender
        .expect_event_within("room:peer-left", Duration::from_secs(20))
        .await;
    assert_eq!(
        left,
        json!({ "roomId": "stuck", "clientId": sleeper.client_id, "reason": "disconnected" })
    );

    // Meanwhile, another room is unaffected: every relay arrives, in order.
    for i in 0..500 {
        a.send_json(json!({ "event": "ice:candidate", "data": { "to": b.client_id, "candidate": { "candidate": format!("c{i}") } } }))
            .await;
    }
    for i in 0..500 {
        let data = b.expect_event("ice:candidate").await;
        assert_eq!(data["candidate"]["candidate"], format!("c{i}"));
    }
    drop(sleeper);
}

/// The issue's scenario: one client never reads while 50 others (25 pairs
/// in their own rooms) exchange 10,000 relays. The others see every
/// message, in order; no relay waits for the stalled client (were the
/// server to block on it, deliveries would stall for the write patience,
/// 30 s); and the server's memory stays bounded although far more is
/// sent to the stalled client than its queue holds.
#[tokio::test]
async fn a_stalled_reader_costs_the_others_nothing() {
    let server = Server::start(CONFIG).await;
    let rss_before = server.rss_bytes();
    let mut sender = Client::joined(&server, "sender", "stuck").await;
    let sleeper = Client::joined(&server, "sleeper", "stuck").await;
    sender.expect_event("room:peer-joined").await;
    let sleeper_id = sleeper.client_id.clone();

    // 48 MiB at a client whose queue holds 1 MiB; the sender's own queue
    // has room for the errors once the sleeper is gone.
    let flood = tokio::spawn(async move {
        let sdp = "x".repeat(16 * 1024);
        for _ in 0..3072 {
            sender
                .send_json(
                    json!({ "event": "sdp:offer", "data": { "to": sleeper_id, "sdp": sdp } }),
                )
                .await;
        }
        sender
    });

    let mut pairs = Vec::new();
    for p in 0..25 {
        let room = format!("pair-{p}");
        let mut a = Client::joined(&server, "a", &room).await;
        let b = Client::joined(&server, "b", &room).await;
        a.expect_event("room:peer-joined").await;
        pairs.push((a, b));
    }
    let started = tokio::time::Instant::now();
    let exchanges: Vec<_> = pairs
        .into_iter()
        .map(|(mut a, mut b)| {
            tokio::spawn(async move {
                let mut worst = Duration::ZERO;
                // 25 pairs × 2 directions × 200 = 10,000 relays.
                for i in 0..200 {
                    worst = worst.max(relay(&mut a, &mut b, i).await);
                    worst = worst.max(relay(&mut b, &mut a, i).await);
                }
                worst
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    for exchange in exchanges {
        worst = worst.max(exchange.await.expect("an exchange failed"));
    }
    eprintln!(
        "10,000 relays in {:?}, slowest {worst:?}",
        started.elapsed()
    );
    assert!(
        worst < Duration::from_secs(5),
        "a relay took {worst:?}: someone waited for the stalled client"
    );

    let mut sender = flood.await.expect("the flood failed");
    let left = sender
        .expect_event_within("room:peer-left", Duration::from_secs(20))
        .await;
    assert_eq!(left["clientId"], sleeper.client_id.as_str());
    let grown = server.rss_bytes().saturating_sub(rss_before);
    assert!(
        grown < 24 << 20,
        "RSS grew by {} MiB while 48 MiB went to a 1 MiB queue",
        grown >> 20
    );
    drop(sleeper);
}

/// Relays candidate `i` from `from` to `to`; returns how long it took.
async fn relay(from: &mut Client, to: &mut Client, i: usize) -> Duration {
    let sent = tokio::time::Instant::now();
    from.send_json(json!({ "event": "ice:candidate", "data": { "to": to.client_id, "candidate": { "candidate": format!("c{i}") } } }))
        .await;
    let data = to.expect_event("ice:candidate").await;
    assert_eq!(data["candidate"]["candidate"], format!("c{i}"));
    assert_eq!(data["from"], from.client_id.as_str());
    sent.elapsed()
}
