use serde_json::{Value, json};
use switchboard_sdk::event::{ROOM_LEAVE, ROOM_STATE, SDP_OFFER};
use switchboard_sdk::testing::{TestHost, rejection, reply};
use switchboard_sdk::{ErrorCode, Identity, Outcome};

use super::*;

/// Room `a`: m1 (a moderator), c2 and c3. Room `b`: c4. No room: c5 and m6
/// (a moderator).
fn setup() -> TestHost {
    let host = TestHost::new();
    for (id, role, room) in [
        ("m1", Some(MODERATOR_ROLE), Some("a")),
        ("c2", None, Some("a")),
        ("c3", Some("admin"), Some("a")),
        ("c4", None, Some("b")),
        ("c5", None, None),
        ("m6", Some(MODERATOR_ROLE), None),
    ] {
        host.connect(id);
        host.authenticate(
            id,
            Identity {
                user_id: id.into(),
                role: role.map(Into::into),
                room_claim: None,
            },
        );
        if let Some(room) = room {
            host.join_room(id, room, "{}").unwrap();
        }
    }
    host
}

/// Calls `on_event` the way the host does: with the client as it is now.
fn call(host: &TestHost, client: &str, event: &str, data: Value) -> Outcome {
    Moderation.on_event(host, &host.client(client), event, &data.to_string())
}

fn join(host: &TestHost, client: &str, room: &str) -> Outcome {
    call(host, client, ROOM_JOIN, json!({ "roomId": room }))
}

fn kick(host: &TestHost, client: &str, target: &str) -> Outcome {
    call(host, client, KICK, json!({ "clientId": target }))
}

/// What `client` heard of `event`.
fn heard(host: &TestHost, client: &str, event: &str) -> Vec<Value> {
    host.sent_to(client)
        .into_iter()
        .filter(|(e, _)| e == event)
        .map(|(_, data)| data)
        .collect()
}

#[test]
fn lock_replies_locked_and_tells_the_other_members() {
    let host = setup();

    let outcome = call(&host, "m1", LOCK, json!({}));

    assert_eq!(
        reply(outcome),
        ("room:locked".to_owned(), json!({ "roomId": "a" }))
    );
    for member in ["c2", "c3"] {
        assert_eq!(
            heard(&host, member, "room:locked"),
            [json!({ "roomId": "a" })]
        );
    }
    assert!(heard(&host, "m1", "room:locked").is_empty(), "reply only");
    assert!(host.sent_to("c4").is_empty());
}

#[test]
fn join_of_a_locked_room_is_forbidden() {
    let host = setup();
    call(&host, "m1", LOCK, json!({}));

    let outcome = join(&host, "c5", "a");

    assert_eq!(
        outcome,
        Outcome::reject(ErrorCode::Forbidden, "room is locked")
    );
}

#[test]
fn a_locked_room_refuses_moderators_too() {
    let host = setup();
    call(&host, "m1", LOCK, json!({}));
    assert_eq!(rejection(join(&host, "m6", "a")), ErrorCode::Forbidden);
}

#[test]
fn join_of_an_open_room_passes_on_to_rooms() {
    let host = setup();
    call(&host, "m1", LOCK, json!({}));
    assert_eq!(join(&host, "c5", "b"), Outcome::Pass);
    assert_eq!(join(&host, "c5", "new-room"), Outcome::Pass);
}

#[test]
fn join_while_in_a_room_passes_so_already_in_room_wins_over_forbidden() {
    let host = setup();
    call(&host, "m1", LOCK, json!({}));
    assert_eq!(join(&host, "c4", "a"), Outcome::Pass);
}

#[test]
fn unlock_reopens_the_room_and_tells_the_other_members() {
    let host = setup();
    call(&host, "m1", LOCK, json!({}));

    let outcome = call(&host, "m1", UNLOCK, json!({}));

    assert_eq!(
        reply(outcome),
        ("room:unlocked".to_owned(), json!({ "roomId": "a" }))
    );
    assert_eq!(
        heard(&host, "c2", "room:unlocked"),
        [json!({ "roomId": "a" })]
    );
    assert_eq!(join(&host, "c5", "a"), Outcome::Pass);
}

#[test]
fn locking_twice_and_unlocking_an_open_room_are_answered_alike() {
    let host = setup();
    for (event, answer) in [
        (LOCK, "room:locked"),
        (LOCK, "room:locked"),
        (UNLOCK, "room:unlocked"),
        (UNLOCK, "room:unlocked"),
    ] {
        assert_eq!(reply(call(&host, "m1", event, json!({}))).0, answer);
    }
    assert_eq!(join(&host, "c5", "a"), Outcome::Pass);
}

