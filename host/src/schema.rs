//! The `data` schemas of the events PROTOCOL.md defines. Validation keeps
//! only the fields the protocol names, so unknown fields are never
//! forwarded, and plugins get data they need not re-check.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::envelope::{Data, Fields};
use crate::ids::RoomId;

pub const AUTH_REQUEST: &str = "auth:request";
pub const PING: &str = "ping";
pub const SESSION_RESUME: &str = "session:resume";
pub const ROOM_JOIN: &str = "room:join";

/// Events a client may send before it is authenticated.
pub fn allowed_before_auth(event: &str) -> bool {
    matches!(event, AUTH_REQUEST | PING | SESSION_RESUME)
}

/// Whether PROTOCOL.md defines `event` (and so the host knows its schema).
pub fn is_protocol_event(event: &str) -> bool {
    matches!(
        event,
        AUTH_REQUEST
            | PING
            | SESSION_RESUME
            | ROOM_JOIN
            | "room:leave"
            | "room:state"
            | "sdp:offer"
            | "sdp:answer"
            | "ice:candidate"
    )
}

/// `auth:request` data.
pub struct AuthRequest {
    pub token: String,
    pub room_id: Option<String>,
}

impl AuthRequest {
    pub fn parse(data: &Map<String, Value>) -> Result<AuthRequest, String> {
        Ok(AuthRequest {
            token: required_str(data, "token")?.to_owned(),
            room_id: optional_str(data, "roomId")?.map(str::to_owned),
        })
    }
}

/// `session:resume` data.
pub fn resume_token(data: &Map<String, Value>) -> Result<&str, String> {
    required_str(data, "resumeToken")
}

/// The room a `room:join` names, once its data has been normalised.
pub fn join_target(data: &Value) -> Option<RoomId> {
    data.get("roomId")
        .and_then(Value::as_str)
        .and_then(RoomId::parse)
}

/// `data` of an event a plugin handles, validated and normalised.
#[derive(Debug)]
pub enum Normalized {
    /// `sdp:offer`, `sdp:answer`, `ice:candidate`.
    Relay(Relay),
    /// Any other event: an object, without unknown fields for the events
    /// PROTOCOL.md defines.
    Object(Value),
}

/// The data of a relay event, written once as JSON text: plugins get it as
/// it is, and the target gets the same payload with `from` in place of `to`,
/// without the host reading or writing it again.
#[derive(Debug)]
pub struct Relay {
    /// `data.to`, a non-empty string.
    pub to: String,
    /// `{"to":…,` then the payload fields, then `}`.
    json: String,
    /// Where the payload fields are in `json`.
    payload: std::ops::Range<usize>,
}

impl Relay {
    /// The JSON text of the normalised data.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The JSON text of the data its target gets: `to` replaced by `from`.
    pub fn forwarded(&self, from: &str) -> String {
        let payload = &self.json[self.payload.clone()];
        let mut out = String::with_capacity(payload.len() + from.len() + 16);
        out.push_str(r#"{"from":"#);
        write_json_str(&mut out, from);
        out.push(',');
        out.push_str(payload);
        out.push('}');
        out
    }

    /// Writes `{"to":…,` then the payload fields with `fields` (each with
    /// its key, a comma before every one but the first), then `}`. Values
    /// are copied as the client wrote them.
    fn write(to: &RawValue, fields: impl FnOnce(&mut String)) -> Result<Relay, String> {
        let mut json = String::with_capacity(256);
        json.push_str(r#"{"to":"#);
        json.push_str(to.get());
        json.push(',');
        let start = json.len();
        fields(&mut json);
        let payload = start..json.len();
        json.push('}');
        Ok(Relay {
            to: serde_json::from_str(to.get()).map_err(|e| format!("`to`: {e}"))?,
            json,
            payload,
        })
    }
}

/// Validates the data of an event a plugin handles and keeps only the
/// fields its schema names. Events PROTOCOL.md does not define pass through
/// unchanged (the chain checks them against their plugin's schema).
pub fn normalize(event: &str, data: Data) -> Result<Normalized, String> {
    match event {
        ROOM_JOIN => room_join(&data).map(|join| Normalized::Object(join.into())),
        "room:leave" | "room:state" => Ok(Normalized::Object(Map::new().into())),
        "sdp:offer" | "sdp:answer" => sdp(data.raw()).map(Normalized::Relay),
        "ice:candidate" => ice_candidate(data.raw()).map(Normalized::Relay),
        _ => Ok(Normalized::Object(data.into_map().into())),
    }
}

fn room_join(data: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let room = required_str(data, "roomId")?;
    if RoomId::parse(room).is_none() {
        return Err(format!(
            "`roomId` must be 1..{} characters",
            RoomId::MAX_CHARS
        ));
    }
    let mut out = Map::new();
    out.insert("roomId".into(), room.into());
    match data.get("metadata") {
        None => {}
        Some(Value::Object(metadata)) => {
            out.insert("metadata".into(), Value::Object(metadata.clone()));
        }
        Some(_) => return Err("`metadata` must be an object".into()),
    }
    Ok(out)
}

fn sdp(data: &str) -> Result<Relay, String> {
    let data = Object::parse(data)?;
    let to = data.non_empty_str("to")?;
    let sdp = data.non_empty_str("sdp")?;
    Relay::write(to, |out| {
        out.push_str(r#""sdp":"#);
        out.push_str(sdp.get());
    })
}

fn ice_candidate(data: &str) -> Result<Relay, String> {
    let data = Object::parse(data)?;
    let to = data.non_empty_str("to")?;
    let candidate = match data.get("candidate") {
        Some(raw) if raw.get().starts_with('{') => Object::parse(raw.get())?,
        _ => return Err("`candidate` must be an object".into()),
    };
    let text = candidate.required_str("candidate")?;
    // The optional fields that are present, in the order PROTOCOL.md lists
    // them, each checked before anything is written.
    let mut optional = Vec::with_capacity(3);
    for key in ["sdpMid", "sdpMLineIndex", "usernameFragment"] {
        let Some(value) = candidate.get(key) else {
            continue;
        };
        let json = value.get();
        let (valid, kind) = match key {
            "sdpMLineIndex" => (is_integer(json), "an integer"),
            _ => (json.starts_with('"'), "a string"),
        };
        if !valid && json != "null" {
            return Err(format!("`candidate.{key}` must be {kind} or null"));
        }
        optional.push((key, json));
    }
    Relay::write(to, |out| {
        out.push_str(r#""candidate":{"candidate":"#);
        out.push_str(text.get());
        for (key, json) in optional {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            out.push_str(json);
        }
        out.push('}');
    })
}

/// A JSON number serde_json reads as an integer (`i64` or `u64`).
fn is_integer(json: &str) -> bool {
    json.parse::<i64>().is_ok() || json.parse::<u64>().is_ok()
}

/// The fields of a JSON object's text, read without building a map; the
/// last of a repeated key wins, as in a map.
struct Object<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Object<'a> {
    fn parse(json: &'a str) -> Result<Object<'a>, String> {
        let fields: Fields<'a> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(Object(fields.0))
    }

    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A string field, as the JSON text of the string.
    fn required_str(&self, key: &str) -> Result<&'a RawValue, String> {
        match self.get(key) {
            None => Err(format!("missing field `{key}`")),
            Some(raw) if raw.get().starts_with('"') => Ok(raw),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    }

    fn non_empty_str(&self, key: &str) -> Result<&'a RawValue, String> {
        let raw = self.required_str(key)?;
        if raw.get() == r#""""# {
            return Err(format!("`{key}` must not be empty"));
        }
        Ok(raw)
    }
}

/// Appends `text` as a JSON string; most need no escaping at all.
fn write_json_str(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&Value::from(text).to_string());
    }
}

