use serde_json::json;
use switchboard_sdk::testing::{TestHost, rejection, reply};

use super::*;

#[test]
fn a_member_gets_its_text_back_with_its_room() {
    let host = TestHost::with_members(&[("c1", Some("lobby")), ("c2", Some("lobby"))]);
    let outcome = Echo.on_event(&host, &host.client("c1"), EVENT, r#"{"text":"hi","extra":1}"#);
    assert_eq!(
        reply(outcome),
        (EVENT.to_owned(), json!({ "text": "hi", "room": "lobby" }))
    );
}

#[test]
fn outside_a_room_is_not_in_room() {
    let host = TestHost::with_members(&[("c1", None)]);
    let outcome = Echo.on_event(&host, &host.client("c1"), EVENT, r#"{"text":"hi"}"#);
    assert_eq!(rejection(outcome), ErrorCode::NotInRoom);
}
