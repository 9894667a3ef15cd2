//! PROTOCOL.md, "Envelope" and "Order of checks".

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::token::{token, token_for_room};
use switchboard_e2e::{Client, Server, chains};

const QUIET: Duration = Duration::from_millis(300);

/// Sends each raw text and expects `INVALID_MESSAGE` with the given id and
/// event for it.
async fn expect_each_invalid(client: &mut Client, cases: &[(&str, Option<&str>, Option<&str>)]) {
    for (raw, id, event) in cases {
        client.send_text(*raw).await;
        let data = client.expect_error("INVALID_MESSAGE", *id, *event).await;
        assert!(
            !data["message"].as_str().unwrap().is_empty(),
            "empty message for {raw}"
        );
    }
    client.assert_open().await;
}

// ---- envelope shape ----

#[tokio::test]
async fn unknown_top_level_field_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[(
            r#"{"event":"ping","id":"e1","data":{},"extra":1}"#,
            Some("e1"),
            Some("ping"),
        )],
    )
    .await;
}

#[tokio::test]
async fn unknown_top_level_field_rejects_an_otherwise_valid_request() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    // A typo: roomId at the top level instead of inside data.
    client
        .send_json(json!({ "event": "room:join", "id": "j1", "data": {}, "roomId": "r" }))
        .await;
    client
        .expect_error("INVALID_MESSAGE", Some("j1"), Some("room:join"))
        .await;
    client
        .send_json(json!({ "event": "room:state", "id": "s1" }))
        .await;
    client
        .expect_error("NOT_IN_ROOM", Some("s1"), Some("room:state"))
        .await;
}

#[tokio::test]
async fn duplicate_top_level_key_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[(
            r#"{"event":"ping","id":"d1","data":{},"data":{}}"#,
            Some("d1"),
            Some("ping"),
        )],
    )
    .await;
}

#[tokio::test]
async fn null_data_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[(
            r#"{"event":"ping","id":"n1","data":null}"#,
            Some("n1"),
            Some("ping"),
        )],
    )
    .await;
}

#[tokio::test]
async fn data_that_is_not_an_object_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            (
                r#"{"event":"ping","id":"a","data":[1]}"#,
                Some("a"),
                Some("ping"),
            ),
            (
                r#"{"event":"ping","id":"b","data":"x"}"#,
                Some("b"),
                Some("ping"),
            ),
            (
                r#"{"event":"ping","id":"c","data":5}"#,
                Some("c"),
                Some("ping"),
            ),
            (
                r#"{"event":"ping","id":"d","data":true}"#,
                Some("d"),
                Some("ping"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn missing_event_is_invalid_message_with_id_and_no_event() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            (r#"{"id":"m1","data":{}}"#, Some("m1"), None),
            (r#"{"id":"m2"}"#, Some("m2"), None),
        ],
    )
    .await;
}

#[tokio::test]
async fn event_that_is_not_a_string_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            (r#"{"event":5,"id":"t1"}"#, Some("t1"), None),
            (r#"{"event":null,"id":"t2"}"#, Some("t2"), None),
            (r#"{"event":["ping"],"id":"t3"}"#, Some("t3"), None),
        ],
    )
    .await;
}

#[tokio::test]
async fn event_with_characters_outside_the_set_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            (r#"{"event":"Ping","id":"c1"}"#, Some("c1"), None),
            (r#"{"event":"room join","id":"c2"}"#, Some("c2"), None),
            (r#"{"event":"room/join","id":"c3"}"#, Some("c3"), None),
            (r#"{"event":"pïng","id":"c4"}"#, Some("c4"), None),
            (r#"{"event":"","id":"c5"}"#, Some("c5"), None),
        ],
    )
    .await;
}

#[tokio::test]
async fn event_of_65_chars_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let event = "e".repeat(65);
    let raw = json!({ "event": event, "id": "l1" }).to_string();
    expect_each_invalid(&mut client, &[(&raw, Some("l1"), None)]).await;
}

#[tokio::test]
async fn event_of_64_chars_passes_the_envelope_check() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let event = "e".repeat(64);
    client
        .send_json(json!({ "event": event, "id": "l1" }))
        .await;
    client
        .expect_error("NOT_AUTHENTICATED", Some("l1"), Some(&event))
        .await;
    let response = client.auth(json!({ "token": token("alice") })).await;
    assert_eq!(response["success"], true, "{response}");
    client
        .send_json(json!({ "event": event, "id": "l2" }))
        .await;
    client
        .expect_error("UNKNOWN_EVENT", Some("l2"), Some(&event))
        .await;
}

#[tokio::test]
async fn event_may_use_every_allowed_character() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    let event = "abcdefghijklmnopqrstuvwxyz0123456789:._-";
    client
        .send_json(json!({ "event": event, "id": "x1" }))
        .await;
    client
        .expect_error("UNKNOWN_EVENT", Some("x1"), Some(event))
        .await;
}

