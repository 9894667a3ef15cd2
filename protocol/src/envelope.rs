//! The wire format: parsing and validating inbound envelopes, and writing
//! outbound ones (PROTOCOL.md, Envelope and Errors).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tungstenite::Utf8Bytes;

pub use switchboard_vocab::ErrorCode;
use switchboard_vocab::event;

use crate::ids::{CorrelationId, EventName};
use crate::schema::{self, Borrowed, Relay, RelayEvent, RelayFields};

/// A validated inbound message.
#[derive(Debug, PartialEq)]
pub struct Envelope {
    pub event: EventName,
    pub id: Option<CorrelationId>,
    pub data: Data,
}

/// An envelope's `data`.
#[derive(Debug, PartialEq)]
pub enum Data {
    /// `{}` when the input had no `data`.
    Object(Map<String, Value>),
    /// A relay event's data as clients send it, read with the envelope
    /// straight into its normalised form.
    Relay(Relay),
}

impl Data {
    /// The data as an object, for the events that read its fields.
    pub fn into_object(self) -> Map<String, Value> {
        match self {
            Data::Object(data) => data,
            Data::Relay(relay) => serde_json::from_str(&relay.data()).unwrap_or_default(),
        }
    }
}

/// Why a text frame is not a valid envelope, with whatever of it was valid
/// enough to echo back.
#[derive(Debug)]
pub struct EnvelopeError {
    pub id: Option<CorrelationId>,
    pub event: Option<EventName>,
    pub message: String,
}

/// The top level of an object, each key with its raw value, in order.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(3);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    fields.push((key, map.next_value()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

impl Envelope {
    pub fn parse(text: &str) -> Result<Envelope, EnvelopeError> {
        // Nearly every message a busy server reads is a relay in the shape
        // clients send it: that is read in one typed pass. Anything else,
        // every invalid message included, is read field by field below,
        // which says what is wrong.
        if let Some(envelope) = read_relay_envelope(text) {
            return Ok(envelope);
        }
        let fields = match serde_json::from_str::<Fields>(text) {
            Ok(fields) => fields.0,
            Err(e) => return Err(EnvelopeError::bare(invalid_json_message(&e))),
        };
        // Collect what can be echoed first: the error must carry a valid id
        // and event even when something else is wrong.
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let id_raw = field("id");
        let event_raw = field("event");
        let mut error = EnvelopeError {
            id: id_raw.and_then(|raw| CorrelationId::parse(&parse_str(raw)?)),
            event: event_raw.and_then(|raw| EventName::parse(&parse_str(raw)?)),
            message: String::new(),
        };
        if let Some(message) = check_fields(&fields) {
            error.message = message;
            return Err(error);
        }
        let Some(event) = error.event.clone() else {
            error.message = match event_raw {
                None => "missing field `event`".into(),
                Some(_) => "`event` must be 1..64 characters of [a-z0-9:._-]".into(),
            };
            return Err(error);
        };
        if id_raw.is_some() && error.id.is_none() {
            error.message = "`id` must be a string of 1..64 characters".into();
            return Err(error);
        }
        let data = match field("data").map(read_object) {
            None => Data::Object(Map::new()),
            Some(Ok(data)) => Data::Object(data),
            Some(Err(message)) => {
                error.message = message;
                return Err(error);
            }
        };
        Ok(Envelope {
            event,
            id: error.id,
            data,
        })
    }
}

/// A relay event's envelope in its usual shape (`event`, `data` in the
/// shape [`schema::read_relay`] takes, an optional valid `id`; each once,
/// nothing else), read in one pass with the strings borrowed; `None` for
/// anything else. What it accepts, the field-by-field reading accepts as
/// the same message, which `normalize` turns into the same relay.
fn read_relay_envelope(text: &str) -> Option<Envelope> {
    let relay: RelayEnvelope = serde_json::from_str(text).ok()?;
    let id = match relay.id {
        Some(id) => Some(CorrelationId::parse(&id)?),
        None => None,
    };
    let event = relay.event?;
    Some(Envelope {
        event: RELAY_EVENT_NAMES.with(|names| names[event as usize].clone()),
        id,
        data: Data::Relay(schema::relay(event, relay.data?)?),
    })
}

thread_local! {
    /// The relay events' names, made once per thread: a name is an
    /// `Arc<str>`, so one made per relayed message was an allocation, and
    /// one shared by every thread a reference count they all write.
    static RELAY_EVENT_NAMES: [EventName; RelayEvent::ALL.len()] =
        RelayEvent::ALL.map(|event| EventName::parse(event.as_str()).expect("a valid name"));
}

