use serde_json::{Value, json};
use switchboard_sdk::testing::{TestHost, rejection};
use switchboard_sdk::{ErrorCode, Outcome};

use super::*;

/// c1, c2 and c3 in room `a`, c4 and c5 in room `b`, c6 in none.
fn setup() -> TestHost {
    TestHost::with_members(&[
        ("c1", Some("a")),
        ("c2", Some("a")),
        ("c3", Some("a")),
        ("c4", Some("b")),
        ("c5", Some("b")),
        ("c6", None),
    ])
}

/// Calls `on_event` the way the host does: with the client as it is now.
fn stamp(host: &TestHost, from: &str, data: Value) -> Outcome {
    Stamp.on_event(host, &host.client(from), EVENT, &data.to_string())
}

fn msg(host: &TestHost, from: &str, to: &str, seq: u64) -> Outcome {
    stamp(host, from, json!({ "to": to, "seq": seq }))
}

/// What `client` received of `stamp:msg`.
fn stamped_for(host: &TestHost, client: &str) -> Vec<Value> {
    host.sent_to(client)
        .into_iter()
        .filter(|(event, _)| event == EVENT)
        .map(|(_, data)| data)
        .collect()
}

#[test]
fn delivers_to_the_target_stamped_with_sender_seq_version_and_count() {
    let host = setup();

    let outcome = msg(&host, "c1", "c2", 7);

    assert_eq!(outcome, Outcome::Handled);
    assert_eq!(
        stamped_for(&host, "c2"),
        [json!({ "from": "c1", "seq": 7, "version": MARK, "count": 1 })]
    );
    assert!(
        stamped_for(&host, "c1").is_empty(),
        "the sender gets nothing"
    );
    assert!(stamped_for(&host, "c3").is_empty());
}

#[test]
fn count_runs_on_per_room_across_senders() {
    let host = setup();
    msg(&host, "c1", "c2", 0);
    msg(&host, "c3", "c2", 0);
    msg(&host, "c4", "c5", 0);
    msg(&host, "c2", "c1", 0);

    let counts = |client| -> Vec<Value> {
        stamped_for(&host, client)
            .into_iter()
            .map(|data| data["count"].clone())
            .collect()
    };
    assert_eq!(counts("c2"), [1, 2]);
    assert_eq!(counts("c1"), [3]);
    assert_eq!(counts("c5"), [1], "room b counts on its own");
    assert_eq!(host.kv_get("a", COUNT_KEY).as_deref(), Some("3"));
}

#[test]
fn count_continues_from_what_room_storage_holds() {
    let host = setup();
    // As left by the other version before a swap.
    host.kv_set("a", COUNT_KEY, "41");

    msg(&host, "c1", "c2", 1);

    assert_eq!(stamped_for(&host, "c2")[0]["count"], 42);
    assert_eq!(host.kv_get("a", COUNT_KEY).as_deref(), Some("42"));
}

#[test]
fn unreadable_stored_count_starts_again_from_one() {
    let host = setup();
    host.kv_set("a", COUNT_KEY, "many");
    msg(&host, "c1", "c2", 1);
    assert_eq!(stamped_for(&host, "c2")[0]["count"], 1);
}

#[test]
fn unknown_fields_are_not_forwarded() {
    let host = setup();
    stamp(
        &host,
        "c1",
        json!({ "to": "c2", "seq": 3, "version": "z", "count": 99, "extra": true }),
    );
    assert_eq!(
        stamped_for(&host, "c2"),
        [json!({ "from": "c1", "seq": 3, "version": MARK, "count": 1 })]
    );
}

#[test]
fn sender_outside_a_room_is_not_in_room_before_peer_not_found() {
    let host = setup();
    assert_eq!(
        rejection(msg(&host, "c6", "nobody", 0)),
        ErrorCode::NotInRoom
    );
}

#[test]
fn target_unknown_self_or_outside_the_room_is_peer_not_found() {
    let host = setup();
    for to in ["nobody", "c1", "c4", "c6"] {
        assert_eq!(
            rejection(msg(&host, "c1", to, 0)),
            ErrorCode::PeerNotFound,
            "to {to}"
        );
    }
    assert_eq!(
        host.kv_get("a", COUNT_KEY),
        None,
        "refusals are not counted"
    );
}

#[test]
fn malformed_data_is_invalid_message() {
    let host = setup();
    for data in [
        json!({}),
        json!({ "to": "c2" }),
        json!({ "seq": 1 }),
        json!({ "to": "c2", "seq": -1 }),
        json!({ "to": "c2", "seq": "1" }),
    ] {
        assert_eq!(
            rejection(stamp(&host, "c1", data.clone())),
            ErrorCode::InvalidMessage,
            "{data}"
        );
    }
}

#[test]
fn other_events_pass() {
    let host = setup();
    let data = json!({ "to": "c2", "seq": 1 }).to_string();
    let outcome = Stamp.on_event(&host, &host.client("c1"), "sdp:offer", &data);
    assert_eq!(outcome, Outcome::Pass);
}

#[test]
fn version_and_mark_follow_the_v2_feature() {
    let expected = if cfg!(feature = "v2") {
        ("2.0.0", "b")
    } else {
        ("1.0.0", "a")
    };
    assert_eq!((Stamp::describe().version.as_str(), MARK), expected);
}

#[test]
fn describes_stamp_msg_with_its_schema() {
    let descriptor = Stamp::describe();
    assert_eq!(descriptor.name, "stamp");
    assert_eq!(descriptor.events.len(), 1);
    assert_eq!(descriptor.events[0].name, "stamp:msg");
    let schema: Value =
        serde_json::from_str(descriptor.events[0].schema.as_deref().unwrap()).unwrap();
    assert_eq!(
        schema,
        json!({
            "type": "object",
            "properties": {
                "to": { "type": "string", "minLength": 1 },
                "seq": { "type": "integer", "minimum": 0 },
            },
            "required": ["to", "seq"],
        })
    );
    assert!(descriptor.hooks.is_empty());
}