#[tokio::test]
async fn empty_id_is_invalid_message_and_not_echoed() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[(r#"{"event":"ping","id":""}"#, None, Some("ping"))],
    )
    .await;
}

#[tokio::test]
async fn id_of_65_chars_is_invalid_message_and_not_echoed() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let raw = json!({ "event": "ping", "id": "i".repeat(65) }).to_string();
    expect_each_invalid(&mut client, &[(&raw, None, Some("ping"))]).await;
}

#[tokio::test]
async fn id_that_is_not_a_string_is_invalid_message_and_not_echoed() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            (r#"{"event":"ping","id":5}"#, None, Some("ping")),
            (r#"{"event":"ping","id":null}"#, None, Some("ping")),
            (r#"{"event":"ping","id":{"a":1}}"#, None, Some("ping")),
        ],
    )
    .await;
}

#[tokio::test]
async fn id_of_64_chars_is_echoed() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let id = "i".repeat(64);
    client.send_json(json!({ "event": "ping", "id": id })).await;
    client.expect_reply("pong", &id).await;
}

#[tokio::test]
async fn id_length_counts_characters_not_bytes() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let id = "é".repeat(64); // 128 bytes, 64 characters
    client.send_json(json!({ "event": "ping", "id": id })).await;
    client.expect_reply("pong", &id).await;
    let raw = json!({ "event": "ping", "id": "é".repeat(65) }).to_string();
    expect_each_invalid(&mut client, &[(&raw, None, Some("ping"))]).await;
}

#[tokio::test]
async fn invalid_id_and_invalid_event_give_a_bare_error() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[(r#"{"event":"Bad Event","id":""}"#, None, None)],
    )
    .await;
}

#[tokio::test]
async fn text_that_is_not_json_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            ("not json", None, None),
            ("{", None, None),
            (r#"{"event":"ping","id":"t1""#, None, None),
            ("", None, None),
        ],
    )
    .await;
}

#[tokio::test]
async fn json_that_is_not_an_object_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            (r#"[{"event":"ping","id":"a1"}]"#, None, None),
            (r#""ping""#, None, None),
            ("42", None, None),
            ("null", None, None),
            ("true", None, None),
        ],
    )
    .await;
}

// ---- data ----

