use serde_json::{Value, json};
use switchboard_sdk::event::{ROOM_LEAVE, SDP_OFFER};
use switchboard_sdk::testing::{TestHost, Timer};
use switchboard_sdk::{Outcome, Peer};

use super::*;

fn ttl(ms: u32) -> RoomTtl {
    RoomTtl::new(&json!({ "ttl_ms": ms }).to_string()).expect("valid config")
}

/// c1 and c2 in room `a`, c3 in room `b`, c4 and c5 in none.
fn setup() -> TestHost {
    TestHost::with_members(&[
        ("c1", Some("a")),
        ("c2", Some("a")),
        ("c3", Some("b")),
        ("c4", None),
        ("c5", None),
    ])
}

/// Calls `on_event` the way the host does: with the client as it is now.
fn join(plugin: &RoomTtl, host: &TestHost, client: &str, room: &str) -> Outcome {
    let data = json!({ "roomId": room }).to_string();
    plugin.on_event(host, &host.client(client), ROOM_JOIN, &data)
}

fn expire_timer(room: &str, delay_ms: u32) -> Timer {
    Timer {
        room: room.into(),
        delay_ms,
        tag: EXPIRE.into(),
    }
}

fn member_ids(peers: Vec<Peer>) -> Vec<String> {
    peers.into_iter().map(|peer| peer.client_id).collect()
}

#[test]
fn a_join_that_creates_the_room_sets_the_expire_timer_and_passes() {
    let host = setup();

    let outcome = join(&ttl(60_000), &host, "c4", "new-room");

    assert_eq!(outcome, Outcome::Pass);
    assert_eq!(host.timers(), [expire_timer("new-room", 60_000)]);
}

#[test]
fn a_join_of_a_room_with_members_sets_no_timer_and_passes() {
    let host = setup();
    assert_eq!(join(&ttl(1000), &host, "c4", "a"), Outcome::Pass);
    assert!(host.timers().is_empty());
}

#[test]
fn a_join_while_in_a_room_sets_no_timer_and_passes() {
    let host = setup();
    assert_eq!(join(&ttl(1000), &host, "c3", "new-room"), Outcome::Pass);
    assert!(host.timers().is_empty());
}

#[test]
fn each_new_room_gets_its_own_timer() {
    let plugin = ttl(500);
    let host = setup();
    join(&plugin, &host, "c4", "x");
    join(&plugin, &host, "c5", "y");
    assert_eq!(
        host.timers(),
        [expire_timer("x", 500), expire_timer("y", 500)]
    );
}

#[test]
fn malformed_join_data_sets_no_timer_and_passes() {
    let host = setup();
    let client = host.client("c4");
    for data in ["", "{}", r#"{"roomId": 7}"#] {
        assert_eq!(
            ttl(1).on_event(&host, &client, ROOM_JOIN, data),
            Outcome::Pass
        );
    }
    assert!(host.timers().is_empty());
}

#[test]
fn expiry_tells_every_member_then_kicks_them_all() {
    let host = setup();

    ttl(1000).on_timer(&host, "a", EXPIRE);

    for member in ["c1", "c2"] {
        assert_eq!(
            host.sent_to(member).last(),
            Some(&(
                "room:closed".to_owned(),
                json!({ "roomId": "a", "reason": "ttl" })
            )),
            "{member}"
        );
    }
    assert_eq!(
        host.kicks(),
        [
            ("c1".to_owned(), "room expired".to_owned()),
            ("c2".to_owned(), "room expired".to_owned()),
        ]
    );
}

#[test]
fn expiry_leaves_other_rooms_alone() {
    let host = setup();
    ttl(1000).on_timer(&host, "a", EXPIRE);
    assert!(host.sent_to("c3").is_empty());
    assert!(host.sent_to("c4").is_empty());
    assert_eq!(member_ids(host.room_members("b")), ["c3"]);
}

#[test]
fn expiry_of_a_room_that_is_gone_does_nothing() {
    let host = setup();
    let before = host.sent().len();
    ttl(1000).on_timer(&host, "gone", EXPIRE);
    assert_eq!(host.sent().len(), before);
    assert!(host.kicks().is_empty());
}

#[test]
fn timers_with_other_tags_are_ignored() {
    let host = setup();
    let before = host.sent().len();
    ttl(1000).on_timer(&host, "a", "tick");
    assert_eq!(host.sent().len(), before);
    assert!(host.kicks().is_empty());
}

#[test]
fn other_events_pass_and_set_no_timer() {
    let host = setup();
    let client = host.client("c4");
    for event in [ROOM_LEAVE, SDP_OFFER, "chat:message"] {
        let data = json!({ "roomId": "new-room" }).to_string();
        assert_eq!(ttl(1).on_event(&host, &client, event, &data), Outcome::Pass);
    }
    assert!(host.timers().is_empty());
}

#[test]
fn config_needs_a_positive_ttl_that_fits_a_timer() {
    assert_eq!(ttl(1).ttl_ms, 1);
    assert_eq!(ttl(u32::MAX).ttl_ms, u32::MAX);
    let bad: [Value; 8] = [
        json!({}),
        json!({ "ttl_ms": 0 }),
        json!({ "ttl_ms": -1 }),
        json!({ "ttl_ms": 1.5 }),
        json!({ "ttl_ms": "1000" }),
        json!({ "ttl_ms": u64::from(u32::MAX) + 1 }),
        json!({ "ttl_ms": 1000, "ttl": 1 }),
        json!([]),
    ];
    for config in bad {
        let error = RoomTtl::new(&config.to_string())
            .err()
            .unwrap_or_else(|| panic!("{config} accepted"));
        assert!(error.starts_with("room-ttl config"), "{error}");
    }
}

#[test]
fn describes_room_join_and_the_timer_hook() {
    let descriptor = RoomTtl::describe();
    assert_eq!(descriptor.name, "room-ttl");
    assert_eq!(descriptor.events, [EventDecl::new(ROOM_JOIN)]);
    assert_eq!(descriptor.hooks, [Hook::Timer]);
}
