//! The `data` schemas of the events PROTOCOL.md defines. Validation keeps
//! only the fields the protocol names, so unknown fields are never
//! forwarded, and plugins get data they need not re-check.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

pub use switchboard_vocab::RelayEvent;
use switchboard_vocab::event::{
    AUTH_REQUEST, ICE_CANDIDATE, PING, ROOM_JOIN, ROOM_LEAVE, ROOM_STATE, SDP_ANSWER, SDP_OFFER,
    SESSION_RESUME,
};

use crate::envelope::{Data, write_json_str};
use crate::ids::{RoomId, char_len};

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
            | ROOM_LEAVE
            | ROOM_STATE
            | SDP_OFFER
            | SDP_ANSWER
            | ICE_CANDIDATE
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
#[derive(Debug, PartialEq)]
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
#[derive(Debug, PartialEq)]
pub struct Relay {
    pub event: RelayEvent,
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

    /// Writes `{"to":…}` and then the payload fields with `fields`, which
    /// starts each with its key and a comma before every field but the
    /// first.
    fn write(event: RelayEvent, to: &str, fields: impl FnOnce(&mut String)) -> Relay {
        let mut json = String::with_capacity(256);
        json.push_str(r#"{"to":"#);
        write_json_str(&mut json, to);
        json.push(',');
        let start = json.len();
        fields(&mut json);
        let payload = start..json.len();
        json.push('}');
        Relay {
            event,
            to: to.to_owned(),
            json,
            payload,
        }
    }
}

/// Validates the data of an event a plugin handles and keeps only the
/// fields its schema names. Events PROTOCOL.md does not define pass through
/// unchanged (the chain checks them against their plugin's schema).
pub fn normalize(event: &str, data: Data) -> Result<Normalized, String> {
    let data = match data {
        Data::Relay(relay) => return Ok(Normalized::Relay(relay)),
        Data::Object(data) => data,
    };
    match (event, RelayEvent::parse(event)) {
        (_, Some(RelayEvent::IceCandidate)) => ice_candidate(&data).map(Normalized::Relay),
        (_, Some(sdp_event)) => sdp(sdp_event, &data).map(Normalized::Relay),
        (ROOM_JOIN, None) => room_join(&data).map(|join| Normalized::Object(join.into())),
        (ROOM_LEAVE | ROOM_STATE, None) => Ok(Normalized::Object(Map::new().into())),
        _ => Ok(Normalized::Object(data.into())),
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

/// Reads a relay event's `data` in the shape clients send it (the fields
/// PROTOCOL.md names and no others, each of its type, none null) straight
/// into its normalised form, without building a `Value` first: this is
/// every relayed message's path. Anything else is `None`, and
/// [`normalize`] reads it and says what is wrong.
pub fn read_relay(event: &str, data: &str) -> Option<Relay> {
    match RelayEvent::parse(event)? {
        RelayEvent::IceCandidate => {
            let data: IceData = serde_json::from_str(data).ok()?;
            let candidate = &data.candidate;
            let index = candidate.sdp_m_line_index.as_ref();
            if data.to.is_empty() || index.is_some_and(|n| !is_integer(n)) {
                return None;
            }
            let optional = [
                candidate.sdp_mid.as_deref().map(Scalar::Str),
                index.map(Scalar::Number),
                candidate.username_fragment.as_deref().map(Scalar::Str),
            ];
            Some(candidate_relay(&data.to, &candidate.candidate, optional))
        }
        sdp_event => {
            let data: SdpData = serde_json::from_str(data).ok()?;
            let valid = !data.to.is_empty() && !data.sdp.is_empty();
            valid.then(|| sdp_relay(sdp_event, &data.to, &data.sdp))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SdpData<'a> {
    #[serde(borrow)]
    to: Cow<'a, str>,
    #[serde(borrow)]
    sdp: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IceData<'a> {
    #[serde(borrow)]
    to: Cow<'a, str>,
    #[serde(borrow)]
    candidate: IceCandidate<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IceCandidate<'a> {
    #[serde(borrow)]
    candidate: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "not_null")]
    sdp_mid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "not_null")]
    sdp_m_line_index: Option<Number>,
    #[serde(borrow, default, deserialize_with = "not_null")]
    username_fragment: Option<Cow<'a, str>>,
}

/// An optional field that is present; a `null` fails the read, because
/// [`normalize`] keeps it as `null` where `Option` would drop it.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn is_integer(number: &Number) -> bool {
    number.is_i64() || number.is_u64()
}

