//! The `data` schemas of the events PROTOCOL.md defines. Validation keeps
//! only the fields the protocol names, so unknown fields are never
//! forwarded, and plugins get data they need not re-check.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

pub use switchboard_vocab::RelayEvent;
use switchboard_vocab::event::{
    AUTH_REQUEST, ICE_CANDIDATE, PING, ROOM_JOIN, ROOM_LEAVE, ROOM_STATE, SDP_ANSWER, SDP_OFFER,
    SESSION_RESUME,
};

use crate::envelope::{Data, Frame, write_json_str};
use crate::ids::{ClientId, RoomId, char_len};

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

/// The data of a relay event, read once: the client it names, and `to`
/// and the payload fields written once as JSON text. The sender's plugins
/// get the data from that text on request, and the target gets a frame
/// with `from` in place of `to` written straight from it, without the
/// host reading or writing the payload again.
#[derive(Debug, PartialEq)]
pub struct Relay {
    pub event: RelayEvent,
    /// The client `data.to` names, if it is a client id at all.
    pub target: Option<ClientId>,
    /// `to` as a JSON string, then the payload fields (`"sdp":…` or
    /// `"candidate":{…}`).
    text: String,
    /// Where `to` ends in `text`.
    to_end: usize,
}

impl Relay {
    /// Appends the normalised data, `{"to":…,` then the payload fields.
    pub fn write_data(&self, out: &mut String) {
        out.push_str(r#"{"to":"#);
        out.push_str(&self.text[..self.to_end]);
        out.push(',');
        out.push_str(&self.text[self.to_end..]);
        out.push('}');
    }

    /// The JSON text of the normalised data.
    pub fn data(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 8);
        self.write_data(&mut out);
        out
    }

