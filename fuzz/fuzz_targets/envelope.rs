//! A client's text frame, as raw bytes, through everything the host does
//! with it before a plugin runs: `Envelope::parse`, the schemas of the
//! events PROTOCOL.md defines, and the frame writers. Each result is
//! checked against a second, deliberately plain reading of PROTOCOL.md
//! (Envelope, Errors, and the tables of Auth, Rooms, Signaling relay and
//! Session resume), so a wrong answer fails as loudly as a panic.

#![no_main]

use std::fmt;

use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use switchboard_protocol::envelope::{self, Data, Envelope, EnvelopeError, ErrorCode};
use switchboard_protocol::ids::{CorrelationId, EventName};
use switchboard_protocol::schema::{self, AuthRequest, Normalized};
use switchboard_vocab::event;

fuzz_target!(|bytes: &[u8]| {
    // tungstenite fails a text message that is not UTF-8 before the host
    // sees it, so the parser only ever gets `&str`.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match (Envelope::parse(text), read(text)) {
        (Ok(envelope), Reading::Valid(expected)) => {
            let accepted = Accepted::from(envelope);
            assert_eq!(accepted, expected, "{text:?}");
            check_accepted(&accepted);
        }
        (Err(error), Reading::Invalid { id, event }) => {
            assert_eq!(error.id.as_ref().map(|id| id.as_str()), id.as_deref());
            assert_eq!(error.event.as_ref().map(|e| e.as_str()), event.as_deref());
            check_rejected(&error, bytes.len());
        }
        (got, expected) => panic!("{text:?}: parsed as {got:?}, PROTOCOL.md says {expected:?}"),
    }
});

/// What PROTOCOL.md says about a text frame.
#[derive(Debug)]
enum Reading {
    Valid(Accepted),
    /// `INVALID_MESSAGE`, echoing the input's `id` and `event` where each
    /// is itself valid (the first occurrence, when a key is repeated).
    Invalid {
        id: Option<String>,
        event: Option<String>,
    },
}

/// The envelope rules, written from the table rather than from the parser.
fn read(text: &str) -> Reading {
    let Ok(TopLevel(entries)) = serde_json::from_str::<TopLevel>(text) else {
        return Reading::Invalid {
            id: None,
            event: None,
        };
    };
    let first = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| &**v);
    let string = |raw: &RawValue| serde_json::from_str::<String>(raw.get()).ok();
    let id = first("id").and_then(string).filter(|id| is_valid_id(id));
    let event = first("event")
        .and_then(string)
        .filter(|event| is_valid_event(event));
    let invalid = Reading::Invalid {
        id: id.clone(),
        event: event.clone(),
    };
    let known_once = entries.iter().enumerate().all(|(i, (key, _))| {
        matches!(key.as_str(), "event" | "id" | "data")
            && entries[..i].iter().all(|(earlier, _)| earlier != key)
    });
    let (true, Some(event)) = (known_once, event) else {
        return invalid;
    };
    if first("id").is_some() && id.is_none() {
        return invalid;
    }
    let data = match first("data").map(|raw| serde_json::from_str::<Value>(raw.get())) {
        None => Map::new(),
        // PROTOCOL.md sets no depth; this bound is the host's own choice.
        Some(Ok(Value::Object(data))) if nesting(&data) <= envelope::MAX_DATA_DEPTH => data,
        Some(_) => return invalid,
    };
    Reading::Valid(Accepted {
        event: EventName::parse(&event).expect("checked above"),
        id: id.as_deref().and_then(CorrelationId::parse),
        data,
    })
}

/// An accepted envelope with its data as an object, as the reference
/// reading has it. The parser reads a relay event's data in its usual
/// shape straight into normalised form (`Data::Relay`); read back as an
/// object, that must be the data as sent, since the usual shape has
/// nothing for normalisation to drop.
#[derive(Debug, PartialEq)]
struct Accepted {
    event: EventName,
    id: Option<CorrelationId>,
    data: Map<String, Value>,
}

impl From<Envelope> for Accepted {
    fn from(envelope: Envelope) -> Accepted {
        Accepted {
            event: envelope.event,
            id: envelope.id,
            data: envelope.data.into_object(),
        }
    }
}