fn sdp(event: RelayEvent, data: &Map<String, Value>) -> Result<Relay, String> {
    let to = non_empty_str(data, "to")?;
    let sdp = non_empty_str(data, "sdp")?;
    Ok(sdp_relay(event, to, sdp))
}

fn sdp_relay(event: RelayEvent, to: &str, sdp: &str) -> Relay {
    Relay::write(event, to, |out| {
        out.push_str(r#""sdp":"#);
        write_json_str(out, sdp);
    })
}

/// Whether a field's value has the type its schema names.
type IsKind = fn(&Value) -> bool;

/// The optional fields of an ICE candidate, with the type each must have
/// when it is not null.
const OPTIONAL_CANDIDATE_FIELDS: [(&str, &str, IsKind); 3] = [
    ("sdpMid", "a string", Value::is_string),
    ("sdpMLineIndex", "an integer", |v| {
        v.as_number().is_some_and(is_integer)
    }),
    ("usernameFragment", "a string", Value::is_string),
];

/// The value of an optional candidate field, as it is written out.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Null,
    Str(&'a str),
    Number(&'a Number),
}

fn ice_candidate(data: &Map<String, Value>) -> Result<Relay, String> {
    let to = non_empty_str(data, "to")?;
    let Some(Value::Object(candidate)) = data.get("candidate") else {
        return Err("`candidate` must be an object".into());
    };
    let text = required_str(candidate, "candidate")?;
    // Each optional field is checked before anything is written.
    let mut optional = [None; OPTIONAL_CANDIDATE_FIELDS.len()];
    for ((key, kind, valid), scalar) in OPTIONAL_CANDIDATE_FIELDS.iter().zip(&mut optional) {
        let Some(value) = candidate.get(*key) else {
            continue;
        };
        *scalar = Some(match value {
            Value::Null => Scalar::Null,
            Value::String(text) if valid(value) => Scalar::Str(text),
            Value::Number(number) if valid(value) => Scalar::Number(number),
            _ => return Err(format!("`candidate.{key}` must be {kind} or null")),
        });
    }
    Ok(candidate_relay(to, text, optional))
}

/// An ICE candidate's relay data: the optional fields that are present
/// (`optional` follows [`OPTIONAL_CANDIDATE_FIELDS`]), in the order
/// PROTOCOL.md lists them.
fn candidate_relay(to: &str, text: &str, optional: [Option<Scalar>; 3]) -> Relay {
    Relay::write(RelayEvent::IceCandidate, to, |out| {
        out.push_str(r#""candidate":{"candidate":"#);
        write_json_str(out, text);
        for ((key, ..), scalar) in OPTIONAL_CANDIDATE_FIELDS.iter().zip(optional) {
            let Some(scalar) = scalar else { continue };
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            match scalar {
                Scalar::Null => out.push_str("null"),
                Scalar::Str(text) => write_json_str(out, text),
                Scalar::Number(number) => out.push_str(&number.to_string()),
            }
        }
        out.push('}');
    })
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

fn non_empty_str<'a>(data: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    let value = required_str(data, key)?;
    if char_len(value) == 0 {
        return Err(format!("`{key}` must not be empty"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Data {
        Data::Object(v.as_object().unwrap().clone())
    }

    fn object(event: &str, data: Value) -> Value {
        match normalize(event, map(data)).unwrap() {
            Normalized::Object(object) => object,
            Normalized::Relay(relay) => panic!("{event} normalised as a relay: {relay:?}"),
        }
    }

    fn relay(event: &str, data: Value) -> Relay {
        match normalize(event, map(data)).unwrap() {
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
        assert!(normalize(ROOM_JOIN, map(json!({"roomId":""}))).is_err());
        assert!(normalize(ROOM_JOIN, map(json!({"roomId":"a".repeat(129)}))).is_err());
        assert!(normalize(ROOM_JOIN, map(json!({"roomId":"a","metadata":null}))).is_err());
    }

    #[test]
    fn candidate_fields_are_checked_and_trimmed() {
        let data = json!({"to":"p","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0,"zz":1},"q":1});
        let out = relay(ICE_CANDIDATE, data);
        assert_eq!(out.to, "p");
        assert_eq!(
            parse(out.json()),
            json!({"to":"p","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0}})
        );
        assert_eq!(
            parse(&out.forwarded("me")),
            json!({"from":"me","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0}})
        );
        assert!(normalize(ICE_CANDIDATE, map(json!({"to":"p","candidate":{}}))).is_err());
        let bad_index = json!({"to":"p","candidate":{"candidate":"c","sdpMLineIndex":1.5}});
        assert!(normalize(ICE_CANDIDATE, map(bad_index)).is_err());
    }

    /// The fast read gives what `normalize` gives, or leaves it to it.
    #[test]
    fn read_relay_agrees_with_normalize_or_declines() {
        let sdp = [
            (r#"{"to":"p","sdp":"v=0\r\n"}"#, true),
            (r#"{"sdp":"v","to":"p\"q"}"#, true),
            (r#"{"to":"p","sdp":""}"#, false),
            (r#"{"to":"p","sdp":"v","x":1}"#, false),
            (r#"{"to":"p","sdp":"v","sdp":"w"}"#, false),
            (r#"{"to":1,"sdp":"v"}"#, false),
        ];
        // The fields of `candidate`, to `p`.
        let ice = [
            (r#""candidate":"c""#, true),
            (r#""sdpMid":"0","candidate":"c\n""#, true),
            (
                r#""usernameFragment":"u","sdpMLineIndex":-3,"candidate":"c""#,
                true,
            ),
            (r#""candidate":"c","sdpMid":null"#, false),
            (r#""candidate":"c","sdpMLineIndex":1.5"#, false),
            (r#""candidate":"c","sdpMLineIndex":1e2"#, false),
            (r#""candidate":"c","zz":1"#, false),
            ("", false),
        ];
        let ice =
            ice.map(|(fields, fast)| (format!(r#"{{"to":"p","candidate":{{{fields}}}}}"#), fast));
        let cases = sdp
            .map(|(text, fast)| (SDP_OFFER, text.to_owned(), fast))
            .into_iter()
            .chain(ice.map(|(text, fast)| (ICE_CANDIDATE, text, fast)))
            .chain([
                (
                    ICE_CANDIDATE,
                    r#"{"to":"","candidate":{"candidate":"c"}}"#.to_owned(),
                    false,
                ),
                (ROOM_JOIN, r#"{"roomId":"a"}"#.to_owned(), false),
            ]);
        for (event, text, fast) in cases {
            let text = text.as_str();
            let read = read_relay(event, text);
            assert_eq!(read.is_some(), fast, "{event} {text}");
            if let Some(read) = read {
                let normalized = normalize(event, map(parse(text))).unwrap();
                assert_eq!(Normalized::Relay(read), normalized, "{event} {text}");
            }
        }
    }

    #[test]
    fn sdp_needs_non_empty_to_and_sdp() {
        assert!(normalize(SDP_OFFER, map(json!({"to":"p","sdp":""}))).is_err());
        assert!(normalize(SDP_ANSWER, map(json!({"to":"","sdp":"v"}))).is_err());
        let out = relay(SDP_OFFER, json!({"to":"p","sdp":"v","x":1}));
        assert_eq!(parse(out.json()), json!({"to":"p","sdp":"v"}));
        assert_eq!(parse(&out.forwarded("me")), json!({"from":"me","sdp":"v"}));
    }

    #[test]
    fn relayed_strings_keep_their_escapes_valid() {
        let sdp = "v=0\r\no=- \"quoted\" \\ \u{1} é";
        let out = relay(SDP_ANSWER, json!({"to":"p\"q","sdp":sdp}));
        assert_eq!(out.to, "p\"q");
        assert_eq!(parse(out.json()), json!({"to":"p\"q","sdp":sdp}));
        assert_eq!(parse(&out.forwarded("f")), json!({"from":"f","sdp":sdp}));
    }
}
