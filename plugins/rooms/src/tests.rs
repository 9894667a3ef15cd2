use serde_json::{Value, json};
use switchboard_sdk::event::{ROOM_PEER_JOINED, ROOM_PEER_LEFT, SDP_OFFER};
use switchboard_sdk::testing::{TestHost, rejection, reply};
use switchboard_sdk::{ErrorCode, Identity, Outcome};

use super::*;

fn rooms(config: &str) -> Rooms {
    Rooms::new(config).expect("valid config")
}

/// Calls `on_event` the way the host does: with the client as it is now.
fn call(plugin: &Rooms, host: &TestHost, client: &str, event: &str, data: Value) -> Outcome {
    plugin.on_event(host, &host.client(client), event, &data.to_string())
}

fn join(plugin: &Rooms, host: &TestHost, client: &str, room: &str) -> Outcome {
    call(plugin, host, client, ROOM_JOIN, json!({ "roomId": room }))
}

#[test]
fn first_joiner_gets_no_peers_and_itself_with_its_metadata() {
    let host = TestHost::new();
    host.add_client("c1", "alice");
    let data = json!({ "roomId": "standup", "metadata": { "name": "Alice" } });

    let (event, data) = reply(call(&rooms("{}"), &host, "c1", ROOM_JOIN, data));

    assert_eq!(event, ROOM_JOINED);
    assert_eq!(
        data,
        json!({
            "roomId": "standup",
            "peers": [],
            "self": { "clientId": "c1", "userId": "alice", "metadata": { "name": "Alice" } },
        })
    );
    assert_eq!(host.client("c1").room.as_deref(), Some("standup"));
}

#[test]
fn later_joiner_gets_the_others_oldest_first_and_they_hear_of_it() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    for (id, user) in [("c1", "alice"), ("c2", "bob"), ("c3", "carol")] {
        host.add_client(id, user);
    }
    join(&plugin, &host, "c1", "r");
    join(&plugin, &host, "c2", "r");

    let (_, data) = reply(join(&plugin, &host, "c3", "r"));

    let peers: Vec<_> = data["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["clientId"])
        .collect();
    assert_eq!(peers, ["c1", "c2"]);
    assert_eq!(
        data["peers"][0],
        json!({ "clientId": "c1", "userId": "alice", "metadata": {} })
    );
    let heard = host.sent_to("c2");
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].0, ROOM_PEER_JOINED);
    assert_eq!(heard[0].1["peer"]["clientId"], "c3");
    assert!(
        host.sent_to("c3").is_empty(),
        "the joiner hears only its reply"
    );
}

#[test]
fn join_while_in_a_room_is_already_in_room_before_forbidden() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    host.add_client("c1", "alice");
    join(&plugin, &host, "c1", "r");
    host.authenticate(
        "c1",
        Identity {
            user_id: "alice".into(),
            role: None,
            room_claim: Some("r".into()),
        },
    );

    assert_eq!(
        rejection(join(&plugin, &host, "c1", "other")),
        ErrorCode::AlreadyInRoom
    );
}

#[test]
fn room_claim_allows_its_room_only_and_is_forbidden_before_room_full() {
    let plugin = rooms(r#"{"capacity": 1}"#);
    let host = TestHost::new();
    host.add_client("c1", "alice");
    host.add_client("c2", "bob");
    join(&plugin, &host, "c1", "full");
    host.authenticate(
        "c2",
        Identity {
            user_id: "bob".into(),
            role: None,
            room_claim: Some("mine".into()),
        },
    );

    assert_eq!(
        rejection(join(&plugin, &host, "c2", "full")),
        ErrorCode::Forbidden
    );
    assert_eq!(reply(join(&plugin, &host, "c2", "mine")).0, ROOM_JOINED);
}

#[test]
fn a_room_at_capacity_is_room_full() {
    let plugin = rooms(r#"{"capacity": 2}"#);
    let host = TestHost::new();
    for id in ["c1", "c2", "c3"] {
        host.add_client(id, id);
    }
    join(&plugin, &host, "c1", "r");
    join(&plugin, &host, "c2", "r");

    assert_eq!(
        rejection(join(&plugin, &host, "c3", "r")),
        ErrorCode::RoomFull
    );
    assert_eq!(host.room_members("r").len(), 2);
}

#[test]
fn default_capacity_is_sixteen() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    for i in 0..17 {
        host.add_client(&format!("c{i}"), "u");
    }
    for i in 0..16 {
        assert_eq!(
            reply(join(&plugin, &host, &format!("c{i}"), "r")).0,
            ROOM_JOINED
        );
    }
    assert_eq!(
        rejection(join(&plugin, &host, "c16", "r")),
        ErrorCode::RoomFull
    );
}

#[test]
fn a_refusal_from_the_host_is_passed_on() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    host.add_client("c1", "alice");
    let before_joining = host.client("c1");
    join(&plugin, &host, "c1", "r");

    let data = json!({ "roomId": "other" }).to_string();
    let outcome = plugin.on_event(&host, &before_joining, ROOM_JOIN, &data);

    assert_eq!(rejection(outcome), ErrorCode::AlreadyInRoom);
}