    /// The frame its target gets: the event, with `from` in place of `to`
    /// in its data: what [`crate::envelope::frame_json`] writes for that data.
    pub fn frame(&self, from: ClientId) -> Frame {
        let event = self.event.as_str();
        let payload = &self.text[self.to_end..];
        let mut out = String::with_capacity(payload.len() + event.len() + 48);
        // Event names and client ids need no escaping.
        out.push_str(r#"{"event":""#);
        out.push_str(event);
        out.push_str(r#"","data":{"from":""#);
        from.push_hex(&mut out);
        out.push_str(r#"","#);
        out.push_str(payload);
        out.push_str("}}");
        out.into()
    }

    /// Writes `to` and then the payload fields with `fields`, which starts
    /// each with its key and a comma before every field but the first.
    fn write(event: RelayEvent, to: Text, fields: impl FnOnce(&mut String)) -> Relay {
        let mut text = String::with_capacity(256);
        to.write(&mut text);
        let to_end = text.len();
        fields(&mut text);
        Relay {
            event,
            target: ClientId::parse(to.as_str()),
            text,
            to_end,
        }
    }
}

/// A string about to be written as JSON: read from a message without
/// escapes, in which case it is written as it came, or any other.
#[derive(Clone, Copy)]
enum Text<'a> {
    /// Exactly the characters between the quotes in the input: serde_json
    /// borrows a string only when it has no escapes, and refuses control
    /// characters, so it needs none.
    Unescaped(&'a str),
    Any(&'a str),
}

impl<'a> From<&'a Cow<'_, str>> for Text<'a> {
    fn from(text: &'a Cow<'_, str>) -> Text<'a> {
        match text {
            Cow::Borrowed(text) => Text::Unescaped(text),
            Cow::Owned(text) => Text::Any(text),
        }
    }
}

impl<'a> Text<'a> {
    fn as_str(self) -> &'a str {
        match self {
            Text::Unescaped(text) | Text::Any(text) => text,
        }
    }

    /// Appends it as a JSON string.
    fn write(self, out: &mut String) {
        match self {
            Text::Unescaped(text) => {
                out.push('"');
                out.push_str(text);
                out.push('"');
            }
            Text::Any(text) => write_json_str(out, text),
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
/// PROTOCOL.md names and no others, each once and of its type, none null)
/// straight into its normalised form, without building a `Value` first.
/// Anything else is `None`, and [`normalize`] reads it and says what is
/// wrong. (Inside a whole message, [`crate::envelope::Envelope::parse`]
/// reads the data in the same pass as the envelope.)
pub fn read_relay(event: &str, data: &str) -> Option<Relay> {
    let event = RelayEvent::parse(event)?;
    relay(event, serde_json::from_str(data).ok()?)
}

/// The normalised form of relay data read in its usual shape, if it
/// follows the event's schema.
pub(crate) fn relay(event: RelayEvent, data: RelayFields) -> Option<Relay> {
    let to = data.to.as_ref().filter(|to| !to.is_empty())?;
    let to = Text::from(to);
    match (event, data.sdp, data.candidate) {
        (RelayEvent::IceCandidate, None, Some(candidate)) => {
            let text = Text::from(candidate.candidate.as_ref()?);
            let index = candidate.sdp_m_line_index.as_ref();
            if index.is_some_and(|n| !is_integer(n)) {
                return None;
            }
            let optional = [
                candidate
                    .sdp_mid
                    .as_ref()
                    .map(|t| Scalar::Str(Text::from(t))),
                index.map(Scalar::Number),
                candidate
                    .username_fragment
                    .as_ref()
                    .map(|t| Scalar::Str(Text::from(t))),
            ];
            Some(candidate_relay(to, text, optional))
        }
        (RelayEvent::SdpOffer | RelayEvent::SdpAnswer, Some(sdp), None) if !sdp.is_empty() => {
            Some(sdp_relay(event, to, Text::from(&sdp)))
        }
        _ => None,
    }
}

/// A relay event's `data` as clients send it: `to`, and `sdp` or
/// `candidate`. Read by hand rather than derived: a derived struct also
/// reads a JSON array, where PROTOCOL.md wants an object.
pub(crate) struct RelayFields<'a> {
    to: Option<Cow<'a, str>>,
    sdp: Option<Cow<'a, str>>,
    candidate: Option<IceCandidate<'a>>,
}

#[derive(Default)]
struct IceCandidate<'a> {
    candidate: Option<Cow<'a, str>>,
    sdp_mid: Option<Cow<'a, str>>,
    sdp_m_line_index: Option<Number>,
    username_fragment: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RelayKey {
    To,
    Sdp,
    Candidate,
    /// Any other key: every non-relay message (`roomId`, `token`) is
    /// tried as a relay first, and serde's own error for an unknown field
    /// lists the expected ones through the formatting machinery.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum CandidateKey {
    Candidate,
    SdpMid,
    #[serde(rename = "sdpMLineIndex")]
    SdpMLineIndex,
    UsernameFragment,
}

impl<'de> Deserialize<'de> for RelayFields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = RelayFields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("relay data")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut to, mut sdp, mut candidate) = (None, None, None);
                while let Some(key) = map.next_key()? {
                    match key {
                        RelayKey::To => once(&mut to, map.next_value::<Borrowed>()?.0)?,
                        RelayKey::Sdp => once(&mut sdp, map.next_value::<Borrowed>()?.0)?,
                        RelayKey::Candidate => once(&mut candidate, map.next_value()?)?,
                        RelayKey::Other => return Err(de::Error::custom("not relay data")),
                    }
                }
                Ok(RelayFields { to, sdp, candidate })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl<'de> Deserialize<'de> for IceCandidate<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = IceCandidate<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ICE candidate")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = IceCandidate::default();
                while let Some(key) = map.next_key()? {
                    match key {
                        CandidateKey::Candidate => {
                            once(&mut out.candidate, map.next_value::<Borrowed>()?.0)?;
                        }
                        CandidateKey::SdpMid => {
                            once(&mut out.sdp_mid, map.next_value::<Borrowed>()?.0)?;
                        }
                        CandidateKey::SdpMLineIndex => {
                            once(&mut out.sdp_m_line_index, map.next_value()?)?;
                        }
                        CandidateKey::UsernameFragment => {
                            once(&mut out.username_fragment, map.next_value::<Borrowed>()?.0)?;
                        }
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Fills a field read from a map; a repeated key fails the read (the
/// general reading keeps the last, and says so).
pub(crate) fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(E::custom("repeated key")),
    }
}

/// A string, borrowed from the input when it has no escapes. (`Cow<str>`
/// itself always copies when read by hand.)
pub(crate) struct Borrowed<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Chars;
        impl<'de> Visitor<'de> for Chars {
            type Value = Borrowed<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Chars)
    }
}

fn is_integer(number: &Number) -> bool {
    number.is_i64() || number.is_u64()
}

fn sdp(event: RelayEvent, data: &Map<String, Value>) -> Result<Relay, String> {
    let to = non_empty_str(data, "to")?;
    let sdp = non_empty_str(data, "sdp")?;
    Ok(sdp_relay(event, Text::Any(to), Text::Any(sdp)))
}

fn sdp_relay(event: RelayEvent, to: Text, sdp: Text) -> Relay {
    Relay::write(event, to, |out| {
        out.push_str(r#""sdp":"#);
        sdp.write(out);
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
    Str(Text<'a>),
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
            Value::String(text) if valid(value) => Scalar::Str(Text::Any(text)),
            Value::Number(number) if valid(value) => Scalar::Number(number),
            _ => return Err(format!("`candidate.{key}` must be {kind} or null")),
        });
    }
    Ok(candidate_relay(Text::Any(to), Text::Any(text), optional))
}

/// An ICE candidate's relay data: the optional fields that are present
/// (`optional` follows [`OPTIONAL_CANDIDATE_FIELDS`]), in the order
/// PROTOCOL.md lists them.
fn candidate_relay(to: Text, text: Text, optional: [Option<Scalar>; 3]) -> Relay {
    Relay::write(RelayEvent::IceCandidate, to, |out| {
        out.push_str(r#""candidate":{"candidate":"#);
        text.write(out);
        for ((key, ..), scalar) in OPTIONAL_CANDIDATE_FIELDS.iter().zip(optional) {
            let Some(scalar) = scalar else { continue };
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            match scalar {
                Scalar::Null => out.push_str("null"),
                Scalar::Str(text) => text.write(out),
                // Into the frame's own buffer: `to_string` would allocate.
                Scalar::Number(number) => {
                    let _ = write!(out, "{number}");
                }
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

    /// The data of the frame `relay`'s target gets from client 1.
    fn forwarded(relay: &Relay) -> Value {
        let frame = parse(&relay.frame(ClientId::from_u64(1)));
        assert_eq!(frame["event"], relay.event.as_str());
        frame["data"].clone()
    }

    const SENDER: &str = "0000000000000001";

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
        assert_eq!(out.target, None);
        assert_eq!(
            parse(&out.data()),
            json!({"to":"p","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0}})
        );
        assert_eq!(
            forwarded(&out),
            json!({"from":SENDER,"candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0}})
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
            (r#"{"to":null,"sdp":"v"}"#, false),
            (
                r#"{"to":"p","sdp":"v","candidate":{"candidate":"c"}}"#,
                false,
            ),
            // A derived struct reads an array in field order.
            (r#"["p","v"]"#, false),
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
            (r#""candidate":null"#, false),
            (r#""candidate":"c","candidate":"d""#, false),
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
                (
                    ICE_CANDIDATE,
                    r#"{"to":"p","candidate":["c"]}"#.to_owned(),
                    false,
                ),
                (
                    ICE_CANDIDATE,
                    r#"{"to":"p","sdp":"v","candidate":{"candidate":"c"}}"#.to_owned(),
                    false,
                ),
                (
                    ICE_CANDIDATE,
                    r#"{"to":"p\u00e9","candidate":{"candidate":"é \"c\""}}"#.to_owned(),
                    true,
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
        let out = relay(SDP_OFFER, json!({"to":"0000000000000002","sdp":"v","x":1}));
        assert_eq!(out.target, Some(ClientId::from_u64(2)));
        assert_eq!(
            parse(&out.data()),
            json!({"to":"0000000000000002","sdp":"v"})
        );
        assert_eq!(forwarded(&out), json!({"from":SENDER,"sdp":"v"}));
    }

    #[test]
    fn relayed_strings_keep_their_escapes_valid() {
        let sdp = "v=0\r\no=- \"quoted\" \\ \u{1} é";
        let out = relay(SDP_ANSWER, json!({"to":"p\"q","sdp":sdp}));
        assert_eq!(parse(&out.data()), json!({"to":"p\"q","sdp":sdp}));
        assert_eq!(forwarded(&out), json!({"from":SENDER,"sdp":sdp}));
        let escaped = r#"{"to":"p\"q","sdp":"v=0\r\no=- \"quoted\" \\ \u0001 \u00e9"}"#;
        let read = read_relay(SDP_ANSWER, escaped).unwrap();
        assert_eq!(read, out);
    }
}
