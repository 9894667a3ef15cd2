//! PROTOCOL.md, "Custom events": plugins declare further events with a
//! JSON Schema for `data`; the server validates `data` against it before
//! any plugin sees the message; an event no plugin declares is
//! `UNKNOWN_EVENT`; a valid custom event gets whatever its plugin sends,
//! nothing at all included.
//!
//! The chain is auth-jwt, rooms, stamp, chat, signaling. `stamp`
//! (tests/plugins/) declares `stamp:msg` `{"to": string(1..), "seq":
//! integer >= 0}` (both required) and answers nothing to the sender;
//! `chat` (plugins/) declares `chat:message` `{"text": string(1..2000)}`.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::chains::{self, from_file};
use switchboard_e2e::{Client, Server};

const QUIET: Duration = Duration::from_millis(300);

const STAMP_WASM: &str = env!("STAMP_WASM");
const CHAT_WASM: &str = env!("CHAT_WASM");

fn config() -> String {
    let extra = [from_file("stamp", STAMP_WASM), from_file("chat", CHAT_WASM)];
    chains::with_extra("", &extra)
}

async fn start() -> Server {
    Server::start(&config()).await
}

/// Two clients in `room`, each past the other's `room:peer-joined`.
async fn pair(server: &Server, room: &str) -> (Client, Client) {
    let mut a = Client::joined(server, "alice", room).await;
    let b = Client::joined(server, "bob", room).await;
    a.expect_event("room:peer-joined").await;
    (a, b)
}

/// Sends `event` with `data` and id `id`; expects `INVALID_MESSAGE` for it
/// whose message names `path`. Returns the message.
async fn expect_schema_error(
    client: &mut Client,
    id: &str,
    event: &str,
    data: Value,
    path: &str,
) -> String {
    client
        .send_json(json!({ "event": event, "id": id, "data": data }))
        .await;
    let error = client
        .expect_error("INVALID_MESSAGE", Some(id), Some(event))
        .await;
    let message = error["message"].as_str().expect("checked by expect_error");
    assert!(
        names(message, path),
        "the INVALID_MESSAGE for {data} does not name `{path}`: {message:?}"
    );
    message.to_owned()
}

/// Whether `message` has `field` as a word of its own (as in `/seq`,
/// `"seq"`, `seq:`), not just inside another word.
fn names(message: &str, field: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    message.match_indices(field).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + field.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[tokio::test]
async fn schema_failure_is_invalid_message_naming_the_failing_field() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    let to = b.client_id.clone();
    let cases = [
        ("stamp:msg", json!({ "to": to, "seq": "7" }), "seq"),
        ("stamp:msg", json!({ "to": to, "seq": -1 }), "seq"),
        ("stamp:msg", json!({ "to": to, "seq": 1.5 }), "seq"),
        ("stamp:msg", json!({ "to": 42, "seq": 1 }), "to"),
        ("stamp:msg", json!({ "to": "", "seq": 1 }), "to"),
        ("stamp:msg", json!({ "to": to }), "seq"),
        ("stamp:msg", json!({ "seq": 1 }), "to"),
        ("chat:message", json!({ "text": 5 }), "text"),
        ("chat:message", json!({ "text": "" }), "text"),
        ("chat:message", json!({ "text": null }), "text"),
        ("chat:message", json!({ "text": ["hi"] }), "text"),
        ("chat:message", json!({}), "text"),
    ];
    for (i, (event, data, path)) in cases.into_iter().enumerate() {
        expect_schema_error(&mut a, &format!("bad-{i}"), event, data, path).await;
    }
    // Nothing reached the plugins' targets, and the connection lives on.
    b.expect_silence(QUIET).await;
    a.assert_open().await;
}

#[tokio::test]
async fn missing_data_is_checked_against_the_schema_as_an_empty_object() {
    let server = start().await;
    let (mut a, _b) = pair(&server, "r").await;
    a.send_json(json!({ "event": "chat:message", "id": "no-data" }))
        .await;
    let error = a
        .expect_error("INVALID_MESSAGE", Some("no-data"), Some("chat:message"))
        .await;
    assert!(
        names(error["message"].as_str().unwrap_or_default(), "text"),
        "{error}"
    );
}