struct RelayEnvelope<'a> {
    event: Option<RelayEvent>,
    id: Option<Cow<'a, str>>,
    data: Option<RelayFields<'a>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum EnvelopeKey {
    Event,
    Id,
    Data,
    /// Not a relay's envelope; cheaper than serde's unknown-field error.
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for RelayEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RelayEnvelope<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a relay message")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut envelope = RelayEnvelope {
                    event: None,
                    id: None,
                    data: None,
                };
                while let Some(key) = map.next_key()? {
                    match key {
                        EnvelopeKey::Event => {
                            let name = map.next_value::<Borrowed>()?.0;
                            let event = RelayEvent::parse(&name)
                                .ok_or_else(|| de::Error::custom("not a relay event"))?;
                            schema::once(&mut envelope.event, event)?;
                        }
                        EnvelopeKey::Id => {
                            schema::once(&mut envelope.id, map.next_value::<Borrowed>()?.0)?;
                        }
                        EnvelopeKey::Data => schema::once(&mut envelope.data, map.next_value()?)?,
                        EnvelopeKey::Other => return Err(de::Error::custom("not a relay message")),
                    }
                }
                Ok(envelope)
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// `data` read as an object of bounded depth.
fn read_object(raw: &RawValue) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Object(data)) if depth(&data) > MAX_DATA_DEPTH => Err(format!(
            "`data` must not nest deeper than {MAX_DATA_DEPTH} levels"
        )),
        Ok(Value::Object(data)) => Ok(data),
        Ok(_) => Err("`data` must be an object".into()),
        Err(e) => Err(format!("`data`: {e}")),
    }
}

/// How deeply `data` may nest objects and arrays, itself included.
///
/// serde_json, and so many clients, refuse a message nested 128 levels or
/// more, and the host puts client data deeper than it came (a peer's
/// `metadata` sits four levels into `room:joined`). A bound well below that
/// keeps every frame built from accepted data readable by such clients.
pub const MAX_DATA_DEPTH: usize = 64;

fn depth(data: &Map<String, Value>) -> usize {
    fn value_depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
            Value::Object(members) => 1 + members.values().map(value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + data.values().map(value_depth).max().unwrap_or(0)
}

impl EnvelopeError {
    fn bare(message: String) -> EnvelopeError {
        EnvelopeError {
            id: None,
            event: None,
            message,
        }
    }
}

fn invalid_json_message(e: &serde_json::Error) -> String {
    if e.is_data() {
        "a message must be a JSON object".into()
    } else {
        format!("not valid JSON: {e}")
    }
}

/// Rejects unknown and repeated top-level keys: a typo must not pass.
fn check_fields(fields: &[(Cow<str>, &RawValue)]) -> Option<String> {
    for (i, (key, _)) in fields.iter().enumerate() {
        if !matches!(key.as_ref(), "event" | "id" | "data") {
            return Some(format!(
                "unknown field `{key}`; expected `event`, `id` or `data`"
            ));
        }
        if fields[..i].iter().any(|(earlier, _)| earlier == key) {
            return Some(format!("duplicate field `{key}`"));
        }
    }
    None
}

fn parse_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<str>>(raw.get()).ok()
}

/// The event name of a frame this module wrote: every frame starts with
/// `{"event":"`, and event names need no escaping.
pub fn frame_event(frame: &Frame) -> &str {
    let rest = frame.as_str().strip_prefix("{\"event\":\"").unwrap_or("");
    // A byte loop: names are short, and `memchr`'s setup costs more than
    // it saves on every frame written.
    let end = rest.bytes().position(|b| b == b'"').unwrap_or(rest.len());
    &rest[..end]
}

/// A serialized outbound message. Cloning shares the bytes, so a broadcast
/// serializes once for all its recipients.
pub type Frame = Utf8Bytes;

#[derive(Serialize)]
struct Outbound<'a, D: Serialize + ?Sized> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    data: &'a D,
}

/// Writes `{"event", "id"?, "data"}`.
pub fn frame<D: Serialize + ?Sized>(event: &str, id: Option<&CorrelationId>, data: &D) -> Frame {
    let outbound = Outbound {
        event,
        id: id.map(CorrelationId::as_str),
        data,
    };
    serde_json::to_string(&outbound)
        .expect("serializing JSON values and strings cannot fail")
        .into()
}

/// Plugin-supplied JSON text, if it is one JSON object (the only shape
/// `data` and peer metadata may have).
pub fn json_object(text: &str) -> Option<Box<RawValue>> {
    let raw = RawValue::from_string(text.to_owned()).ok()?;
    raw.get().trim_start().starts_with('{').then_some(raw)
}

