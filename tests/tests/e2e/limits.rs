//! PROTOCOL.md, "Order of checks" step 2, `RATE_LIMITED` and close code
//! 4008: the per-connection token bucket and per-event buckets; the
//! `[limits]` that guard the listener: `max_connections` (HTTP 503 before
//! the upgrade) and `handshake_timeout_ms` (a request head that never
//! completes); and `max_rooms`.
//!
//! The rate tests use a slow refill (1 or 2 tokens a second), so a burst
//! sent back-to-back finds the bucket as the test left it.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::http::{status_of, upgrade_request};
use switchboard_e2e::{Client, Incoming, RECV_TIMEOUT, Server, max_rooms};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// Long enough for a bucket refilling at 1 token/s to hold one again (and
/// one refilling at 2/s to be full again at a burst of 2).
const REFILL: Duration = Duration::from_millis(1100);
const QUIET: Duration = Duration::from_millis(300);

async fn ping(client: &mut Client, id: &str) {
    client
        .send_json(json!({ "event": "ping", "id": id, "data": {} }))
        .await;
}

/// A limited message is not parsed: its error has no `id` and names no
/// `event`.
async fn expect_rate_limited(client: &mut Client) {
    client.expect_error("RATE_LIMITED", None, None).await;
}

/// `message` is exactly a `RATE_LIMITED` error: no `id`, no `event`.
fn assert_rate_limited(message: &Value) {
    assert_eq!(
        message["event"], "error",
        "expected RATE_LIMITED: {message}"
    );
    assert!(
        message.get("id").is_none(),
        "RATE_LIMITED must have no id: {message}"
    );
    let data = message["data"]
        .as_object()
        .unwrap_or_else(|| panic!("error without data: {message}"));
    assert_eq!(data.get("code"), Some(&json!("RATE_LIMITED")), "{message}");
    assert!(
        data.get("message").is_some_and(Value::is_string),
        "error without a message: {message}"
    );
    assert_eq!(data.len(), 2, "extra fields in RATE_LIMITED: {message}");
}

/// What follows the 101st limited message within 10 s: its own
/// `RATE_LIMITED` (each limited message gets one), then a close frame
/// with 4008, and nothing else.
async fn expect_abuse_close(client: &mut Client) {
    let mut limited = 0;
    loop {
        let next = timeout(RECV_TIMEOUT, client.next_incoming())
            .await
            .unwrap_or_else(|_| panic!("no close 4008 within {RECV_TIMEOUT:?}"));
        match next {
            Incoming::Message(message) => {
                assert_rate_limited(&message);
                limited += 1;
                assert!(
                    limited <= 1,
                    "more than one RATE_LIMITED after the 100th: {message}"
                );
            }
            Incoming::Closed(code) => {
                assert_eq!(
                    limited, 1,
                    "the message that closes with 4008 was not answered RATE_LIMITED first"
                );
                assert_eq!(code, Some(4008), "rate limit abuse closes with 4008");
                break;
            }
            Incoming::Failed(why) => panic!("connection ended without a close 4008: {why}"),
        }
    }
    // Lets tungstenite answer the close frame.
    client.expect_disconnected_within(RECV_TIMEOUT).await;
}

#[tokio::test]
async fn burst_then_limit() {
    let server = Server::start("[limits]\nrate_per_sec = 1\nrate_burst = 5\n").await;
    let mut client = Client::connect(&server).await;
    for i in 1..=7 {
        ping(&mut client, &format!("p{i}")).await;
    }
    for i in 1..=5 {
        client.expect_reply("pong", &format!("p{i}")).await;
    }
    expect_rate_limited(&mut client).await;
    expect_rate_limited(&mut client).await;
    // The limited pings are dropped, not answered late.
    client.expect_silence(REFILL).await;
    ping(&mut client, "refilled").await;
    client.expect_reply("pong", "refilled").await;
}

