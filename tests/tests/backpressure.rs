//! Bounded outbound queues: a client that stops reading is disconnected
//! when its queue is full, and nobody else waits for it.

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
