//! PROTOCOL.md, `PLUGIN_ERROR`: a plugin that traps, loops or allocates
//! without bound fails only the message that made it do so.
//!
//! The chain is auth-jwt, rooms, misbehave, signaling. `misbehave`
//! (tests/plugins/) declares `sdp:offer`; with `sdp` = `"trap"`, `"loop"`
//! or `"alloc"` it does that, with `"relay"` it relays to `to`
//! unchecked, with `"bad-send"`, `"bad-join"` or `"bad-reply"` it queues a
//! message for `to` and then breaks the host contract, and anything else
//! passes on to `signaling`.

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::{Client, Server, chains};
use tokio::time::Instant;

const QUIET: Duration = Duration::from_millis(300);

fn config(deadline_ms: u64) -> String {
    chains::misbehave(&format!(
        "[plugin_limits]\nmemory_bytes = 16777216\ndeadline_ms = {deadline_ms}\n"
    ))
}

async fn start() -> Server {
    Server::start(&config(100)).await
}

/// Two clients in `room`, each past the other's `room:peer-joined`.
async fn pair(server: &Server, room: &str) -> (Client, Client) {
    let mut a = Client::joined(server, "alice", room).await;
    let b = Client::joined(server, "bob", room).await;
    a.expect_event("room:peer-joined").await;
    (a, b)
}

/// Sends an offer whose sdp makes misbehave fail and expects PLUGIN_ERROR
/// for it, nothing for the target, and then a normal offer relayed.
async fn fault_then_recover(a: &mut Client, b: &mut Client, how: &str) {
    let id = format!("bad-{how}");
    a.send_json(
        json!({ "event": "sdp:offer", "id": id, "data": { "to": b.client_id, "sdp": how } }),
    )
    .await;
    a.expect_error("PLUGIN_ERROR", Some(&id), Some("sdp:offer"))
        .await;
    b.expect_silence(QUIET).await;

    a.send_json(
        json!({ "event": "sdp:offer", "id": "good", "data": { "to": b.client_id, "sdp": "v=0" } }),
    )
    .await;
    assert_eq!(
        b.expect_event("sdp:offer").await,
        json!({ "from": a.client_id, "sdp": "v=0" })
    );
    a.expect_silence(QUIET).await;
    a.assert_open().await;
}

/// A plugin that hands the host an invalid event name, or data or metadata
/// that is not a JSON object, fails the call where it does so: the client
/// gets `PLUGIN_ERROR`, what the call queued before is dropped, the
/// failure counts as a trap, and the next message is served.
#[tokio::test]
async fn a_plugin_breaking_the_host_contract_fails_only_that_call() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    for how in ["bad-send", "bad-join", "bad-reply"] {
        fault_then_recover(&mut a, &mut b, how).await;
    }
    let metrics = server.admin().metrics().await;
    let traps = metrics.sum("switchboard_plugin_traps_total", &[("plugin", "misbehave")]);
    assert_eq!(traps, 3.0);
}

/// PROTOCOL.md, `PEER_NOT_FOUND`: the host delivers a relay a plugin
/// decided only to a client that is connected, whatever the plugin checked.
#[tokio::test]
async fn a_relay_to_no_connected_client_is_peer_not_found_from_the_host() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    // A clean close ends the session at once (no grace period to resume).
    let gone = Client::authed(&server, "carol").await;
    let gone_id = gone.client_id.clone();
    gone.close(1000).await;
    server
        .admin()
        .metrics_until("carol's connection closed", Duration::from_secs(5), |m| {
            m.get_or_zero("switchboard_connections_current", &[]) == 2.0
        })
        .await;
    for (id, to) in [("malformed", "not-a-client-id"), ("gone", gone_id.as_str())] {
        a.send_json(
            json!({ "event": "sdp:offer", "id": id, "data": { "to": to, "sdp": "relay" } }),
        )
        .await;
        a.expect_error("PEER_NOT_FOUND", Some(id), Some("sdp:offer"))
            .await;
    }
    b.expect_silence(QUIET).await;
    a.send_json(
        json!({ "event": "sdp:offer", "id": "ok", "data": { "to": b.client_id, "sdp": "relay" } }),
    )
    .await;
    assert_eq!(
        b.expect_event("sdp:offer").await,
        json!({ "from": a.client_id, "sdp": "relay" })
    );
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn misbehave_passes_ordinary_offers_to_signaling() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    a.send_json(json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "v=0" } }))
        .await;
    assert_eq!(
        b.expect_event("sdp:offer").await,
        json!({ "from": a.client_id, "sdp": "v=0" })
    );
}