#[tokio::test]
async fn missing_data_is_treated_as_empty_object() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client.send_text(r#"{"event":"ping","id":"p1"}"#).await;
    client.expect_reply("pong", "p1").await;

    let response = client.auth(json!({ "token": token("alice") })).await;
    assert_eq!(response["success"], true, "{response}");
    client
        .send_text(r#"{"event":"room:state","id":"s1"}"#)
        .await;
    client
        .expect_error("NOT_IN_ROOM", Some("s1"), Some("room:state"))
        .await;
    client.join("r").await;
    client
        .send_text(r#"{"event":"room:state","id":"s2"}"#)
        .await;
    assert_eq!(
        client.expect_reply("room:state", "s2").await,
        json!({ "roomId": "r", "peers": [] })
    );
    client
        .send_text(r#"{"event":"room:leave","id":"l1"}"#)
        .await;
    assert_eq!(
        client.expect_reply("room:left", "l1").await,
        json!({ "roomId": "r" })
    );
}

#[tokio::test]
async fn missing_data_on_an_event_with_required_fields_is_a_schema_error() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    client.send_text(r#"{"event":"room:join","id":"j1"}"#).await;
    client
        .expect_error("INVALID_MESSAGE", Some("j1"), Some("room:join"))
        .await;
}

#[tokio::test]
async fn unknown_fields_inside_data_are_ignored() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client
        .send_json(json!({
            "event": "ping",
            "id": "p1",
            "data": { "anything": [1, 2], "nested": { "a": null } },
        }))
        .await;
    let pong = client.expect_reply("pong", "p1").await;
    assert_eq!(
        pong.as_object().unwrap().len(),
        1,
        "pong data is exactly {{serverTime}}: {pong}"
    );

    let response = client
        .auth(json!({ "token": token("alice"), "remember": true }))
        .await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));

    client
        .send_json(json!({ "event": "room:join", "id": "j1", "data": { "roomId": "r", "colour": "blue" } }))
        .await;
    let joined = client.expect_reply("room:joined", "j1").await;
    assert_eq!(joined["roomId"], "r");
    assert_eq!(
        joined["self"]["metadata"],
        json!({}),
        "unknown field leaked into metadata: {joined}"
    );

    client
        .send_json(json!({ "event": "room:state", "id": "s1", "data": { "verbose": true } }))
        .await;
    client.expect_reply("room:state", "s1").await;
    client
        .send_json(json!({ "event": "room:leave", "id": "l1", "data": { "why": "bored" } }))
        .await;
    assert_eq!(
        client.expect_reply("room:left", "l1").await,
        json!({ "roomId": "r" })
    );
}

#[tokio::test]
async fn unknown_fields_inside_relay_data_are_never_forwarded() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;

    b.send_json(json!({
        "event": "sdp:offer",
        "data": { "to": a.client_id, "sdp": "v=0", "from": "spoofed", "secret": 42 }
    }))
    .await;
    assert_eq!(
        a.expect_event("sdp:offer").await,
        json!({ "from": b.client_id, "sdp": "v=0" })
    );

    b.send_json(json!({
        "event": "ice:candidate",
        "data": {
            "to": a.client_id,
            "candidate": { "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host" },
            "extra": 1,
        }
    }))
    .await;
    let ice = a.expect_event("ice:candidate").await;
    assert_eq!(
        ice.as_object().unwrap().len(),
        2,
        "ice:candidate is {{from, candidate}}: {ice}"
    );
    assert_eq!(ice["from"], b.client_id.as_str());
    assert_eq!(
        ice["candidate"]["candidate"],
        "candidate:1 1 udp 1 1.2.3.4 5 typ host"
    );
}

#[tokio::test]
async fn duplicate_key_inside_data_keeps_the_last_value() {
    let server = Server::start_default().await;
    let mut a = Client::authed(&server, "alice").await;
    a.send_text(r#"{"event":"room:join","id":"j1","data":{"roomId":"first","roomId":"second"}}"#)
        .await;
    assert_eq!(
        a.expect_reply("room:joined", "j1").await["roomId"],
        "second"
    );

    let mut b = Client::joined(&server, "bob", "second").await;
    a.expect_event("room:peer-joined").await;
    let raw = format!(
        r#"{{"event":"sdp:offer","data":{{"to":"{}","sdp":"first","sdp":"second"}}}}"#,
        a.client_id
    );
    b.send_text(raw).await;
    assert_eq!(
        a.expect_event("sdp:offer").await,
        json!({ "from": b.client_id, "sdp": "second" })
    );
}

// ---- ids ----

#[tokio::test]
async fn replies_carry_the_request_id() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client
        .send_json(json!({ "event": "ping", "id": "c-1" }))
        .await;
    client.expect_reply("pong", "c-1").await;
    client
        .send_json(
            json!({ "event": "auth:request", "id": "c-2", "data": { "token": token("alice") } }),
        )
        .await;
    client.expect_reply("auth:response", "c-2").await;
    client
        .send_json(json!({ "event": "room:join", "id": "c-3", "data": { "roomId": "r" } }))
        .await;
    client.expect_reply("room:joined", "c-3").await;
    client
        .send_json(json!({ "event": "room:state", "id": "c-4" }))
        .await;
    client.expect_reply("room:state", "c-4").await;
    client
        .send_json(json!({ "event": "room:leave", "id": "c-5" }))
        .await;
    client.expect_reply("room:left", "c-5").await;
    client
        .send_json(json!({ "event": "room:leave", "id": "c-6" }))
        .await;
    client
        .expect_error("NOT_IN_ROOM", Some("c-6"), Some("room:leave"))
        .await;
}

