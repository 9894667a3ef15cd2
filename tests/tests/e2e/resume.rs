//! PROTOCOL.md, "Session resume", sentence by sentence: the grace period
//! after unexpected disconnects only, the queue replayed in order, the
//! replay limit, takeover with 4000, single-use tokens, `RESUME_FAILED`.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::chains;
use switchboard_e2e::metrics::Metrics;
use switchboard_e2e::{Client, Server};
use tokio::time::{Instant, sleep};

/// Long enough that no test races it; tests of expiry set their own.
const SESSION: &str = "[session]\nresume_grace_ms = 5000\nreplay_limit = 8\n";
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);
/// Well under the 5 s grace period: what happens "at once" happens within it.
const AT_ONCE: Duration = Duration::from_millis(1500);

fn candidate(to: &str, n: usize) -> Value {
    json!({ "event": "ice:candidate", "data": { "to": to, "candidate": { "candidate": format!("c-{n}") } } })
}

async fn metric(server: &Server, name: &str) -> f64 {
    let text = server.admin().metrics_text().await;
    Metrics::parse(&text).get_or_zero(name, &[])
}

/// Waits until the server holds `n` suspended sessions: from then on, what
/// is sent to the disconnected client is queued, not written to its old
/// socket.
async fn wait_for_suspended(server: &Server, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = metric(server, "switchboard_sessions_suspended").await;
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} suspended sessions, expected {n}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// Drops `client` without a close frame and waits until the server holds
/// its session; returns its resume token and client id.
async fn vanish(server: &Server, client: Client) -> (String, String) {
    let taken = (client.resume_token(), client.client_id.clone());
    drop(client);
    wait_for_suspended(server, 1.0).await;
    taken
}