#[tokio::test]
async fn trap_is_plugin_error_and_the_next_offer_relays() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    fault_then_recover(&mut a, &mut b, "trap").await;
}

#[tokio::test]
async fn endless_loop_is_plugin_error_and_the_next_offer_relays() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    fault_then_recover(&mut a, &mut b, "loop").await;
}

#[tokio::test]
async fn unbounded_allocation_is_plugin_error_and_the_next_offer_relays() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    fault_then_recover(&mut a, &mut b, "alloc").await;
}

#[tokio::test]
async fn repeated_faults_of_every_kind_leave_the_plugin_working() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    for how in [
        "trap", "loop", "alloc", "trap", "alloc", "loop", "trap", "trap", "alloc", "alloc",
    ] {
        fault_then_recover(&mut a, &mut b, how).await;
    }
    // The other direction, and the other relays, still work too.
    b.send_json(json!({ "event": "sdp:answer", "data": { "to": a.client_id, "sdp": "answer" } }))
        .await;
    assert_eq!(a.expect_event("sdp:answer").await["sdp"], "answer");
}

#[tokio::test]
async fn fault_does_not_disturb_the_room() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    a.send_json(
        json!({ "event": "sdp:offer", "id": "t", "data": { "to": b.client_id, "sdp": "trap" } }),
    )
    .await;
    a.expect_error("PLUGIN_ERROR", Some("t"), Some("sdp:offer"))
        .await;
    // Membership lives in the host: nobody left, and state is unchanged.
    b.expect_silence(QUIET).await;
    a.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    assert_eq!(
        a.expect_reply("room:state", "s").await["peers"][0]["clientId"],
        b.client_id.as_str()
    );
}

#[tokio::test]
async fn other_rooms_keep_relaying_while_a_plugin_loops() {
    // A long deadline keeps the loop running long enough to be overlapped.
    let server = Server::start(&config(2000)).await;
    let (mut a, mut b) = pair(&server, "stuck").await;
    let mut c = Client::joined(&server, "carol", "busy").await;
    let mut d = Client::joined(&server, "dave", "busy").await;
    c.expect_event("room:peer-joined").await;

    a.send_json(
        json!({ "event": "sdp:offer", "id": "loop", "data": { "to": b.client_id, "sdp": "loop" } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        let sent = Instant::now();
        c.send_json(
            json!({ "event": "sdp:offer", "data": { "to": d.client_id, "sdp": format!("v={i}") } }),
        )
        .await;
        assert_eq!(d.expect_event("sdp:offer").await["sdp"], format!("v={i}"));
        assert!(
            sent.elapsed() < Duration::from_millis(500),
            "relay #{i} in another room took {:?} while a plugin looped",
            sent.elapsed()
        );
    }
    a.expect_error("PLUGIN_ERROR", Some("loop"), Some("sdp:offer"))
        .await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn other_rooms_keep_relaying_while_plugins_fail() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "faulty").await;
    let mut c = Client::joined(&server, "carol", "fine").await;
    let mut d = Client::joined(&server, "dave", "fine").await;
    c.expect_event("room:peer-joined").await;

    for (i, how) in ["trap", "loop", "alloc"].into_iter().enumerate() {
        a.send_json(
            json!({ "event": "sdp:offer", "id": how, "data": { "to": b.client_id, "sdp": how } }),
        )
        .await;
        c.send_json(json!({ "event": "sdp:offer", "data": { "to": d.client_id, "sdp": format!("ok-{i}") } }))
            .await;
        assert_eq!(d.expect_event("sdp:offer").await["sdp"], format!("ok-{i}"));
        a.expect_error("PLUGIN_ERROR", Some(how), Some("sdp:offer"))
            .await;
    }
    b.expect_silence(QUIET).await;
    c.expect_silence(Duration::ZERO).await;
}

#[tokio::test]
async fn server_stays_up_after_faults() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    for how in ["trap", "loop", "alloc"] {
        a.send_json(
            json!({ "event": "sdp:offer", "id": how, "data": { "to": b.client_id, "sdp": how } }),
        )
        .await;
        a.expect_error("PLUGIN_ERROR", Some(how), Some("sdp:offer"))
            .await;
    }
    a.assert_open().await;
    b.assert_open().await;
    // New connections are served from start to relay.
    let (mut c, mut d) = pair(&server, "later").await;
    c.send_json(json!({ "event": "sdp:offer", "data": { "to": d.client_id, "sdp": "v=0" } }))
        .await;
    assert_eq!(d.expect_event("sdp:offer").await["sdp"], "v=0");
}