#[tokio::test]
async fn replies_to_requests_without_id_have_no_id() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client.send_json(json!({ "event": "ping" })).await;
    client.expect_event("pong").await;
    client
        .send_json(json!({ "event": "auth:request", "data": { "token": token("alice") } }))
        .await;
    client.expect_event("auth:response").await;
    client
        .send_json(json!({ "event": "room:join", "data": { "roomId": "r" } }))
        .await;
    client.expect_event("room:joined").await;
    client.send_json(json!({ "event": "room:state" })).await;
    client.expect_event("room:state").await;
    client.send_json(json!({ "event": "room:leave" })).await;
    client.expect_event("room:left").await;
    client.send_json(json!({ "event": "room:leave" })).await;
    client
        .expect_error("NOT_IN_ROOM", None, Some("room:leave"))
        .await;
}

#[tokio::test]
async fn server_initiated_messages_have_no_id() {
    let server = Server::start_default().await;
    // `connected` is read by expect_event, which refuses an `id`.
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::authed(&server, "bob").await;
    b.send_json(json!({ "event": "room:join", "id": "join-b", "data": { "roomId": "r" } }))
        .await;
    b.expect_reply("room:joined", "join-b").await;
    a.expect_event("room:peer-joined").await;

    b.send_json(json!({ "event": "sdp:offer", "id": "offer-b", "data": { "to": a.client_id, "sdp": "v=0" } }))
        .await;
    a.expect_event("sdp:offer").await;
    b.send_json(json!({ "event": "room:leave", "id": "leave-b" }))
        .await;
    b.expect_reply("room:left", "leave-b").await;
    a.expect_event("room:peer-left").await;
    b.expect_silence(QUIET).await;
}

// ---- order of checks ----

#[tokio::test]
async fn invalid_envelope_before_auth_is_invalid_message_not_not_authenticated() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    expect_each_invalid(
        &mut client,
        &[
            (
                r#"{"event":"room:join","id":"o1","data":null}"#,
                Some("o1"),
                Some("room:join"),
            ),
            (
                r#"{"event":"room:join","id":"o2","data":{"roomId":"r"},"x":1}"#,
                Some("o2"),
                Some("room:join"),
            ),
            (r#"{"event":"No Such","id":"o3"}"#, Some("o3"), None),
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_event_before_auth_is_not_authenticated() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client
        .send_json(json!({ "event": "no:such-event", "id": "u1", "data": {} }))
        .await;
    client
        .expect_error("NOT_AUTHENTICATED", Some("u1"), Some("no:such-event"))
        .await;
    client.assert_open().await;
}

#[tokio::test]
async fn unknown_event_after_auth_is_unknown_event() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    client
        .send_json(json!({ "event": "no:such-event", "id": "u1", "data": {} }))
        .await;
    client
        .expect_error("UNKNOWN_EVENT", Some("u1"), Some("no:such-event"))
        .await;
    // Not a defined event: custom events such as chat are not enabled by default.
    client
        .send_json(json!({ "event": "chat:message", "id": "u2", "data": { "text": "hi" } }))
        .await;
    client
        .expect_error("UNKNOWN_EVENT", Some("u2"), Some("chat:message"))
        .await;
    client.assert_open().await;
}

#[tokio::test]
async fn invalid_envelope_of_unknown_event_after_auth_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    expect_each_invalid(
        &mut client,
        &[(
            r#"{"event":"no:such","id":"u1","data":null}"#,
            Some("u1"),
            Some("no:such"),
        )],
    )
    .await;
}