fn required_str<'a>(data: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    optional_str(data, key)?.ok_or_else(|| format!("missing field `{key}`"))
}

/// An optional string field; `null` is not a string.
fn optional_str<'a>(data: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match data.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use serde_json::json;

    /// `normalize` of `data` as it would come in a message.
    fn normalized(event: &str, data: Value) -> Result<Normalized, String> {
        let text = json!({ "event": "x", "data": data }).to_string();
        normalize(event, Envelope::parse(&text).unwrap().data)
    }

    fn object(event: &str, data: Value) -> Value {
        match normalized(event, data).unwrap() {
            Normalized::Object(object) => object,
            Normalized::Relay(relay) => panic!("{event} normalised as a relay: {relay:?}"),
        }
    }

    fn relay(event: &str, data: Value) -> Relay {
        match normalized(event, data).unwrap() {
            Normalized::Relay(relay) => relay,
            Normalized::Object(object) => panic!("{event} normalised as an object: {object:?}"),
        }
    }

    fn parse(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn join_keeps_room_and_metadata_only() {
        let out = object(ROOM_JOIN, json!({"roomId":"a","metadata":{"x":1},"y":2}));
        assert_eq!(out, json!({"roomId":"a","metadata":{"x":1}}));
        assert!(normalized(ROOM_JOIN, json!({"roomId":""})).is_err());
        assert!(normalized(ROOM_JOIN, json!({"roomId":"a".repeat(129)})).is_err());
        assert!(normalized(ROOM_JOIN, json!({"roomId":"a","metadata":null})).is_err());
    }

    #[test]
    fn candidate_fields_are_checked_and_trimmed() {
        let data = json!({"to":"p","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0,"zz":1},"q":1});
        let out = relay("ice:candidate", data);
        assert_eq!(out.to, "p");
        assert_eq!(
            parse(out.json()),
            json!({"to":"p","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0}})
        );
        assert_eq!(
            parse(&out.forwarded("me")),
            json!({"from":"me","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0}})
        );
        assert!(normalized("ice:candidate", json!({"to":"p","candidate":{}})).is_err());
        let bad_index = json!({"to":"p","candidate":{"candidate":"c","sdpMLineIndex":1.5}});
        assert!(normalized("ice:candidate", bad_index).is_err());
    }

    #[test]
    fn sdp_needs_non_empty_to_and_sdp() {
        assert!(normalized("sdp:offer", json!({"to":"p","sdp":""})).is_err());
        assert!(normalized("sdp:answer", json!({"to":"","sdp":"v"})).is_err());
        let out = relay("sdp:offer", json!({"to":"p","sdp":"v","x":1}));
        assert_eq!(parse(out.json()), json!({"to":"p","sdp":"v"}));
        assert_eq!(parse(&out.forwarded("me")), json!({"from":"me","sdp":"v"}));
    }

    #[test]
    fn relayed_strings_keep_their_escapes_valid() {
        let sdp = "v=0\r\no=- \"quoted\" \\ \u{1} é";
        let out = relay("sdp:answer", json!({"to":"p\"q","sdp":sdp}));
        assert_eq!(out.to, "p\"q");
        assert_eq!(parse(out.json()), json!({"to":"p\"q","sdp":sdp}));
        assert_eq!(parse(&out.forwarded("f")), json!({"from":"f","sdp":sdp}));
    }
}
