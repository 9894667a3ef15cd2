//! PROTOCOL.md, "Connection lifecycle": `connected`, the auth gate and
//! timeout, heartbeat, application ping, disconnects and graceful shutdown.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::time::Duration;

use serde_json::json;
use switchboard_e2e::token::{now_millis, token};
use switchboard_e2e::{Client, Server};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep};

/// Heartbeat detection plus the default resume grace period (15 s), with
/// margin: how long an unexpected disconnect may take to reach the room.
const UNEXPECTED_DISCONNECT_LIMIT: Duration = Duration::from_secs(25);

// ---- logs ----

/// The server's log goes to a file here, not a terminal: it must read as
/// plain text, without ANSI colour escapes.
#[tokio::test]
async fn a_log_that_is_not_a_terminal_has_no_colour_escapes() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client
        .send_json(json!({ "event": "auth:request", "data": { "token": "nope" } }))
        .await;
    client.expect_event("auth:response").await;
    let log = server.log();
    assert!(log.contains("auth failed"), "no auth line in:\n{log}");
    assert!(!log.contains('\u{1b}'), "colour escapes in:\n{log}");
}

// ---- connected ----

#[tokio::test]
async fn connected_comes_first_with_exactly_the_documented_fields() {
    let server = Server::start_default().await;
    let client = Client::connect(&server).await;
    let data = &client.connected;
    assert_eq!(
        data.as_object().unwrap().len(),
        4,
        "connected has exactly 4 fields: {data}"
    );
    assert!(!client.client_id.is_empty(), "empty clientId: {data}");
    assert_eq!(data["protocol"], 1);
    assert_eq!(data["heartbeatMs"], 30000);
    let resume = data["resumeToken"].as_str().expect("string resumeToken");
    assert!(!resume.is_empty(), "empty resumeToken");
}

#[tokio::test]
async fn connected_reports_the_configured_heartbeat_interval() {
    let server = Server::start("[heartbeat]\ninterval_ms = 12345\n").await;
    let client = Client::connect(&server).await;
    assert_eq!(client.connected["heartbeatMs"], 12345);
}

#[tokio::test]
async fn each_connection_gets_its_own_client_id_and_resume_token() {
    let server = Server::start_default().await;
    let mut ids = HashSet::new();
    let mut tokens = HashSet::new();
    for _ in 0..5 {
        let client = Client::connect(&server).await;
        assert!(ids.insert(client.client_id.clone()), "clientId reused");
        assert!(
            tokens.insert(client.connected["resumeToken"].as_str().unwrap().to_owned()),
            "resumeToken reused"
        );
    }
}

// ---- auth gate ----

#[tokio::test]
async fn only_auth_and_ping_are_accepted_before_auth() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let cases = [
        ("room:join", json!({ "roomId": "r" })),
        ("room:leave", json!({})),
        ("room:state", json!({})),
        ("sdp:offer", json!({ "to": "x", "sdp": "v=0" })),
        ("sdp:answer", json!({ "to": "x", "sdp": "v=0" })),
        (
            "ice:candidate",
            json!({ "to": "x", "candidate": { "candidate": "c" } }),
        ),
        ("pong", json!({})),
        (
            "auth:response",
            json!({ "success": true, "userId": "mallory" }),
        ),
    ];
    for (event, data) in cases {
        client
            .send_json(json!({ "event": event, "id": "g", "data": data }))
            .await;
        client
            .expect_error("NOT_AUTHENTICATED", Some("g"), Some(event))
            .await;
    }
    client
        .send_json(json!({ "event": "ping", "id": "p" }))
        .await;
    client.expect_reply("pong", "p").await;
    let response = client.auth(json!({ "token": token("alice") })).await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
    client.join("r").await;
}

#[tokio::test]
async fn unauthenticated_client_is_closed_with_4001_after_the_auth_timeout() {
    let server = Server::start("[auth]\ntimeout_ms = 300\n").await;
    let started = Instant::now();
    let mut client = Client::connect(&server).await;
    client.expect_close(4001).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed after {:?}, before the 300 ms timeout",
        started.elapsed()
    );
}

#[tokio::test]
async fn pings_do_not_stop_the_auth_timeout() {
    let server = Server::start("[auth]\ntimeout_ms = 300\n").await;
    let mut client = Client::connect(&server).await;
    for i in 0..3 {
        let id = format!("p{i}");
        client.send_json(json!({ "event": "ping", "id": id })).await;
        client.expect_reply("pong", &id).await;
        sleep(Duration::from_millis(50)).await;
    }
    client.expect_close(4001).await;
}

#[tokio::test]
async fn failed_auth_does_not_stop_the_auth_timeout() {
    let server = Server::start("[auth]\ntimeout_ms = 300\n").await;
    let mut client = Client::connect(&server).await;
    let response = client.auth(json!({ "token": "garbage" })).await;
    assert_eq!(response["success"], false);
    client.expect_close(4001).await;
}

#[tokio::test]
async fn client_that_authenticates_in_time_stays_after_the_auth_timeout() {
    let server = Server::start("[auth]\ntimeout_ms = 300\n").await;
    let mut client = Client::authed(&server, "alice").await;
    client.expect_silence(Duration::from_millis(1000)).await;
    client.assert_open().await;
}

// ---- heartbeat ----

#[tokio::test]
async fn client_that_answers_pings_stays_connected() {
    let server = Server::start("[heartbeat]\ninterval_ms = 200\n").await;
    let mut client = Client::authed(&server, "alice").await;
    assert_eq!(client.connected["heartbeatMs"], 200);
    // Reading lets tungstenite answer every ping with a pong.
    client.expect_silence(Duration::from_millis(1200)).await;
    client.assert_open().await;
}