#[test]
fn leave_replies_with_the_room_and_the_others_hear_of_it() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    host.add_client("c1", "alice");
    host.add_client("c2", "bob");
    join(&plugin, &host, "c1", "r");
    join(&plugin, &host, "c2", "r");

    let outcome = call(&plugin, &host, "c2", ROOM_LEAVE, json!({}));

    assert_eq!(
        reply(outcome),
        (ROOM_LEFT.to_owned(), json!({ "roomId": "r" }))
    );
    assert_eq!(
        host.sent_to("c1").last().unwrap(),
        &(
            ROOM_PEER_LEFT.to_owned(),
            json!({ "roomId": "r", "clientId": "c2", "reason": "left" })
        )
    );
    assert_eq!(host.client("c2").room, None);
}

#[test]
fn leave_and_state_outside_a_room_are_not_in_room() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    host.add_client("c1", "alice");
    for event in [ROOM_LEAVE, ROOM_STATE] {
        assert_eq!(
            rejection(call(&plugin, &host, "c1", event, json!({}))),
            ErrorCode::NotInRoom
        );
    }
}

#[test]
fn state_lists_the_others_oldest_first() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    for id in ["c1", "c2", "c3"] {
        host.add_client(id, &format!("user-{id}"));
        join(&plugin, &host, id, "r");
    }

    let (event, data) = reply(call(&plugin, &host, "c2", ROOM_STATE, json!({})));

    assert_eq!(event, ROOM_STATE);
    assert_eq!(
        data,
        json!({
            "roomId": "r",
            "peers": [
                { "clientId": "c1", "userId": "user-c1", "metadata": {} },
                { "clientId": "c3", "userId": "user-c3", "metadata": {} },
            ],
        })
    );
}

#[test]
fn malformed_join_data_is_invalid_message() {
    let plugin = rooms("{}");
    let host = TestHost::new();
    let client = host.add_client("c1", "alice");
    for data in [
        "",
        "{}",
        r#"{"roomId": 7}"#,
        r#"{"roomId": "r", "metadata": []}"#,
    ] {
        let outcome = plugin.on_event(&host, &client, ROOM_JOIN, data);
        assert_eq!(rejection(outcome), ErrorCode::InvalidMessage, "{data:?}");
    }
}

#[test]
fn other_events_pass() {
    let host = TestHost::new();
    let client = host.add_client("c1", "alice");
    assert_eq!(
        rooms("{}").on_event(&host, &client, SDP_OFFER, "{}"),
        Outcome::Pass
    );
}

#[test]
fn config_capacity_must_be_a_positive_integer() {
    assert_eq!(rooms("{}").capacity, 16);
    assert_eq!(rooms(r#"{"capacity": 3}"#).capacity, 3);
    for bad in [
        r#"{"capacity": 0}"#,
        r#"{"capacity": -1}"#,
        r#"{"capacity": 2.5}"#,
        r#"{"capacity": "3"}"#,
        "[]",
        "",
    ] {
        let error = Rooms::new(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(error.starts_with("rooms config"), "{error}");
    }
}

#[test]
fn describes_the_three_room_events() {
    let descriptor = Rooms::describe();
    assert_eq!(descriptor.name, "rooms");
    let events: Vec<_> = descriptor.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, [ROOM_JOIN, ROOM_LEAVE, ROOM_STATE]);
    assert!(descriptor.events.iter().all(|e| e.schema.is_none()));
    assert!(descriptor.hooks.is_empty());
}