#[test]
fn the_lock_is_kept_in_room_storage_not_in_the_plugin() {
    let host = setup();
    call(&host, "m1", LOCK, json!({}));
    assert_eq!(host.kv_get("a", LOCKED_KEY).as_deref(), Some("true"));

    // A fresh instance, as after a recycle or a hot swap, sees the lock.
    let fresh = Moderation::new("{}").unwrap();
    let outcome = fresh.on_event(
        &host,
        &host.client("c5"),
        ROOM_JOIN,
        &json!({ "roomId": "a" }).to_string(),
    );
    assert_eq!(rejection(outcome), ErrorCode::Forbidden);
}

#[test]
fn the_lock_ends_with_the_room() {
    let host = setup();
    call(&host, "m1", LOCK, json!({}));
    for member in ["m1", "c2", "c3"] {
        host.leave_room(member);
    }
    assert_eq!(join(&host, "c5", "a"), Outcome::Pass);
}

#[test]
fn moderation_outside_a_room_is_not_in_room_before_forbidden() {
    let host = setup();
    for client in ["m6", "c5"] {
        for (event, data) in [
            (LOCK, json!({})),
            (UNLOCK, json!({})),
            (KICK, json!({ "clientId": "c2" })),
        ] {
            assert_eq!(
                rejection(call(&host, client, event, data)),
                ErrorCode::NotInRoom,
                "{client} {event}"
            );
        }
    }
}

#[test]
fn members_without_the_moderator_role_are_forbidden() {
    let host = setup();
    for client in ["c2", "c3"] {
        for (event, data) in [
            (LOCK, json!({})),
            (UNLOCK, json!({})),
            (KICK, json!({ "clientId": "m1" })),
        ] {
            assert_eq!(
                rejection(call(&host, client, event, data)),
                ErrorCode::Forbidden,
                "{client} {event}"
            );
        }
    }
    assert!(host.kicks().is_empty());
    assert_eq!(join(&host, "c5", "a"), Outcome::Pass, "not locked");
}

#[test]
fn kick_closes_the_target_and_replies_kicked() {
    let host = setup();

    let outcome = kick(&host, "m1", "c2");

    assert_eq!(
        reply(outcome),
        (
            "room:kicked".to_owned(),
            json!({ "roomId": "a", "clientId": "c2" })
        )
    );
    assert_eq!(
        host.kicks(),
        [("c2".to_owned(), "kicked by a moderator".to_owned())]
    );
}

#[test]
fn kick_of_self_or_anyone_outside_the_room_is_peer_not_found() {
    let host = setup();
    for target in ["m1", "c4", "c5", "m6", "nobody"] {
        assert_eq!(
            rejection(kick(&host, "m1", target)),
            ErrorCode::PeerNotFound,
            "{target}"
        );
    }
    assert!(host.kicks().is_empty());
}

#[test]
fn kick_forbidden_comes_before_peer_not_found() {
    let host = setup();
    assert_eq!(rejection(kick(&host, "c2", "nobody")), ErrorCode::Forbidden);
}

#[test]
fn malformed_kick_data_is_invalid_message() {
    let host = setup();
    let client = host.client("m1");
    for data in ["", "[]", "{}", r#"{"clientId": 7}"#] {
        let outcome = Moderation.on_event(&host, &client, KICK, data);
        assert_eq!(rejection(outcome), ErrorCode::InvalidMessage, "{data:?}");
    }
}

#[test]
fn malformed_join_data_passes_on_to_rooms() {
    let host = setup();
    let client = host.client("c5");
    for data in ["", "{}", r#"{"roomId": 7}"#] {
        assert_eq!(
            Moderation.on_event(&host, &client, ROOM_JOIN, data),
            Outcome::Pass
        );
    }
}

#[test]
fn other_events_pass() {
    let host = setup();
    for event in [ROOM_LEAVE, ROOM_STATE, SDP_OFFER, "chat:message"] {
        assert_eq!(
            call(&host, "m1", event, json!({})),
            Outcome::Pass,
            "{event}"
        );
    }
}

#[test]
fn describes_join_without_a_schema_and_its_own_events_with_theirs() {
    let descriptor = Moderation::describe();
    assert_eq!(descriptor.name, "moderation");
    let events: Vec<(&str, Option<Value>)> = descriptor
        .events
        .iter()
        .map(|e| {
            let schema = e
                .schema
                .as_deref()
                .map(|s| serde_json::from_str(s).unwrap());
            (e.name.as_str(), schema)
        })
        .collect();
    let object = json!({ "type": "object" });
    assert_eq!(
        events,
        [
            (ROOM_JOIN, None),
            ("room:lock", Some(object.clone())),
            ("room:unlock", Some(object)),
            (
                "room:kick",
                Some(json!({
                    "type": "object",
                    "properties": { "clientId": { "type": "string", "minLength": 1 } },
                    "required": ["clientId"],
                }))
            ),
        ]
    );
    assert!(descriptor.hooks.is_empty());
}