/// Two members of room `r`; `a` has seen `b` join.
async fn pair(server: &Server) -> (Client, Client) {
    let mut a = Client::joined(server, "alice", "r").await;
    let b = Client::joined(server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    (a, b)
}

fn assert_resume_failed(answer: &Value) {
    assert_eq!(answer["event"], "error", "expected RESUME_FAILED: {answer}");
    assert_eq!(answer["id"], "resume", "{answer}");
    assert_eq!(answer["data"]["code"], "RESUME_FAILED", "{answer}");
    assert_eq!(answer["data"]["event"], "session:resume", "{answer}");
}

/// Asserts `answer` is exactly the documented `session:resumed` and
/// returns its new token.
fn assert_resumed(answer: &Value, client_id: &str, room: Value, replayed: usize) -> String {
    let data = &answer["data"];
    let token = data["resumeToken"].as_str().expect("a string resumeToken");
    let expected = json!({
        "event": "session:resumed",
        "id": "resume",
        "data": { "clientId": client_id, "roomId": room, "replayed": replayed, "resumeToken": token },
    });
    assert_eq!(answer, &expected);
    assert!(!token.is_empty());
    token.to_owned()
}

#[tokio::test]
async fn an_unexpected_disconnect_keeps_the_session_for_a_resume() {
    let server = Server::start(SESSION).await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = vanish(&server, b).await;
    a.expect_silence(QUIET).await;

    let (mut b, answer) = Client::resuming(&server, &token).await;
    let new_token = assert_resumed(&answer, &bob, json!("r"), 0);
    assert_ne!(new_token, token, "a resume hands out a new token");
    wait_for_suspended(&server, 0.0).await;
    // The room saw neither a peer-left nor a peer-joined.
    a.expect_silence(QUIET).await;

    // Authenticated and in the room as before, without an auth:request.
    b.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    let state = b.expect_reply("room:state", "s").await;
    assert_eq!(state["peers"][0]["clientId"], a.client_id.as_str());
    a.send_json(candidate(&bob, 1)).await;
    let relayed = b.expect_event("ice:candidate").await;
    assert_eq!(relayed["from"], a.client_id.as_str());
    b.send_json(candidate(&a.client_id, 2)).await;
    assert_eq!(a.expect_event("ice:candidate").await["from"], bob.as_str());
}

#[tokio::test]
async fn messages_sent_meanwhile_are_accepted_and_replayed_in_order() {
    let server = Server::start(SESSION).await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = vanish(&server, b).await;
    // Exactly the replay limit: all kept.
    for n in 0..8 {
        a.send_json(candidate(&bob, n)).await;
    }
    // Accepted, not refused: the sender hears nothing.
    a.expect_silence(QUIET).await;

    let (mut b, answer) = Client::resuming(&server, &token).await;
    assert_resumed(&answer, &bob, json!("r"), 8);
    for n in 0..8 {
        let data = b.expect_event("ice:candidate").await;
        assert_eq!(
            data,
            json!({ "from": a.client_id, "candidate": { "candidate": format!("c-{n}") } })
        );
    }
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_session_outside_any_room_resumes_with_a_null_room() {
    let server = Server::start(SESSION).await;
    let b = Client::authed(&server, "bob").await;
    let (token, bob) = vanish(&server, b).await;
    let (_b, answer) = Client::resuming(&server, &token).await;
    assert_resumed(&answer, &bob, Value::Null, 0);
}

#[tokio::test]
async fn a_still_open_old_connection_is_closed_with_4000() {
    let server = Server::start(SESSION).await;
    let (mut a, mut old) = pair(&server).await;
    let bob = old.client_id.clone();
    let (mut b, answer) = Client::resuming(&server, &old.resume_token()).await;
    assert_resumed(&answer, &bob, json!("r"), 0);
    old.expect_close(4000).await;
    a.expect_silence(QUIET).await;
    a.send_json(candidate(&bob, 1)).await;
    assert_eq!(
        b.expect_event("ice:candidate").await["from"],
        a.client_id.as_str()
    );
    assert_eq!(metric(&server, "switchboard_sessions_suspended").await, 0.0);
}

/// The old connection stops reading, so the server's writes to it stall
/// and messages pile up in its queue; a takeover moves what was not yet
/// written to the new connection, in order.
#[tokio::test]
async fn a_takeover_replays_what_the_old_socket_had_not_taken() {
    let config = format!(
        "{SESSION}[limits]\nrate_per_sec = 10000\nrate_burst = 10000\noutbound_max_bytes = 134217728\n"
    );
    let server = Server::start(&config).await;
    let (mut a, mut old) = pair(&server).await;
    let bob = old.client_id.clone();
    // Far more than loopback socket buffers hold.
    let offers = 600;
    let sdp = "s".repeat(60_000);
    for n in 0..offers {
        a.send_json(
            json!({ "event": "sdp:offer", "data": { "to": bob, "sdp": format!("{n} {sdp}") } }),
        )
        .await;
    }
    // Answered after all the offers, so they are all queued or written.
    a.assert_open().await;

    let (mut b, answer) = Client::resuming(&server, &old.resume_token()).await;
    let replayed = answer["data"]["replayed"].as_u64().expect("replayed") as usize;
    assert_resumed(&answer, &bob, json!("r"), replayed);
    assert!(
        (1..=offers).contains(&replayed),
        "the stalled socket should have left offers queued, replayed {replayed}"
    );
    // The tail of the offers, in order.
    for n in offers - replayed..offers {
        let offer = b.recv().await;
        assert_eq!(offer["event"], "sdp:offer");
        let text = offer["data"]["sdp"].as_str().unwrap();
        assert_eq!(text.split(' ').next(), Some(n.to_string().as_str()));
    }
    b.expect_silence(QUIET).await;
    old.expect_close(4000).await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_clean_close_leaves_at_once_and_ends_the_session() {
    let server = Server::start(SESSION).await;
    for code in [1000, 1001] {
        let (mut a, b) = pair(&server).await;
        let (token, bob) = (b.resume_token(), b.client_id.clone());
        b.close(code).await;
        let left = a.expect_event_within("room:peer-left", AT_ONCE).await;
        assert_eq!(
            left,
            json!({ "roomId": "r", "clientId": bob, "reason": "disconnected" })
        );
        let (_c, answer) = Client::resuming(&server, &token).await;
        assert_resume_failed(&answer);
        a.close(1000).await;
    }
}

#[tokio::test]
async fn any_other_close_code_is_an_unexpected_disconnect() {
    let server = Server::start(SESSION).await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = (b.resume_token(), b.client_id.clone());
    b.close(4321).await;
    wait_for_suspended(&server, 1.0).await;
    a.expect_silence(QUIET).await;
    let (_b, answer) = Client::resuming(&server, &token).await;
    assert_resumed(&answer, &bob, json!("r"), 0);
}

#[tokio::test]
async fn after_the_grace_period_the_room_hears_peer_left_and_the_token_is_void() {
    let server = Server::start("[session]\nresume_grace_ms = 400\n").await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = (b.resume_token(), b.client_id.clone());
    let dropped = Instant::now();
    drop(b);
    let left = a
        .expect_event_within("room:peer-left", Duration::from_secs(5))
        .await;
    assert!(
        dropped.elapsed() >= Duration::from_millis(400),
        "peer-left came before the grace period ended"
    );
    assert_eq!(
        left,
        json!({ "roomId": "r", "clientId": bob, "reason": "disconnected" })
    );
    let (_c, answer) = Client::resuming(&server, &token).await;
    assert_resume_failed(&answer);
    assert_eq!(metric(&server, "switchboard_sessions_suspended").await, 0.0);
}

#[tokio::test]
async fn overflowing_the_replay_limit_ends_the_session_without_refusing_the_sender() {
    let server = Server::start(SESSION).await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = vanish(&server, b).await;
    for n in 0..9 {
        a.send_json(candidate(&bob, n)).await;
    }
    // No error for the relay that overflowed, then the room hears the
    // session end, well before its grace period would have.
    let left = a.expect_event_within("room:peer-left", AT_ONCE).await;
    assert_eq!(
        left,
        json!({ "roomId": "r", "clientId": bob, "reason": "disconnected" })
    );
    let (_c, answer) = Client::resuming(&server, &token).await;
    assert_resume_failed(&answer);
}

#[tokio::test]
async fn a_late_resume_fails_without_using_up_the_token() {
    let server = Server::start(SESSION).await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = vanish(&server, b).await;

    let mut late = Client::connect(&server).await;
    late.assert_open().await;
    late.send_json(
        json!({ "event": "session:resume", "id": "late", "data": { "resumeToken": token } }),
    )
    .await;
    late.expect_error("RESUME_FAILED", Some("late"), Some("session:resume"))
        .await;
    // The connection carries on as it was: unauthenticated, open.
    late.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    late.expect_error("NOT_AUTHENTICATED", Some("s"), Some("room:state"))
        .await;

    // A binary frame is a data message too.
    let mut binary = Client::connect(&server).await;
    binary.send_binary(vec![1, 2, 3]).await;
    binary.expect_error("INVALID_MESSAGE", None, None).await;
    binary
        .send_json(
            json!({ "event": "session:resume", "id": "late", "data": { "resumeToken": token } }),
        )
        .await;
    binary
        .expect_error("RESUME_FAILED", Some("late"), Some("session:resume"))
        .await;

    let (_b, answer) = Client::resuming(&server, &token).await;
    assert_resumed(&answer, &bob, json!("r"), 0);
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn tokens_are_single_use() {
    let server = Server::start(SESSION).await;
    let (_a, b) = pair(&server).await;
    let (token, bob) = vanish(&server, b).await;
    let (b, answer) = Client::resuming(&server, &token).await;
    let next = assert_resumed(&answer, &bob, json!("r"), 0);
    let own = b.resume_token();

    let (mut again, answer) = Client::resuming(&server, &token).await;
    assert_resume_failed(&answer);
    again.assert_open().await;
    // The resuming connection's own token from `connected` is void too.
    let (_c, answer) = Client::resuming(&server, &own).await;
    assert_resume_failed(&answer);

    // The token `session:resumed` gave is the one that works next.
    drop(b);
    wait_for_suspended(&server, 1.0).await;
    let (_b, answer) = Client::resuming(&server, &next).await;
    assert_resumed(&answer, &bob, json!("r"), 0);
}

#[tokio::test]
async fn unknown_and_malformed_tokens() {
    let server = Server::start(SESSION).await;
    let (mut c, answer) = Client::resuming(&server, "not-a-token").await;
    assert_resume_failed(&answer);
    c.assert_open().await;

    for data in [json!({}), json!({ "resumeToken": 7 })] {
        let mut c = Client::connect(&server).await;
        c.send_json(json!({ "event": "session:resume", "id": "r", "data": data }))
            .await;
        c.expect_error("INVALID_MESSAGE", Some("r"), Some("session:resume"))
            .await;
    }
}

#[tokio::test]
async fn a_member_in_its_grace_period_still_counts_toward_room_full() {
    let server = Server::start(&chains::rooms_capped(SESSION, 2)).await;
    let (_a, b) = pair(&server).await;
    drop(b);
    wait_for_suspended(&server, 1.0).await;
    let mut c = Client::authed(&server, "carol").await;
    c.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "r" } }))
        .await;
    c.expect_error("ROOM_FULL", Some("j"), Some("room:join"))
        .await;
}

