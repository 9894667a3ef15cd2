//! The envelope rules of PROTOCOL.md (Envelope; Order of checks, step 4)
//! as properties over generated messages, non-ASCII text included.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use switchboard_protocol::envelope::{Data, Envelope, EnvelopeError};
use switchboard_protocol::schema;
use switchboard_vocab::event;

/// 1..64 characters of `[a-z0-9:._-]`.
fn valid_event() -> impl Strategy<Value = String> {
    "[a-z0-9:._-]{1,64}"
}

/// Strings of 1..64 Unicode scalar values, mostly beyond ASCII, so that
/// bytes and characters disagree.
fn valid_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9-]{1,64}",
        "[é中😀\u{10FFFF}]{1,64}",
        "\\PC{1,64}",
    ]
}

/// Any JSON value, kept shallow and small.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("\\PC{0,8}", json_value(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

/// Any JSON value but an object.
fn non_object() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not an object", |v| !v.is_object())
}

/// A top-level member as written: a key and a JSON value.
type Member = (String, Value);

/// A JSON object text with `members` in the given order, repeats kept
/// (which a `Map` cannot hold).
fn object_text(members: &[Member]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(key, value)| format!("{}:{}", json!(key), value))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A valid envelope's members, `id` and `data` each present or not, in
/// any order.
fn valid_members() -> impl Strategy<Value = Vec<Member>> {
    (
        valid_event(),
        prop::option::of(valid_id()),
        prop::option::of(json_object()),
    )
        .prop_flat_map(|(event, id, data)| {
            let mut members = vec![("event".to_owned(), Value::from(event))];
            members.extend(id.map(|id| ("id".to_owned(), Value::from(id))));
            members.extend(data.map(|data| ("data".to_owned(), Value::Object(data))));
            Just(members).prop_shuffle()
        })
}

fn member<'a>(members: &'a [Member], key: &str) -> Option<&'a Value> {
    members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn reject(text: &str) -> EnvelopeError {
    match Envelope::parse(text) {
        Ok(envelope) => panic!("accepted {text}: {envelope:?}"),
        Err(error) => error,
    }
}

fn echoed(error: &EnvelopeError) -> (Option<&str>, Option<&str>) {
    (
        error.id.as_ref().map(|id| id.as_str()),
        error.event.as_ref().map(|event| event.as_str()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn valid_envelopes_parse_to_what_was_sent(members in valid_members()) {
        let envelope = Envelope::parse(&object_text(&members)).unwrap();
        let sent = |key| member(&members, key).and_then(Value::as_str);
        prop_assert_eq!(Some(envelope.event.as_str()), sent("event"));
        prop_assert_eq!(envelope.id.as_ref().map(|id| id.as_str()), sent("id"));
        let data = member(&members, "data").cloned().unwrap_or_else(|| json!({}));
        prop_assert_eq!(Value::Object(envelope.data.into_object()), data);
    }

    #[test]
    fn event_names_outside_the_alphabet_or_length_are_rejected_and_not_named(
        event in prop_oneof![
            Just(String::new()),
            "[a-z0-9:._-]{65,80}",
            "[a-z]{0,8}[^a-z0-9:._-][a-z:]{0,8}",
        ],
        id in valid_id(),
    ) {
        let members = [("event".into(), event.into()), ("id".into(), id.clone().into())];
        let error = reject(&object_text(&members));
        prop_assert_eq!(echoed(&error), (Some(id.as_str()), None));
        prop_assert!(!error.message.is_empty());
    }

    #[test]
    fn an_event_that_is_not_a_string_is_rejected(event in non_object(), id in valid_id()) {
        prop_assume!(!event.is_string());
        let members = [("id".into(), id.clone().into()), ("event".into(), event)];
        let error = reject(&object_text(&members));
        prop_assert_eq!(echoed(&error), (Some(id.as_str()), None));
    }

    #[test]
    fn an_unknown_top_level_key_is_always_rejected(
        members in valid_members(),
        key in "\\PC{0,12}",
        value in json_value(),
        at in any::<Index>(),
    ) {
        prop_assume!(!matches!(key.as_str(), "event" | "id" | "data"));
        let mut members = members;
        members.insert(at.index(members.len() + 1), (key.clone(), value));
        let error = reject(&object_text(&members));
        prop_assert!(error.message.contains("unknown field"), "{}", error.message);
        let sent = |key| member(&members, key).and_then(Value::as_str);
        prop_assert_eq!(echoed(&error), (sent("id"), sent("event")));
    }

    #[test]
    fn a_repeated_top_level_key_is_always_rejected_echoing_the_first(
        members in valid_members(),
        which in any::<Index>(),
        event in valid_event(),
        at in any::<Index>(),
    ) {
        let (key, _) = which.get(&members).clone();
        let repeat = (key.clone(), if key == "data" { json!({}) } else { Value::from(event) });
        let mut members = members;
        let first = members.iter().position(|(k, _)| *k == key).unwrap();
        members.insert(first + 1 + at.index(members.len() - first), repeat);
        let error = reject(&object_text(&members));
        prop_assert!(error.message.contains("duplicate"), "{}", error.message);
        let sent = |key| member(&members, key).and_then(Value::as_str);
        prop_assert_eq!(echoed(&error), (sent("id"), sent("event")));
    }

    #[test]
    fn an_id_is_echoed_exactly_when_it_is_valid(
        event in valid_event(),
        id in prop_oneof![
            valid_id().prop_map(Value::from),
            Just(Value::from("")),
            "[é😀a]{65,80}".prop_map(Value::from),
            non_object().prop_filter("not a string", |v| !v.is_string()),
        ],
        unknown_field in any::<bool>(),
    ) {
        let valid = id
            .as_str()
            .filter(|s| (1..=64).contains(&s.chars().count()))
            .map(str::to_owned);
        let mut members = vec![("event".to_owned(), event.clone().into()), ("id".to_owned(), id)];
        if unknown_field {
            members.push(("extra".into(), json!(1)));
        }
        let text = object_text(&members);
        match Envelope::parse(&text) {
            Ok(envelope) => {
                prop_assert!(!unknown_field);
                prop_assert_eq!(envelope.id.as_ref().map(|id| id.as_str()), valid.as_deref());
            }
            Err(error) => {
                prop_assert!(unknown_field || valid.is_none(), "{}: {}", text, error.message);
                prop_assert_eq!(echoed(&error), (valid.as_deref(), Some(event.as_str())));
            }
        }
    }

    #[test]
    fn data_that_is_not_an_object_is_rejected(
        event in valid_event(),
        id in valid_id(),
        data in non_object(),
    ) {
        let members = [
            ("event".into(), event.clone().into()),
            ("data".into(), data),
            ("id".into(), id.clone().into()),
        ];
        let error = reject(&object_text(&members));
        prop_assert!(error.message.contains("`data`"), "{}", error.message);
        prop_assert_eq!(echoed(&error), (Some(id.as_str()), Some(event.as_str())));
    }

    #[test]
    fn lengths_count_unicode_scalar_values(
        length in 1usize..=80,
        unit in prop::sample::select(vec!["a", "é", "中", "😀"]),
    ) {
        let members = [("event".into(), "ping".into()), ("id".into(), unit.repeat(length).into())];
        prop_assert_eq!(Envelope::parse(&object_text(&members)).is_ok(), length <= 64);
        let room = Map::from_iter([("roomId".to_owned(), Value::from(unit.repeat(length + 60)))]);
        let joined = schema::normalize(event::ROOM_JOIN, Data::Object(room));
        prop_assert_eq!(joined.is_ok(), length + 60 <= 128);
    }
}
