use serde_json::{Value, json};
use switchboard_sdk::event::{ROOM_JOIN, SDP_OFFER};
use switchboard_sdk::testing::{TestHost, rejection};
use switchboard_sdk::{ErrorCode, Outcome, ProtocolError};

use super::*;

fn chat(config: &str) -> Chat {
    Chat::new(config).expect("valid config")
}

/// c1, c2 and c3 in room `a`, c4 in room `b`, c5 in none.
fn setup() -> TestHost {
    TestHost::with_members(&[
        ("c1", Some("a")),
        ("c2", Some("a")),
        ("c3", Some("a")),
        ("c4", Some("b")),
        ("c5", None),
    ])
}

/// Calls `on_event` the way the host does: with the client as it is now.
fn say(plugin: &Chat, host: &TestHost, from: &str, data: Value) -> Outcome {
    plugin.on_event(host, &host.client(from), EVENT, &data.to_string())
}

/// What `client` heard of the chat, leaving out room notices.
fn chat_heard_by(host: &TestHost, client: &str) -> Vec<Value> {
    host.sent_to(client)
        .into_iter()
        .filter(|(event, _)| event == EVENT)
        .map(|(_, data)| data)
        .collect()
}

fn rejection_message(outcome: Outcome) -> String {
    match outcome {
        Outcome::Reject(ProtocolError { message, .. }) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn message_reaches_every_other_member_with_from_and_text() {
    let host = setup();

    let outcome = say(&chat("{}"), &host, "c1", json!({ "text": "hello" }));

    assert_eq!(outcome, Outcome::Handled);
    for member in ["c2", "c3"] {
        assert_eq!(
            chat_heard_by(&host, member),
            [json!({ "from": "c1", "text": "hello" })],
            "{member}"
        );
    }
}

#[test]
fn sender_gets_nothing_back() {
    let host = setup();
    say(&chat("{}"), &host, "c1", json!({ "text": "hello" }));
    assert!(chat_heard_by(&host, "c1").is_empty());
}

#[test]
fn members_of_other_rooms_and_of_none_hear_nothing() {
    let host = setup();
    say(&chat("{}"), &host, "c1", json!({ "text": "hello" }));
    assert!(host.sent_to("c4").is_empty());
    assert!(host.sent_to("c5").is_empty());
}

#[test]
fn unknown_fields_are_not_forwarded() {
    let host = setup();
    let data = json!({ "text": "hi", "from": "forged", "html": "<b>hi</b>" });

    say(&chat("{}"), &host, "c2", data);

    assert_eq!(
        chat_heard_by(&host, "c1"),
        [json!({ "from": "c2", "text": "hi" })]
    );
}

#[test]
fn messages_arrive_in_the_order_sent() {
    let plugin = chat("{}");
    let host = setup();
    for text in ["one", "two", "three"] {
        say(&plugin, &host, "c3", json!({ "text": text }));
    }
    let texts: Vec<_> = chat_heard_by(&host, "c1")
        .into_iter()
        .map(|data| data["text"].clone())
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);
}

#[test]
fn a_lone_member_is_handled_and_nobody_hears() {
    let host = TestHost::new();
    host.add_client("c1", "alice");
    host.join_room("c1", "solo", "{}").unwrap();
    let before = host.sent().len();

    let outcome = say(&chat("{}"), &host, "c1", json!({ "text": "anyone?" }));

    assert_eq!(outcome, Outcome::Handled);
    assert_eq!(host.sent().len(), before);
}

#[test]
fn outside_a_room_is_not_in_room() {
    let host = setup();
    let outcome = say(&chat("{}"), &host, "c5", json!({ "text": "hello" }));
    assert_eq!(rejection(outcome), ErrorCode::NotInRoom);
    assert!(host.sent().iter().all(|sent| sent.event != EVENT));
}

#[test]
fn max_chars_counts_unicode_scalar_values() {
    let plugin = chat(r#"{"max_chars": 3}"#);
    let host = setup();

    // Three scalar values, nine bytes in UTF-8.
    let outcome = say(&plugin, &host, "c1", json!({ "text": "日本語" }));
    assert_eq!(outcome, Outcome::Handled);

    let outcome = say(&plugin, &host, "c1", json!({ "text": "日本語!" }));
    assert_eq!(
        outcome,
        Outcome::reject(ErrorCode::InvalidMessage, "text longer than 3 characters")
    );
    assert_eq!(chat_heard_by(&host, "c2").len(), 1);
}

#[test]
fn too_long_text_is_invalid_message_before_not_in_room() {
    let plugin = chat(r#"{"max_chars": 2}"#);
    let host = setup();
    let outcome = say(&plugin, &host, "c5", json!({ "text": "abc" }));
    assert_eq!(rejection_message(outcome), "text longer than 2 characters");
}

#[test]
fn default_limit_is_the_schema_limit_of_2000_characters() {
    let plugin = chat("{}");
    let host = setup();

    let at_limit = "é".repeat(2000);
    let outcome = say(&plugin, &host, "c1", json!({ "text": at_limit }));
    assert_eq!(outcome, Outcome::Handled);

    let over = "é".repeat(2001);
    let outcome = say(&plugin, &host, "c1", json!({ "text": over }));
    assert_eq!(
        rejection_message(outcome),
        "text longer than 2000 characters"
    );
}

#[test]
fn malformed_data_is_invalid_message() {
    let plugin = chat("{}");
    let host = setup();
    let client = host.client("c1");
    for data in ["", "[]", "{}", r#"{"text": 5}"#, r#"{"text": null}"#] {
        let outcome = plugin.on_event(&host, &client, EVENT, data);
        assert_eq!(rejection(outcome), ErrorCode::InvalidMessage, "{data:?}");
    }
}

#[test]
fn other_events_pass() {
    let host = setup();
    let client = host.client("c1");
    for event in [ROOM_JOIN, SDP_OFFER, "chat:typing"] {
        let outcome = chat("{}").on_event(&host, &client, event, r#"{"text":"x"}"#);
        assert_eq!(outcome, Outcome::Pass, "{event}");
    }
}

#[test]
fn config_max_chars_may_only_lower_the_limit() {
    assert_eq!(chat("{}").max_chars, 2000);
    assert_eq!(chat(r#"{"max_chars": 1}"#).max_chars, 1);
    assert_eq!(chat(r#"{"max_chars": 2000}"#).max_chars, 2000);
    for bad in [
        r#"{"max_chars": 0}"#,
        r#"{"max_chars": 2001}"#,
        r#"{"max_chars": -1}"#,
        r#"{"max_chars": 2.5}"#,
        r#"{"max_chars": "100"}"#,
        r#"{"max_char": 100}"#,
        "[]",
        "",
    ] {
        let error = Chat::new(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(error.starts_with("chat config"), "{error}");
    }
}

#[test]
fn describes_chat_message_with_its_schema_and_no_hooks() {
    let descriptor = Chat::describe();
    assert_eq!(descriptor.name, "chat");
    assert_eq!(descriptor.events.len(), 1);
    assert_eq!(descriptor.events[0].name, "chat:message");
    let schema: Value =
        serde_json::from_str(descriptor.events[0].schema.as_deref().unwrap()).unwrap();
    assert_eq!(
        schema,
        json!({
            "type": "object",
            "properties": { "text": { "type": "string", "minLength": 1, "maxLength": 2000 } },
            "required": ["text"],
        })
    );
    assert!(descriptor.hooks.is_empty());
}