#[tokio::test]
async fn a_heartbeat_timeout_is_an_unexpected_disconnect() {
    let config = format!("{SESSION}[heartbeat]\ninterval_ms = 300\n");
    let server = Server::start(&config).await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = (b.resume_token(), b.client_id.clone());
    // `b` is never read from again, so it never answers a ping; `a` is,
    // and does.
    a.expect_silence(Duration::from_millis(1500)).await;
    assert_eq!(metric(&server, "switchboard_sessions_suspended").await, 1.0);
    let (_b2, answer) = Client::resuming(&server, &token).await;
    assert_resumed(&answer, &bob, json!("r"), 0);
    a.expect_silence(QUIET).await;
    drop(b);
}

#[tokio::test]
async fn an_operator_removing_a_suspended_client_ends_its_session_at_once() {
    let server = Server::start(SESSION).await;
    let (mut a, b) = pair(&server).await;
    let (token, bob) = vanish(&server, b).await;
    let response = server
        .admin()
        .delete(&format!("/admin/clients/{bob}"))
        .await;
    assert_eq!(response.status, 204);
    let left = a.expect_event_within("room:peer-left", AT_ONCE).await;
    assert_eq!(left["clientId"], bob.as_str());
    let (_c, answer) = Client::resuming(&server, &token).await;
    assert_resume_failed(&answer);
}

#[tokio::test]
async fn an_unauthenticated_connection_keeps_no_session() {
    let server = Server::start(SESSION).await;
    let b = Client::connect(&server).await;
    let token = b.resume_token();
    drop(b);
    sleep(QUIET).await;
    assert_eq!(metric(&server, "switchboard_sessions_suspended").await, 0.0);
    let (_c, answer) = Client::resuming(&server, &token).await;
    assert_resume_failed(&answer);
}

#[tokio::test]
async fn tokens_are_unguessable() {
    let server = Server::start_default().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let token = Client::connect(&server).await.resume_token();
        // 24 random bytes, base64url: 192 bits.
        assert!(token.len() >= 32, "short token {token}");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(seen.insert(token), "a token repeated");
    }
}
