//! Inbound parsing and outbound frames. Inbound `data` stays raw JSON until
//! an event's handler parses what it needs; relayed payloads are copied as
//! raw JSON, never re-parsed.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct AuthRequest {
    pub token: String,
}

#[derive(Deserialize)]
pub struct Join<'a> {
    #[serde(rename = "roomId")]
    pub room_id: String,
    #[serde(borrow, default)]
    pub metadata: Option<&'a RawValue>,
}

/// `sdp:offer`, `sdp:answer` and `ice:candidate` in one shape: whichever
/// payload field is present is forwarded as it came.
#[derive(Deserialize)]
pub struct RelayIn<'a> {
    #[serde(borrow)]
    pub to: Cow<'a, str>,
    #[serde(borrow, default)]
    pub sdp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub candidate: Option<&'a RawValue>,
}

#[derive(Serialize)]
pub struct RelayOut<'a> {
    pub from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdp: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Out<'a, D> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    data: D,
}

/// Parses `data` (absent means `{}`) into an event's shape.
pub fn data<'a, T: Deserialize<'a>>(data: Option<&'a RawValue>) -> Option<T> {
    serde_json::from_str(data.map_or("{}", RawValue::get)).ok()
}

pub fn frame<D: Serialize>(event: &str, id: Option<&str>, data: D) -> Message {
    let out = Out { event, id, data };
    // Serializing these derived structs and `json!` values cannot fail:
    // every key is a string and no Serialize impl here returns an error.
    Message::text(serde_json::to_string(&out).unwrap_or_default())
}

pub fn error(id: Option<&str>, event: Option<&str>, code: &str) -> Message {
    frame(
        "error",
        id,
        serde_json::json!({ "code": code, "message": code, "event": event }),
    )
}

/// A `Peer` object, serialized once at join and reused in every list.
pub fn peer(client_id: &str, user_id: &str, metadata: Option<&RawValue>) -> Box<RawValue> {
    #[derive(Serialize)]
    struct Peer<'a> {
        #[serde(rename = "clientId")]
        client_id: &'a str,
        #[serde(rename = "userId")]
        user_id: &'a str,
        metadata: &'a RawValue,
    }
    let empty = RawValue::from_string("{}".into()).unwrap_or_default();
    let peer = Peer {
        client_id,
        user_id,
        metadata: metadata.unwrap_or(&empty),
    };
    serde_json::value::to_raw_value(&peer).unwrap_or_default()
}

pub fn client_id(n: u64) -> String {
    format!("c{n}")
}

/// The inverse of `client_id`; anything else names no client.
pub fn parse_client_id(s: &str) -> Option<u64> {
    s.strip_prefix('c')?.parse().ok()
}

pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
