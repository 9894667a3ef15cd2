//! PROTOCOL.md, "Rooms": join, leave, state, the peer notifications and
//! the room policy's errors.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::token::token_for_room;
use switchboard_e2e::{Client, Server, chains};

const QUIET: Duration = Duration::from_millis(300);

/// The `Peer` object a client is expected to appear as.
fn peer(client: &Client, user: &str, metadata: Value) -> Value {
    json!({ "clientId": client.client_id, "userId": user, "metadata": metadata })
}

/// Joins `room` with `metadata`; returns the `room:joined` data.
async fn join_with(client: &mut Client, room: &str, metadata: Value) -> Value {
    client
        .send_json(json!({ "event": "room:join", "id": "jm", "data": { "roomId": room, "metadata": metadata } }))
        .await;
    client.expect_reply("room:joined", "jm").await
}

#[tokio::test]
async fn three_clients_join_and_see_each_other_oldest_first() {
    let server = Server::start_default().await;
    let mut a = Client::authed(&server, "alice").await;
    let mut b = Client::authed(&server, "bob").await;
    let mut c = Client::authed(&server, "carol").await;

    let joined = join_with(&mut a, "standup", json!({ "name": "A" })).await;
    assert_eq!(
        joined,
        json!({ "roomId": "standup", "peers": [], "self": peer(&a, "alice", json!({ "name": "A" })) })
    );

    let joined = join_with(&mut b, "standup", json!({ "name": "B", "muted": true })).await;
    assert_eq!(
        joined,
        json!({
            "roomId": "standup",
            "peers": [peer(&a, "alice", json!({ "name": "A" }))],
            "self": peer(&b, "bob", json!({ "name": "B", "muted": true })),
        })
    );
    assert_eq!(
        a.expect_event("room:peer-joined").await,
        json!({ "roomId": "standup", "peer": peer(&b, "bob", json!({ "name": "B", "muted": true })) })
    );

    let joined = c.join("standup").await;
    assert_eq!(
        joined,
        json!({
            "roomId": "standup",
            "peers": [
                peer(&a, "alice", json!({ "name": "A" })),
                peer(&b, "bob", json!({ "name": "B", "muted": true })),
            ],
            "self": peer(&c, "carol", json!({})),
        })
    );
    let carol = json!({ "roomId": "standup", "peer": peer(&c, "carol", json!({})) });
    assert_eq!(a.expect_event("room:peer-joined").await, carol);
    assert_eq!(b.expect_event("room:peer-joined").await, carol);
    c.expect_silence(QUIET).await;
}

#[tokio::test]
async fn joiner_gets_room_joined_before_others_get_peer_joined() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::authed(&server, "bob").await;
    b.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "r" } }))
        .await;
    // As soon as alice hears of bob she offers to him; bob, reading only
    // now, must find his room:joined ahead of that offer.
    a.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "v=0" } }))
        .await;
    b.expect_reply("room:joined", "j").await;
    b.expect_event("sdp:offer").await;
}

#[tokio::test]
async fn peer_joined_goes_to_every_other_member_and_no_other_room() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut elsewhere = Client::joined(&server, "eve", "other").await;
    let b = Client::joined(&server, "bob", "r").await;
    assert_eq!(
        a.expect_event("room:peer-joined").await["peer"]["clientId"],
        b.client_id.as_str()
    );
    elsewhere.expect_silence(QUIET).await;
}

#[tokio::test]
async fn room_state_lists_the_others_but_not_the_caller() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::authed(&server, "bob").await;
    join_with(&mut b, "r", json!({ "k": [1, 2] })).await;
    a.expect_event("room:peer-joined").await;

    a.send_json(json!({ "event": "room:state", "id": "s1" }))
        .await;
    assert_eq!(
        a.expect_reply("room:state", "s1").await,
        json!({ "roomId": "r", "peers": [peer(&b, "bob", json!({ "k": [1, 2] }))] })
    );
    b.send_json(json!({ "event": "room:state", "id": "s2", "data": {} }))
        .await;
    assert_eq!(
        b.expect_reply("room:state", "s2").await,
        json!({ "roomId": "r", "peers": [peer(&a, "alice", json!({}))] })
    );
}

#[tokio::test]
async fn leave_answers_room_left_and_tells_the_others_left() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::joined(&server, "bob", "r").await;
    let mut c = Client::joined(&server, "carol", "r").await;
    a.expect_event("room:peer-joined").await;
    a.expect_event("room:peer-joined").await;
    b.expect_event("room:peer-joined").await;

    b.send_json(json!({ "event": "room:leave", "id": "l", "data": {} }))
        .await;
    assert_eq!(
        b.expect_reply("room:left", "l").await,
        json!({ "roomId": "r" })
    );
    let left = json!({ "roomId": "r", "clientId": b.client_id, "reason": "left" });
    assert_eq!(a.expect_event("room:peer-left").await, left);
    assert_eq!(c.expect_event("room:peer-left").await, left);
    b.expect_silence(QUIET).await;

    a.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    assert_eq!(
        a.expect_reply("room:state", "s").await,
        json!({ "roomId": "r", "peers": [peer(&c, "carol", json!({}))] })
    );
}