#[tokio::test]
async fn schema_is_checked_before_any_plugin_runs() {
    let server = start().await;
    // Outside a room the plugins would answer NOT_IN_ROOM; bad data is
    // refused before they are asked.
    let mut a = Client::authed(&server, "alice").await;
    expect_schema_error(
        &mut a,
        "bad",
        "stamp:msg",
        json!({ "to": "x", "seq": "x" }),
        "seq",
    )
    .await;
    expect_schema_error(
        &mut a,
        "bad-chat",
        "chat:message",
        json!({ "text": "" }),
        "text",
    )
    .await;
    // With valid data they are asked, and answer.
    a.send_json(json!({ "event": "stamp:msg", "id": "ok", "data": { "to": "x", "seq": 1 } }))
        .await;
    a.expect_error("NOT_IN_ROOM", Some("ok"), Some("stamp:msg"))
        .await;
    a.send_json(json!({ "event": "chat:message", "id": "ok-chat", "data": { "text": "hi" } }))
        .await;
    a.expect_error("NOT_IN_ROOM", Some("ok-chat"), Some("chat:message"))
        .await;
}

#[tokio::test]
async fn schema_error_without_id_has_no_id() {
    let server = start().await;
    let mut a = Client::authed(&server, "alice").await;
    a.send_json(json!({ "event": "chat:message", "data": { "text": 1 } }))
        .await;
    a.expect_error("INVALID_MESSAGE", None, Some("chat:message"))
        .await;
}

#[tokio::test]
async fn undeclared_event_is_unknown_event_after_auth() {
    let server = start().await;
    let mut a = Client::authed(&server, "alice").await;
    for (i, event) in [
        "chat:nope",
        "stamp:other",
        "room:lock",
        "x",
        "custom.event_1-a",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("u{i}");
        a.send_json(json!({ "event": event, "id": id, "data": { "text": "hi" } }))
            .await;
        a.expect_error("UNKNOWN_EVENT", Some(&id), Some(event))
            .await;
    }
    a.assert_open().await;
}

#[tokio::test]
async fn undeclared_event_before_auth_is_not_authenticated() {
    let server = start().await;
    let mut a = Client::connect(&server).await;
    for event in ["chat:nope", "chat:message", "stamp:msg"] {
        a.send_json(json!({ "event": event, "id": "e", "data": { "text": "hi" } }))
            .await;
        a.expect_error("NOT_AUTHENTICATED", Some("e"), Some(event))
            .await;
    }
}

#[tokio::test]
async fn custom_event_of_a_plugin_not_in_the_chain_is_unknown_event() {
    // The default chain has no chat and no stamp.
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    for event in ["chat:message", "stamp:msg"] {
        a.send_json(
            json!({ "event": event, "id": "c", "data": { "text": "hi", "to": "x", "seq": 1 } }),
        )
        .await;
        a.expect_error("UNKNOWN_EVENT", Some("c"), Some(event))
            .await;
    }
}

#[tokio::test]
async fn valid_custom_event_answered_with_nothing_is_silence() {
    let server = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    a.send_json(
        json!({ "event": "stamp:msg", "id": "quiet", "data": { "to": b.client_id, "seq": 0 } }),
    )
    .await;
    assert_eq!(
        b.expect_event("stamp:msg").await,
        json!({ "from": a.client_id, "seq": 0, "version": "a", "count": 1 })
    );
    a.send_json(json!({ "event": "chat:message", "id": "quiet-chat", "data": { "text": "hi" } }))
        .await;
    assert_eq!(
        b.expect_event("chat:message").await,
        json!({ "from": a.client_id, "text": "hi" })
    );
    // No reply, no error, no echo: silence, and the connection is fine.
    a.expect_silence(QUIET).await;
    a.assert_open().await;
}

#[tokio::test]
async fn custom_event_replies_and_errors_keep_their_id() {
    let server = start().await;
    let (mut a, _b) = pair(&server, "r").await;
    a.send_json(
        json!({ "event": "stamp:msg", "id": "who", "data": { "to": "no-such-peer", "seq": 0 } }),
    )
    .await;
    a.expect_error("PEER_NOT_FOUND", Some("who"), Some("stamp:msg"))
        .await;
    a.send_json(
        json!({ "event": "stamp:msg", "id": "me", "data": { "to": a.client_id, "seq": 0 } }),
    )
    .await;
    a.expect_error("PEER_NOT_FOUND", Some("me"), Some("stamp:msg"))
        .await;
}