/// Levels of objects and arrays, the object itself included.
fn nesting(object: &Map<String, Value>) -> usize {
    let mut deepest = 1;
    let mut pending: Vec<(&Value, usize)> = object.values().map(|v| (v, 2)).collect();
    while let Some((value, level)) = pending.pop() {
        let children: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Object(members) => members.values().collect(),
            _ => continue,
        };
        deepest = deepest.max(level);
        pending.extend(children.into_iter().map(|child| (child, level + 1)));
    }
    deepest
}

/// 1..64 characters of `[a-z0-9:._-]`.
fn is_valid_event(event: &str) -> bool {
    let chars: Vec<char> = event.chars().collect();
    (1..=64).contains(&chars.len())
        && chars
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":._-".contains(*c))
}

/// A string of 1..64 Unicode scalar values.
fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.chars().count())
}

/// A JSON object's members as written: repeated keys kept, values unparsed.
struct TopLevel(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = TopLevel;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(TopLevel(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

fn check_accepted(envelope: &Accepted) {
    let event = envelope.event.as_str();
    let id = envelope.id.as_ref();
    assert!(is_valid_event(event));
    assert!(id.is_none_or(|id| is_valid_id(id.as_str())));

    // What the host writes back out must read back as the same message.
    let frame = envelope::frame(event, id, &envelope.data);
    assert_eq!(envelope::frame_event(&frame), event);
    assert!(serde_json::from_str::<Value>(&frame).is_ok(), "{frame}");
    let again = Envelope::parse(&frame).map(Accepted::from);
    assert_eq!(again.as_ref().ok(), Some(envelope), "{frame}");

    check_protocol_data(event, &envelope.data);
    let normalized = schema::normalize(event, Data::Object(envelope.data.clone()));
    assert_eq!(
        normalized.as_ref().ok().map(object),
        expected_normalized(event, &envelope.data),
        "{event} {:?}",
        envelope.data
    );
    match normalized {
        Ok(data) => {
            // Normalised data is what plugins get and relays carry: it must
            // pass its own schema unchanged, by either path.
            let text = Value::Object(object(&data)).to_string();
            let again = Data::Object(object(&data));
            assert_eq!(schema::normalize(event, again).ok(), Some(data));
            if let Some(relay) = schema::read_relay(event, &text) {
                assert_eq!(Some(object(&Normalized::Relay(relay))), expected_normalized(event, &envelope.data));
            }
        }
        Err(message) => {
            assert!(!message.is_empty());
            check_error_frame(
                ErrorCode::InvalidMessage,
                &message,
                id,
                Some(envelope.event.as_str()),
            );
        }
    }
}

/// Normalised data as an object.
fn object(data: &Normalized) -> Map<String, Value> {
    match data {
        Normalized::Relay(relay) => serde_json::from_str(&relay.data()).expect("relay data is JSON"),
        Normalized::Object(Value::Object(object)) => object.clone(),
        Normalized::Object(other) => panic!("normalised data is not an object: {other}"),
    }
}

/// The events whose `data` the router reads itself rather than through
/// `normalize`.
fn check_protocol_data(event: &str, data: &Map<String, Value>) {
    let string = |key: &str| data.get(key).and_then(Value::as_str);
    let optional_string = |key: &str| data.get(key).is_none_or(Value::is_string);
    match event {
        event::AUTH_REQUEST => match AuthRequest::parse(data) {
            Ok(request) => {
                assert!(optional_string("roomId"));
                assert_eq!(Some(request.token.as_str()), string("token"));
                assert_eq!(request.room_id.as_deref(), string("roomId"));
            }
            Err(message) => {
                assert!(!message.is_empty());
                assert!(string("token").is_none() || !optional_string("roomId"));
            }
        },
        event::SESSION_RESUME => {
            assert_eq!(schema::resume_token(data).ok(), string("resumeToken"));
        }
        _ => {}
    }
}

/// The `data` each defined event keeps after validation: exactly the fields
/// its PROTOCOL.md table lists, or `None` when it breaks a rule.
fn expected_normalized(event: &str, data: &Map<String, Value>) -> Option<Map<String, Value>> {
    let non_empty = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let out = match event {
        "room:join" => {
            let room = data.get("roomId")?.as_str()?;
            if !(1..=128).contains(&room.chars().count()) {
                return None;
            }
            let mut out = json!({ "roomId": room });
            if let Some(metadata) = data.get("metadata") {
                out["metadata"] = Value::Object(metadata.as_object()?.clone());
            }
            out
        }
        "room:leave" | "room:state" => json!({}),
        "sdp:offer" | "sdp:answer" => json!({ "to": non_empty("to")?, "sdp": non_empty("sdp")? }),
        "ice:candidate" => {
            let to = non_empty("to")?;
            let given = data.get("candidate")?.as_object()?;
            let mut candidate = json!({ "candidate": given.get("candidate")?.as_str()? });
            for key in ["sdpMid", "usernameFragment"] {
                match given.get(key) {
                    None => {}
                    Some(v) if v.is_string() || v.is_null() => candidate[key] = v.clone(),
                    Some(_) => return None,
                }
            }
            match given.get("sdpMLineIndex") {
                None => {}
                Some(v) if v.is_i64() || v.is_u64() || v.is_null() => {
                    candidate["sdpMLineIndex"] = v.clone();
                }
                Some(_) => return None,
            }
            json!({ "to": to, "candidate": candidate })
        }
        _ => return Some(data.clone()),
    };
    match out {
        Value::Object(out) => Some(out),
        _ => unreachable!("every arm builds an object"),
    }
}

fn check_rejected(error: &EnvelopeError, len: usize) {
    assert!(!error.message.is_empty());
    // Every code goes through the same writer; vary it with the input.
    let code = ErrorCode::ALL[len % ErrorCode::ALL.len()];
    check_error_frame(
        code,
        &error.message,
        error.id.as_ref(),
        error.event.as_ref().map(|e| e.as_str()),
    );
}

/// PROTOCOL.md, Errors: `{"event":"error","id"?,"data":{"code","message","event"?}}`
/// and nothing else.
fn check_error_frame(
    code: ErrorCode,
    message: &str,
    id: Option<&CorrelationId>,
    event: Option<&str>,
) {
    let cause = event.map(|e| EventName::parse(e).expect("valid"));
    let frame = envelope::error_frame(code, message, id, cause.as_ref());
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(&frame) else {
        panic!("error frame is not a JSON object: {frame}");
    };
    let mut keys: Vec<&str> = top.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let expected_keys: &[&str] = if id.is_some() {
        &["data", "event", "id"]
    } else {
        &["data", "event"]
    };
    assert_eq!(keys, expected_keys, "{frame}");
    assert_eq!(top["event"], "error");
    if let Some(id) = id {
        assert_eq!(top["id"], id.as_str());
    }
    let Some(data) = top["data"].as_object() else {
        panic!("error data is not an object: {frame}");
    };
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let expected_keys: &[&str] = if event.is_some() {
        &["code", "event", "message"]
    } else {
        &["code", "message"]
    };
    assert_eq!(keys, expected_keys, "{frame}");
    let listed = [
        "INVALID_MESSAGE",
        "UNKNOWN_EVENT",
        "NOT_AUTHENTICATED",
        "AUTH_FAILED",
        "ALREADY_IN_ROOM",
        "NOT_IN_ROOM",
        "PEER_NOT_FOUND",
        "ROOM_FULL",
        "FORBIDDEN",
        "RATE_LIMITED",
        "RESUME_FAILED",
        "PLUGIN_ERROR",
        "INTERNAL",
    ];
    assert!(listed.contains(&data["code"].as_str().unwrap_or_default()));
    assert_eq!(data["code"], code.as_str());
    assert_eq!(data["message"], message);
    if let Some(event) = event {
        assert_eq!(data["event"], event);
    }
    // An outbound message follows the envelope rules too.
    let parsed = Envelope::parse(&frame).expect("an error frame is a valid envelope");
    assert_eq!(parsed.event.as_str(), "error");
    assert_eq!(envelope::frame_event(&frame), "error");
}