#[tokio::test]
async fn after_leaving_a_client_gets_nothing_from_the_room() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    b.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    b.expect_reply("room:left", "l").await;
    a.expect_event("room:peer-left").await;
    let _c = Client::joined(&server, "carol", "r").await;
    a.expect_event("room:peer-joined").await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn client_can_join_another_room_after_leaving() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "one").await;
    a.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    a.expect_reply("room:left", "l").await;
    assert_eq!(a.join("two").await["roomId"], "two");
}

#[tokio::test]
async fn join_while_in_a_room_is_already_in_room() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "one").await;
    for room in ["one", "two"] {
        a.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": room } }))
            .await;
        a.expect_error("ALREADY_IN_ROOM", Some("j"), Some("room:join"))
            .await;
    }
    a.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    assert_eq!(a.expect_reply("room:state", "s").await["roomId"], "one");
}

#[tokio::test]
async fn leave_and_state_outside_a_room_are_not_in_room() {
    let server = Server::start_default().await;
    let mut a = Client::authed(&server, "alice").await;
    for event in ["room:leave", "room:state"] {
        a.send_json(json!({ "event": event, "id": "n", "data": {} }))
            .await;
        a.expect_error("NOT_IN_ROOM", Some("n"), Some(event)).await;
    }
    a.join("r").await;
    a.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    a.expect_reply("room:left", "l").await;
    a.send_json(json!({ "event": "room:leave", "id": "n2" }))
        .await;
    a.expect_error("NOT_IN_ROOM", Some("n2"), Some("room:leave"))
        .await;
}

#[tokio::test]
async fn seventeenth_member_gets_room_full_by_default() {
    let server = Server::start_default().await;
    let mut members = Vec::new();
    for i in 0..16 {
        members.push(Client::joined(&server, &format!("user{i}"), "big").await);
    }
    let mut late = Client::authed(&server, "late").await;
    late.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "big" } }))
        .await;
    late.expect_error("ROOM_FULL", Some("j"), Some("room:join"))
        .await;

    // The refused join told nobody anything: the first member saw exactly
    // the 15 others join.
    let first = &mut members[0];
    for _ in 0..15 {
        first.expect_event("room:peer-joined").await;
    }
    first.expect_silence(QUIET).await;

    // Once someone leaves there is room again.
    let leaver = members.pop().unwrap();
    leaver.close(1000).await;
    members[0].expect_event("room:peer-left").await;
    assert_eq!(
        late.join("big").await["peers"].as_array().unwrap().len(),
        15
    );
}

#[tokio::test]
async fn configured_capacity_is_enforced() {
    let server = Server::start(&chains::rooms_capped("", 2)).await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let _b = Client::joined(&server, "bob", "r").await;
    let mut c = Client::authed(&server, "carol").await;
    c.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "r" } }))
        .await;
    c.expect_error("ROOM_FULL", Some("j"), Some("room:join"))
        .await;
    a.expect_event("room:peer-joined").await;
    a.expect_silence(QUIET).await;
    // Capacity is per room.
    assert_eq!(c.join("other").await["roomId"], "other");
}

#[tokio::test]
async fn room_claim_naming_another_room_is_forbidden() {
    let server = Server::start_default().await;
    let mut a = Client::connect(&server).await;
    assert_eq!(
        a.auth(json!({ "token": token_for_room("alice", "standup") }))
            .await["success"],
        true
    );
    a.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "retro" } }))
        .await;
    a.expect_error("FORBIDDEN", Some("j"), Some("room:join"))
        .await;
    assert_eq!(a.join("standup").await["roomId"], "standup");
}

#[tokio::test]
async fn one_user_with_two_connections_is_two_peers() {
    let server = Server::start_default().await;
    let mut laptop = Client::joined(&server, "alice", "r").await;
    let mut phone = Client::authed(&server, "alice").await;
    let joined = phone.join("r").await;
    assert_ne!(laptop.client_id, phone.client_id);
    assert_eq!(joined["peers"], json!([peer(&laptop, "alice", json!({}))]));
    assert_eq!(joined["self"], peer(&phone, "alice", json!({})));
    assert_eq!(
        laptop.expect_event("room:peer-joined").await,
        json!({ "roomId": "r", "peer": peer(&phone, "alice", json!({})) })
    );
    // Either leaves alone.
    phone
        .send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    phone.expect_reply("room:left", "l").await;
    assert_eq!(
        laptop.expect_event("room:peer-left").await["clientId"],
        phone.client_id.as_str()
    );
}

#[tokio::test]
async fn room_disappears_when_its_last_member_leaves() {
    let server = Server::start_default().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    a.expect_reply("room:left", "l").await;
    b.expect_event("room:peer-left").await;
    b.close(1000).await;

    let mut c = Client::authed(&server, "carol").await;
    assert_eq!(c.join("r").await["peers"], json!([]));
}

#[tokio::test]
async fn metadata_defaults_to_an_empty_object() {
    let server = Server::start_default().await;
    let mut a = Client::authed(&server, "alice").await;
    let joined = a.join("r").await;
    assert_eq!(joined["self"], peer(&a, "alice", json!({})));
}