#[tokio::test]
async fn client_that_answers_no_ping_is_terminated_as_an_unexpected_disconnect() {
    let server = Server::start("[heartbeat]\ninterval_ms = 200\n").await;
    let mut observer = Client::joined(&server, "olga", "r").await;
    let mut stalled = Client::joined(&server, "sam", "r").await;
    let peer = observer.expect_event("room:peer-joined").await;
    assert_eq!(peer["peer"]["clientId"], stalled.client_id.as_str());

    // From here on nobody reads `stalled`, so it answers no ping. The room
    // hears of it after the heartbeat timeout and the resume grace period.
    let left = observer
        .expect_event_within("room:peer-left", UNEXPECTED_DISCONNECT_LIMIT)
        .await;
    assert_eq!(
        left,
        json!({ "roomId": "r", "clientId": stalled.client_id, "reason": "disconnected" })
    );
    // The server hung up on it (what was buffered before is skipped).
    stalled
        .expect_disconnected_within(Duration::from_secs(1))
        .await;
    observer.assert_open().await;
}

#[tokio::test]
async fn server_sends_websocket_pings_at_the_heartbeat_interval() {
    let server = Server::start("[heartbeat]\ninterval_ms = 200\n").await;
    let mut client = Client::authed(&server, "alice").await;
    // A client that stops reading stops answering: within a few intervals
    // the server must drop it, which proves pings are sent and checked.
    sleep(Duration::from_millis(1500)).await;
    client
        .expect_disconnected_within(Duration::from_secs(2))
        .await;
}

// ---- application ping ----

#[tokio::test]
async fn ping_gets_pong_with_same_id_and_server_time() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client
        .send_json(json!({ "event": "ping", "id": "t1", "data": { "sentAt": 1 } }))
        .await;
    let before = now_millis();
    let pong = client.expect_reply("pong", "t1").await;
    assert_eq!(
        pong.as_object().unwrap().len(),
        1,
        "pong data is exactly {{serverTime}}: {pong}"
    );
    let server_time = pong["serverTime"].as_i64().expect("integer serverTime");
    assert!(
        (server_time - before).abs() < 5000,
        "serverTime {server_time} is not near now ({before})"
    );
}

#[tokio::test]
async fn ping_works_after_auth_too() {
    let server = Server::start_default().await;
    let mut client = Client::joined(&server, "alice", "r").await;
    client
        .send_json(json!({ "event": "ping", "id": "t2", "data": {} }))
        .await;
    assert!(client.expect_reply("pong", "t2").await["serverTime"].is_i64());
}

// ---- disconnects ----

#[tokio::test]
async fn clean_close_1000_tells_the_room_at_once() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    let b_id = b.client_id.clone();
    b.close(1000).await;
    let left = a
        .expect_event_within("room:peer-left", Duration::from_secs(2))
        .await;
    assert_eq!(
        left,
        json!({ "roomId": "r", "clientId": b_id, "reason": "disconnected" })
    );
}

#[tokio::test]
async fn clean_close_1001_tells_the_room_at_once() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    let b_id = b.client_id.clone();
    b.close(1001).await;
    let left = a
        .expect_event_within("room:peer-left", Duration::from_secs(2))
        .await;
    assert_eq!(
        left,
        json!({ "roomId": "r", "clientId": b_id, "reason": "disconnected" })
    );
}

#[tokio::test]
async fn after_a_clean_close_the_room_no_longer_lists_the_client() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    b.close(1000).await;
    a.expect_event("room:peer-left").await;
    a.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    assert_eq!(
        a.expect_reply("room:state", "s").await,
        json!({ "roomId": "r", "peers": [] })
    );
}

// ---- graceful shutdown ----

#[tokio::test]
async fn sigterm_closes_every_client_with_1001_and_exits_cleanly() {
    let mut server = Server::start_default().await;
    let mut in_room = Client::joined(&server, "alice", "r").await;
    let mut authed = Client::authed(&server, "bob").await;
    let mut fresh = Client::connect(&server).await;
    let addr = server.addr();

    server.sigterm();
    in_room.expect_close(1001).await;
    authed.expect_close(1001).await;
    fresh.expect_close(1001).await;
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "switchboard exited with {status}");

    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "connection accepted after shutdown");
}

#[tokio::test]
async fn sigterm_refuses_new_connections_while_draining() {
    let mut server = Server::start("[shutdown]\ndrain_timeout_ms = 3000\n").await;
    // Never read again, so it never answers the server's close frame and
    // keeps the server draining for a while.
    let _stalled = Client::connect(&server).await;
    let mut active = Client::connect(&server).await;
    let addr = server.addr();

    server.sigterm();
    active.expect_close(1001).await;
    sleep(Duration::from_millis(200)).await;
    match TcpStream::connect(addr).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "connect: {e}"),
        Ok(_) => panic!("new connection accepted while draining"),
    }
    assert!(
        server.is_running(),
        "switchboard exited at once instead of draining the stalled client"
    );
    server.wait_exit(Duration::from_secs(8)).await;
}

#[tokio::test]
async fn drain_timeout_bounds_the_shutdown() {
    let mut server = Server::start("[shutdown]\ndrain_timeout_ms = 500\n").await;
    // Never answers the close frame: only the drain timeout ends the wait.
    let _stalled = Client::connect(&server).await;
    let signalled = Instant::now();
    server.sigterm();
    server.wait_exit(Duration::from_secs(10)).await;
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "exited {:?} after SIGTERM with a 500 ms drain timeout",
        signalled.elapsed()
    );
}