#[tokio::test]
async fn limited_messages_are_not_handled() {
    let server = Server::start("[limits]\nrate_per_sec = 2\nrate_burst = 2\n").await;
    let mut member = Client::joined(&server, "bob", "standup").await;
    // `auth:request` and this ping empty the bucket.
    let mut client = Client::authed(&server, "alice").await;
    ping(&mut client, "last-token").await;
    client.expect_reply("pong", "last-token").await;

    client
        .send_json(json!({ "event": "room:join", "id": "j1", "data": { "roomId": "standup" } }))
        .await;
    expect_rate_limited(&mut client).await;
    member.expect_silence(REFILL).await;
    client.expect_silence(QUIET).await;

    client
        .send_json(json!({ "event": "room:state", "id": "s1" }))
        .await;
    client
        .expect_error("NOT_IN_ROOM", Some("s1"), Some("room:state"))
        .await;
    // The same join, now within the rate, is handled.
    let joined = client.join("standup").await;
    assert_eq!(joined["peers"][0]["clientId"], member.client_id.as_str());
    let peer = member.expect_event("room:peer-joined").await;
    assert_eq!(peer["peer"]["clientId"], client.client_id.as_str());
}

#[tokio::test]
async fn invalid_and_binary_messages_count_too() {
    let server = Server::start("[limits]\nrate_per_sec = 1\nrate_burst = 4\n").await;
    let mut client = Client::connect(&server).await;
    client.send_text("not json").await;
    client.send_binary(vec![0u8, 1, 2, 3]).await;
    client.send_text("[1, 2, 3]").await;
    client
        .send_json(json!({ "event": "ping", "id": "x", "extra": 1 }))
        .await;
    ping(&mut client, "valid").await;

    client.expect_error("INVALID_MESSAGE", None, None).await;
    client.expect_error("INVALID_MESSAGE", None, None).await;
    client.expect_error("INVALID_MESSAGE", None, None).await;
    client
        .expect_error("INVALID_MESSAGE", Some("x"), Some("ping"))
        .await;
    expect_rate_limited(&mut client).await;
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn websocket_control_frames_do_not_count() {
    let server = Server::start("[limits]\nrate_per_sec = 1\nrate_burst = 2\n").await;
    let mut client = Client::connect(&server).await;
    // More than the burst, and more than the 100 that would close.
    for _ in 0..150 {
        client.send_ws_ping(&b"hb"[..]).await;
        client.send_ws_pong(&b"hb"[..]).await;
    }
    ping(&mut client, "p1").await;
    ping(&mut client, "p2").await;
    client.expect_reply("pong", "p1").await;
    client.expect_reply("pong", "p2").await;
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_fragmented_message_counts_once() {
    let server = Server::start("[limits]\nrate_per_sec = 1\nrate_burst = 2\n").await;
    let mut client = Client::connect(&server).await;
    let message = json!({ "event": "ping", "id": "frag", "data": {} }).to_string();
    let (a, rest) = message.split_at(10);
    let (b, c) = rest.split_at(10);
    client.send_fragmented_text(&[a, b, c]).await;
    ping(&mut client, "second").await;
    ping(&mut client, "third").await;
    client.expect_reply("pong", "frag").await;
    client.expect_reply("pong", "second").await;
    expect_rate_limited(&mut client).await;
}

#[tokio::test]
async fn one_hundred_limited_messages_keep_the_connection_and_the_next_closes_with_4008() {
    let server = Server::start("[limits]\nrate_per_sec = 1\nrate_burst = 1\n").await;
    let mut client = Client::connect(&server).await;
    ping(&mut client, "first").await;
    client.expect_reply("pong", "first").await;

    for i in 1..=100 {
        ping(&mut client, &format!("l{i}")).await;
    }
    for _ in 1..=100 {
        expect_rate_limited(&mut client).await;
    }
    client.expect_silence(QUIET).await;

    ping(&mut client, "l101").await;
    expect_abuse_close(&mut client).await;
}

#[tokio::test]
async fn default_limits_allow_a_burst_of_200() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    for i in 0..200 {
        ping(&mut client, &format!("p{i}")).await;
    }
    for i in 0..200 {
        client.expect_reply("pong", &format!("p{i}")).await;
    }
}

#[tokio::test]
async fn other_clients_are_not_limited_by_one_clients_flood() {
    let server = Server::start("[limits]\nrate_per_sec = 1\nrate_burst = 2\n").await;
    let mut other = Client::connect(&server).await;
    let mut flooder = Client::connect(&server).await;

    // Two within the burst, then 101 limited: the last one closes.
    for i in 0..103 {
        ping(&mut flooder, &format!("f{i}")).await;
    }
    flooder.expect_reply("pong", "f0").await;
    flooder.expect_reply("pong", "f1").await;
    for _ in 0..100 {
        expect_rate_limited(&mut flooder).await;
    }
    expect_abuse_close(&mut flooder).await;

    // The other connection, from the same address, still has its whole burst.
    ping(&mut other, "o1").await;
    ping(&mut other, "o2").await;
    other.expect_reply("pong", "o1").await;
    other.expect_reply("pong", "o2").await;
    let mut newcomer = Client::connect(&server).await;
    newcomer.assert_open().await;
}

/// `[limits.events]`: a bucket of its own for one event, drawn from after
/// the connection's. Its `RATE_LIMITED` comes after parsing, so it carries
/// the message's `id` and names its event; other events are not limited.
#[tokio::test]
async fn an_event_can_have_a_rate_limit_of_its_own() {
    let config = "[limits.events.ping]\nrate_per_sec = 1\nrate_burst = 2\n";
    let server = Server::start(config).await;
    let mut client = Client::authed(&server, "alice").await;
    for i in 0..3 {
        ping(&mut client, &format!("p{i}")).await;
    }
    client.expect_reply("pong", "p0").await;
    client.expect_reply("pong", "p1").await;
    client
        .expect_error("RATE_LIMITED", Some("p2"), Some("ping"))
        .await;
    // Other events draw only from the connection's bucket.
    for i in 0..5 {
        client
            .send_json(json!({ "event": "room:state", "id": format!("s{i}") }))
            .await;
        client
            .expect_error("NOT_IN_ROOM", Some(&format!("s{i}")), Some("room:state"))
            .await;
    }
    sleep(REFILL).await;
    ping(&mut client, "again").await;
    client.expect_reply("pong", "again").await;
}

#[tokio::test]
async fn abusing_an_event_limit_closes_with_4008() {
    let config = "[limits.events.ping]\nrate_per_sec = 1\nrate_burst = 1\n";
    let server = Server::start(config).await;
    let mut client = Client::connect(&server).await;
    for i in 0..102 {
        ping(&mut client, &format!("p{i}")).await;
    }
    client.expect_reply("pong", "p0").await;
    // Each limited message gets its answer, the 101st that closes too.
    for i in 1..=101 {
        let id = format!("p{i}");
        client
            .expect_error("RATE_LIMITED", Some(&id), Some("ping"))
            .await;
    }
    match timeout(RECV_TIMEOUT, client.next_incoming()).await {
        Ok(Incoming::Closed(code)) => assert_eq!(code, Some(4008)),
        other => panic!("expected a close with 4008, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_event_limit_is_refused_at_start_up() {
    for (config, named) in [
        (
            "[limits.events.\"Bad Event\"]\nrate_per_sec = 1\nrate_burst = 1\n",
            "Bad Event",
        ),
        (
            "[limits.events.ping]\nrate_per_sec = 0\nrate_burst = 1\n",
            "rate_per_sec",
        ),
        (
            "[limits.events.ping]\nrate_per_sec = 1\nrate_burst = 0.5\n",
            "rate_burst",
        ),
        ("[limits.events.ping]\nrate_per_sec = 1\n", "rate_burst"),
    ] {
        let (status, log) = Server::builder(config)
            .start_expecting_failure(RECV_TIMEOUT)
            .await;
        assert!(!status.success(), "{config} was accepted");
        assert!(
            log.contains(named),
            "the error does not name `{named}`: {log}"
        );
    }
}

/// `limits.max_rooms`: the host refuses a join that would open one room
/// more, whatever the room policy says; joining an existing room still
/// works, and a room that ends frees its place.
#[tokio::test]
async fn max_rooms_refuses_a_new_room_with_room_full() {
    let server = Server::start("[limits]\nmax_rooms = 2\n").await;
    let (_b, mut c) = max_rooms::fill_then_free_one([&server; 3]).await;
    c.join("three").await;
}

#[tokio::test]
async fn max_connections_answers_503_before_upgrade() {
    let server = Server::start("[limits]\nmax_connections = 2\n").await;
    let mut first = Client::connect(&server).await;
    let mut second = Client::connect(&server).await;

    let status = status_of(server.addr(), &upgrade_request("GET", "/ws", server.addr())).await;
    assert_eq!(status, 503, "third upgrade request");
    match Client::try_connect(&server).await {
        Ok(_) => panic!("a third WebSocket connection was accepted at max_connections = 2"),
        Err(status) => assert_eq!(status, 503, "third WebSocket connection"),
    }
    first.assert_open().await;
    second.assert_open().await;

    first.close(1000).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut third = loop {
        match Client::try_connect(&server).await {
            Ok(client) => break client,
            Err(503) if Instant::now() < deadline => sleep(Duration::from_millis(50)).await,
            Err(status) => panic!("a connection after one of two closed was answered {status}"),
        }
    };
    third.assert_open().await;
    second.assert_open().await;
}

/// Reads from `stream` until the server closes it (EOF or a reset);
/// fails if it is still open after `limit`. Anything the server writes
/// first (a 408, say) is allowed.
async fn expect_tcp_closed_within(stream: &mut TcpStream, limit: Duration, what: &str) {
    let closed = timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: still open after {limit:?}");
}

#[tokio::test]
async fn slow_handshake_is_closed() {
    let server = Server::start("[limits]\nhandshake_timeout_ms = 300\n").await;
    let mut client = Client::connect(&server).await;

    let mut slow = TcpStream::connect(server.addr())
        .await
        .expect("connect to server");
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write half a request head");
    expect_tcp_closed_within(&mut slow, Duration::from_secs(2), "half a request head").await;

    // The timeout is for the request head only: an upgraded connection
    // older than it lives on, and new ones still come in.
    client.assert_open().await;
    Client::connect(&server).await.assert_open().await;
}

#[tokio::test]
async fn silent_connection_is_closed() {
    let server = Server::start("[limits]\nhandshake_timeout_ms = 300\n").await;
    let mut silent = TcpStream::connect(server.addr())
        .await
        .expect("connect to server");
    expect_tcp_closed_within(&mut silent, Duration::from_secs(2), "no request at all").await;
    Client::connect(&server).await.assert_open().await;
}

#[tokio::test]
async fn request_head_dripped_byte_by_byte_is_closed() {
    let server = Server::start("[limits]\nhandshake_timeout_ms = 300\n").await;
    let mut drip = TcpStream::connect(server.addr())
        .await
        .expect("connect to server");
    // The timeout is for the whole head, not for each read: a byte every
    // 50 ms never completes it.
    let closed = timeout(Duration::from_secs(2), async {
        let mut buf = [0u8; 1024];
        for byte in b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Drip: "
            .iter()
            .chain([b'x'; 64].iter())
        {
            if drip.write_all(&[*byte]).await.is_err() {
                return;
            }
            if let Ok(Ok(0) | Err(_)) =
                timeout(Duration::from_millis(50), drip.read(&mut buf)).await
            {
                return;
            }
        }
        panic!("the whole drip went through and the connection is still open");
    })
    .await;
    assert!(
        closed.is_ok(),
        "a dripping request head still open after 2 s"
    );
}