#[tokio::test]
async fn schema_error_before_auth_is_not_authenticated() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client
        .send_json(json!({ "event": "room:join", "id": "j1", "data": {} }))
        .await;
    client
        .expect_error("NOT_AUTHENTICATED", Some("j1"), Some("room:join"))
        .await;
    client
        .send_json(json!({ "event": "sdp:offer", "id": "o1", "data": { "sdp": "" } }))
        .await;
    client
        .expect_error("NOT_AUTHENTICATED", Some("o1"), Some("sdp:offer"))
        .await;
}

#[tokio::test]
async fn room_join_schema_errors_are_invalid_message_with_id_and_event() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    let cases: [(&str, Value); 6] = [
        ("long", json!({ "roomId": "r".repeat(129) })),
        ("missing", json!({})),
        ("empty", json!({ "roomId": "" })),
        ("number", json!({ "roomId": 5 })),
        ("null", json!({ "roomId": null })),
        (
            "metadata",
            json!({ "roomId": "r", "metadata": "not an object" }),
        ),
    ];
    for (id, data) in cases {
        client
            .send_json(json!({ "event": "room:join", "id": id, "data": data }))
            .await;
        client
            .expect_error("INVALID_MESSAGE", Some(id), Some("room:join"))
            .await;
    }
    // None of them joined anything.
    client
        .send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    client
        .expect_error("NOT_IN_ROOM", Some("s"), Some("room:state"))
        .await;
}

#[tokio::test]
async fn room_id_length_counts_characters_not_bytes() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    let room = "é".repeat(128); // 256 bytes, 128 characters
    assert_eq!(client.join(&room).await["roomId"], room.as_str());
    client
        .send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    client.expect_reply("room:left", "l").await;
    client
        .send_json(
            json!({ "event": "room:join", "id": "j", "data": { "roomId": "é".repeat(129) } }),
        )
        .await;
    client
        .expect_error("INVALID_MESSAGE", Some("j"), Some("room:join"))
        .await;
}

#[tokio::test]
async fn schema_error_comes_before_not_in_room() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    client
        .send_json(
            json!({ "event": "sdp:offer", "id": "o1", "data": { "to": "someone", "sdp": "" } }),
        )
        .await;
    client
        .expect_error("INVALID_MESSAGE", Some("o1"), Some("sdp:offer"))
        .await;
    client
        .send_json(json!({ "event": "room:leave", "id": "l1", "data": null }))
        .await;
    client
        .expect_error("INVALID_MESSAGE", Some("l1"), Some("room:leave"))
        .await;
}

#[tokio::test]
async fn already_in_room_comes_before_forbidden() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client
        .auth(json!({ "token": token_for_room("alice", "a") }))
        .await;
    assert_eq!(response["success"], true);
    client.join("a").await;
    client
        .send_json(json!({ "event": "room:join", "id": "j2", "data": { "roomId": "b" } }))
        .await;
    client
        .expect_error("ALREADY_IN_ROOM", Some("j2"), Some("room:join"))
        .await;
}

#[tokio::test]
async fn forbidden_comes_before_room_full() {
    let server = Server::start(&chains::rooms_capped("", 2)).await;
    let _a = Client::joined(&server, "alice", "full").await;
    let _b = Client::joined(&server, "bob", "full").await;
    let mut c = Client::connect(&server).await;
    assert_eq!(
        c.auth(json!({ "token": token_for_room("carol", "elsewhere") }))
            .await["success"],
        true
    );
    c.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "full" } }))
        .await;
    c.expect_error("FORBIDDEN", Some("j"), Some("room:join"))
        .await;
}

#[tokio::test]
async fn not_in_room_comes_before_peer_not_found() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    for event in ["sdp:offer", "sdp:answer"] {
        client
            .send_json(
                json!({ "event": event, "id": "r1", "data": { "to": "nobody", "sdp": "v=0" } }),
            )
            .await;
        client
            .expect_error("NOT_IN_ROOM", Some("r1"), Some(event))
            .await;
    }
    client
        .send_json(json!({
            "event": "ice:candidate",
            "id": "r2",
            "data": { "to": "nobody", "candidate": { "candidate": "c" } },
        }))
        .await;
    client
        .expect_error("NOT_IN_ROOM", Some("r2"), Some("ice:candidate"))
        .await;
}