/// Like [`frame`], for `data` the host itself wrote as the JSON text of an
/// object, which is not read again.
pub fn frame_json(event: &EventName, id: Option<&CorrelationId>, data: &str) -> Frame {
    let mut out = String::with_capacity(data.len() + 96);
    // Event names need no escaping.
    out.push_str(r#"{"event":""#);
    out.push_str(event.as_str());
    out.push('"');
    if let Some(id) = id {
        out.push_str(r#","id":"#);
        write_json_str(&mut out, id.as_str());
    }
    out.push_str(r#","data":"#);
    out.push_str(data);
    out.push('}');
    out.into()
}

/// Appends `text` as a JSON string; most need no escaping at all.
pub(crate) fn write_json_str(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&Value::from(text).to_string());
    }
}

/// Like [`frame`], for `data` that is already JSON text of an object.
pub fn frame_raw(event: &str, id: Option<&CorrelationId>, data: &RawValue) -> Frame {
    frame(event, id, data)
}

#[derive(Serialize)]
struct ErrorData<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
}

/// Writes an `error` message.
pub fn error_frame(
    code: ErrorCode,
    message: &str,
    id: Option<&CorrelationId>,
    event: Option<&EventName>,
) -> Frame {
    let data = ErrorData {
        code,
        message,
        event: event.map(EventName::as_str),
    };
    frame(event::ERROR, id, &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> EnvelopeError {
        Envelope::parse(text).expect_err(text)
    }

    #[test]
    fn accepts_a_full_envelope_and_defaults_data() {
        let env =
            Envelope::parse(r#"{"event":"room:join","id":"c-1","data":{"roomId":"a"}}"#).unwrap();
        assert_eq!(env.event.as_str(), "room:join");
        assert_eq!(env.id.unwrap().as_str(), "c-1");
        assert_eq!(env.data.into_object()["roomId"], "a");
        let ping = Envelope::parse(r#"{"event":"ping"}"#).unwrap();
        assert_eq!(ping.data, Data::Object(Map::new()));
    }

    #[test]
    fn rejects_unknown_and_duplicate_fields_but_echoes_what_is_valid() {
        let e = err(r#"{"event":"ping","id":"x","extra":1}"#);
        assert!(e.message.contains("extra"));
        assert_eq!(e.id.unwrap().as_str(), "x");
        assert_eq!(e.event.unwrap().as_str(), "ping");
        assert!(
            err(r#"{"event":"ping","event":"ping"}"#)
                .message
                .contains("duplicate")
        );
    }

    #[test]
    fn rejects_bad_data_event_and_id() {
        assert!(
            err(r#"{"event":"ping","data":null}"#)
                .message
                .contains("object")
        );
        assert!(
            err(r#"{"event":"ping","data":[]}"#)
                .message
                .contains("object")
        );
        let e = err(r#"{"event":"Bad","id":"ok"}"#);
        assert!(e.event.is_none());
        assert_eq!(e.id.unwrap().as_str(), "ok");
        let e = err(r#"{"event":"ping","id":""}"#);
        assert!(e.id.is_none());
        assert_eq!(e.event.unwrap().as_str(), "ping");
        assert!(err(r#"{"id":"x"}"#).message.contains("missing"));
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert!(err("[1]").id.is_none());
        assert!(err("nope").message.contains("JSON"));
        assert!(err(&"[".repeat(1000)).message.contains("JSON"));
    }

    #[test]
    fn a_relay_in_its_usual_shape_is_read_in_one_pass_in_any_order() {
        let text = r#"{"data":{"candidate":{"sdpMLineIndex":0,"candidate":"c"},"to":"0000000000000002"},"id":"q","event":"ice:candidate"}"#;
        let env = Envelope::parse(text).unwrap();
        assert_eq!(env.event.as_str(), "ice:candidate");
        assert_eq!(env.id.unwrap().as_str(), "q");
        let Data::Relay(relay) = env.data else {
            panic!("not read as a relay: {:?}", env.data);
        };
        assert_eq!(relay.target.map(|id| id.to_u64()), Some(2));
        let data: Value = serde_json::from_str(&relay.data()).unwrap();
        let sent = serde_json::json!({"to":"0000000000000002","candidate":{"candidate":"c","sdpMLineIndex":0}});
        assert_eq!(data, sent);
    }

    #[test]
    fn a_relay_in_another_shape_gets_the_field_by_field_reading() {
        let e = err(r#"{"event":"sdp:offer","id":null,"data":{"to":"p","sdp":"v"}}"#);
        assert!(e.message.contains("`id`"), "{}", e.message);
        assert_eq!(e.event.unwrap().as_str(), "sdp:offer");
        let e = err(r#"{"id":"1","event":"sdp:offer","data":["p","v"]}"#);
        assert!(e.message.contains("object"), "{}", e.message);
        assert_eq!(e.id.unwrap().as_str(), "1");
        assert!(
            err(r#"["sdp:offer",null,{"to":"p","sdp":"v"}]"#)
                .id
                .is_none()
        );
        let e = err(r#"{"event":"sdp:offer","event":"sdp:offer","data":{"to":"p","sdp":"v"}}"#);
        assert!(e.message.contains("duplicate"), "{}", e.message);
        // Valid, with a field normalising drops: read as an object.
        let env = Envelope::parse(r#"{"event":"sdp:offer","data":{"to":"p","sdp":"v","x":1}}"#);
        assert!(matches!(env.unwrap().data, Data::Object(_)));
    }

    #[test]
    fn escaped_strings_are_valid_ids() {
        let env = Envelope::parse(r#"{"event":"ping","id":"a\"b"}"#).unwrap();
        assert_eq!(env.id.unwrap().as_str(), "a\"b");
    }

    /// Found by fuzzing: `data` nested 127 levels was accepted, but a frame
    /// carrying it nests 128, which serde_json refuses to read.
    #[test]
    fn data_nesting_is_bounded_so_frames_stay_readable() {
        let nested = |levels: usize| {
            format!(
                r#"{{"event":"x","id":"n","data":{}1{}}}"#,
                r#"{"a":"#.repeat(levels),
                "}".repeat(levels)
            )
        };
        let deepest = Envelope::parse(&nested(MAX_DATA_DEPTH)).unwrap();
        let frame = frame("x", None, &deepest.data.into_object());
        assert!(serde_json::from_str::<Value>(&frame).is_ok());
        for levels in [MAX_DATA_DEPTH + 1, 127] {
            let e = err(&nested(levels));
            assert!(e.message.contains("nest"), "{}", e.message);
            assert_eq!(e.id.unwrap().as_str(), "n");
            assert_eq!(e.event.unwrap().as_str(), "x");
        }
        let arrays = format!(
            r#"{{"event":"x","data":{{"a":{}{}}}}}"#,
            "[".repeat(MAX_DATA_DEPTH),
            "]".repeat(MAX_DATA_DEPTH)
        );
        assert!(err(&arrays).message.contains("nest"));
    }

    /// Found by fuzzing: without serde_json's `float_roundtrip`, a number
    /// written back out read in again as another number.
    #[test]
    fn numbers_read_back_as_written() {
        let text = r#"{"event":"x","data":{"e":2.2250758500387214e-309,"f":0.1,"g":-0}}"#;
        let data = Envelope::parse(text).unwrap().data.into_object();
        let again = Envelope::parse(&frame("x", None, &data)).unwrap();
        assert_eq!(again.data.into_object(), data);
        let exact: f64 = "2.2250758500387214e-309".parse().unwrap();
        assert_eq!(data["e"].as_f64(), Some(exact));
    }

    #[test]
    fn data_keeps_the_last_duplicate_key() {
        let env = Envelope::parse(r#"{"event":"x","data":{"a":1,"a":2}}"#).unwrap();
        assert_eq!(env.data.into_object()["a"], 2);
    }

    #[test]
    fn frame_event_reads_back_the_name() {
        assert_eq!(
            frame_event(&frame("room:joined", None, &serde_json::json!({}))),
            "room:joined"
        );
    }

    #[test]
    fn frame_json_writes_what_frame_writes() {
        let event = EventName::parse("sdp:offer").unwrap();
        let data = serde_json::json!({ "from": "a", "sdp": "v=0\r\n" });
        let id = CorrelationId::parse("q\"1").unwrap();
        for id in [None, Some(&id)] {
            assert_eq!(
                frame_json(&event, id, &data.to_string()),
                frame(event.as_str(), id, &data)
            );
        }
    }

    #[test]
    fn frames_omit_a_missing_id() {
        let f = frame("pong", None, &serde_json::json!({}));
        assert_eq!(f.as_str(), r#"{"event":"pong","data":{}}"#);
        let id = CorrelationId::parse("7").unwrap();
        let f = error_frame(ErrorCode::NotInRoom, "m", Some(&id), None);
        assert_eq!(
            f.as_str(),
            r#"{"event":"error","id":"7","data":{"code":"NOT_IN_ROOM","message":"m"}}"#
        );
    }
}
