//! The `data` schemas of the events PROTOCOL.md defines. Validation keeps
//! only the fields the protocol names, so unknown fields are never
//! forwarded, and plugins get data they need not re-check.

use serde_json::{Map, Value};

use crate::ids::{RoomId, char_len};

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
pub fn join_target(data: &Map<String, Value>) -> Option<RoomId> {
    data.get("roomId")
        .and_then(Value::as_str)
        .and_then(RoomId::parse)
}

/// Validates the data of an event a plugin handles, returning it with only
/// the fields its schema names. Events PROTOCOL.md does not define pass
/// through unchanged (their plugins' schemas come with the plugin platform).
pub fn normalize(event: &str, data: Map<String, Value>) -> Result<Map<String, Value>, String> {
    match event {
        ROOM_JOIN => room_join(&data),
        "room:leave" | "room:state" => Ok(Map::new()),
        "sdp:offer" | "sdp:answer" => sdp(&data),
        "ice:candidate" => ice_candidate(&data),
        _ => Ok(data),
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

fn sdp(data: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    out.insert("to".into(), non_empty_str(data, "to")?.into());
    out.insert("sdp".into(), non_empty_str(data, "sdp")?.into());
    Ok(out)
}

fn ice_candidate(data: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let to = non_empty_str(data, "to")?;
    let Some(Value::Object(candidate)) = data.get("candidate") else {
        return Err("`candidate` must be an object".into());
    };
    let mut clean = Map::new();
    clean.insert(
        "candidate".into(),
        required_str(candidate, "candidate")?.into(),
    );
    for key in ["sdpMid", "usernameFragment"] {
        match candidate.get(key) {
            None => {}
            Some(v @ (Value::Null | Value::String(_))) => {
                clean.insert(key.into(), v.clone());
            }
            Some(_) => return Err(format!("`candidate.{key}` must be a string or null")),
        }
    }
    match candidate.get("sdpMLineIndex") {
        None => {}
        Some(v) if v.is_null() || v.is_i64() || v.is_u64() => {
            clean.insert("sdpMLineIndex".into(), v.clone());
        }
        Some(_) => return Err("`candidate.sdpMLineIndex` must be an integer or null".into()),
    }
    let mut out = Map::new();
    out.insert("to".into(), to.into());
    out.insert("candidate".into(), Value::Object(clean));
    Ok(out)
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

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn join_keeps_room_and_metadata_only() {
        let out = normalize(
            ROOM_JOIN,
            map(json!({"roomId":"a","metadata":{"x":1},"y":2})),
        )
        .unwrap();
        assert_eq!(Value::Object(out), json!({"roomId":"a","metadata":{"x":1}}));
        assert!(normalize(ROOM_JOIN, map(json!({"roomId":""}))).is_err());
        assert!(normalize(ROOM_JOIN, map(json!({"roomId":"a".repeat(129)}))).is_err());
        assert!(normalize(ROOM_JOIN, map(json!({"roomId":"a","metadata":null}))).is_err());
    }

    #[test]
    fn candidate_fields_are_checked_and_trimmed() {
        let data = json!({"to":"p","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0,"zz":1},"q":1});
        let out = normalize("ice:candidate", map(data)).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"to":"p","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":0}})
        );
        assert!(normalize("ice:candidate", map(json!({"to":"p","candidate":{}}))).is_err());
        let bad_index = json!({"to":"p","candidate":{"candidate":"c","sdpMLineIndex":1.5}});
        assert!(normalize("ice:candidate", map(bad_index)).is_err());
    }

    #[test]
    fn sdp_needs_non_empty_to_and_sdp() {
        assert!(normalize("sdp:offer", map(json!({"to":"p","sdp":""}))).is_err());
        assert!(normalize("sdp:answer", map(json!({"to":"","sdp":"v"}))).is_err());
        let out = normalize("sdp:offer", map(json!({"to":"p","sdp":"v","x":1}))).unwrap();
        assert_eq!(Value::Object(out), json!({"to":"p","sdp":"v"}));
    }
}
