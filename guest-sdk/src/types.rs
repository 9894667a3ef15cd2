//! The values plugins and the host exchange, in plain Rust.

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{ErrorCode, RelayEvent};

/// What the host knows about one connection, at the time of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connection's opaque id, as its client sees it in `connected`.
    pub id: String,
    /// The token's `sub`; `None` before a successful auth.
    pub user_id: Option<String>,
    /// The token's `role` claim.
    pub role: Option<String>,
    /// The token's `room` claim; `None` means any room.
    pub room_claim: Option<String>,
    /// The room the client is in.
    pub room: Option<String>,
}

impl ClientInfo {
    /// This client as a room member with the given metadata (JSON text of an
    /// object).
    ///
    /// A client without a user id (auth disabled) shows its client id as
    /// `userId`, because a peer always has one.
    pub fn as_peer(&self, metadata: &str) -> Peer {
        Peer {
            client_id: self.id.clone(),
            user_id: self.user_id.clone().unwrap_or_else(|| self.id.clone()),
            metadata: metadata.to_owned(),
        }
    }
}

/// A relay event as the host knows it at the time of the call: what
/// deciding its route takes. Its data is [`Host::relay_data`], and the
/// sender's [`ClientInfo`] is [`Host::client_info`]; a plugin that only
/// routes needs neither, and the host forwards the payload itself on
/// [`RelayOutcome::Deliver`].
///
/// [`Host::relay_data`]: crate::Host::relay_data
/// [`Host::client_info`]: crate::Host::client_info
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub event: RelayEvent,
    /// The sender's client id.
    pub sender: String,
    /// The client `data.to` names; `None` when `to` is not a client id. It
    /// may have disconnected (then `same_room` is false).
    pub target: Option<String>,
    /// Whether the target is in the sender's room; false when either is in
    /// none.
    pub same_room: bool,
}

/// What a plugin decided about a relay event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Not mine: the next plugin in the chain decides.
    Pass,
    /// Deliver it to its target, with `to` replaced by `from`; the host
    /// answers `PEER_NOT_FOUND` if no such client is connected.
    Deliver,
    /// Answer the sender; the host adds the correlation id. `data` is the
    /// JSON text of an object.
    Reply { event: String, data: String },
    /// Answer the sender with this protocol error.
    Reject(ProtocolError),
    /// Done; nothing more is sent to the sender.
    Handled,
}

impl RelayOutcome {
    /// Answer the sender with a protocol error.
    pub fn reject(code: ErrorCode, message: impl Into<String>) -> RelayOutcome {
        RelayOutcome::Reject(ProtocolError {
            code,
            message: message.into(),
        })
    }

    /// What `outcome`, an [`on_event`](crate::Plugin::on_event) answer to
    /// `relay`, means for it. A relay event goes to the client its `to`
    /// names or to none, so [`Outcome::Relay`] to another client is an
    /// `INTERNAL` error.
    pub fn from_event_outcome(outcome: Outcome, relay: &Relay) -> RelayOutcome {
        match outcome {
            Outcome::Pass => RelayOutcome::Pass,
            Outcome::Reply { event, data } => RelayOutcome::Reply { event, data },
            Outcome::Relay(to) if relay.target.as_ref().is_none_or(|target| *target == to) => {
                RelayOutcome::Deliver
            }
            Outcome::Relay(_) => RelayOutcome::reject(
                ErrorCode::Internal,
                "a relay event goes only to the client its `to` names",
            ),
            Outcome::Reject(error) => RelayOutcome::Reject(error),
            Outcome::Handled => RelayOutcome::Handled,
        }
    }
}

/// A member of a room, as PROTOCOL.md's `Peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub client_id: String,
    pub user_id: String,
    /// JSON text of an object.
    pub metadata: String,
}

impl Peer {
    /// The wire form as a `Value`; see the `Serialize` impl.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a peer is always valid JSON")
    }
}

/// The wire form: `{"clientId", "userId", "metadata": object}`, with the
/// metadata written out as the text it is stored as, unparsed. Metadata
/// that is not a JSON object (the host never stores such) shows as `{}`,
/// so a reply is never malformed.
impl Serialize for Peer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut peer = serializer.serialize_struct("Peer", 3)?;
        peer.serialize_field("clientId", &self.client_id)?;
        peer.serialize_field("userId", &self.user_id)?;
        peer.serialize_field("metadata", object_or_empty(&self.metadata))?;
        peer.end()
    }
}

fn object_or_empty(text: &str) -> &RawValue {
    json_object(text).unwrap_or_else(|| serde_json::from_str("{}").expect("`{}` is JSON"))
}

/// `text` if it is the JSON text of an object, the only shape the host
/// takes for data and metadata; without surrounding whitespace, as the
/// host stores it.
pub(crate) fn json_object(text: &str) -> Option<&RawValue> {
    serde_json::from_str::<&RawValue>(text)
        .ok()
        .filter(|raw| raw.get().starts_with('{'))
}

/// A protocol error: the host answers the sender with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    /// Client-facing text.
    pub message: String,
}

/// What a plugin decided about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not mine: the next plugin in the chain decides.
    Pass,
    /// Answer the sender; the host adds the correlation id. `data` is the
    /// JSON text of an object.
    Reply { event: String, data: String },
    /// Deliver the event to this client, with `to` replaced by `from`. For
    /// a relay event (see [`Plugin::on_relay`](crate::Plugin::on_relay)),
    /// only the client its `to` names.
    Relay(String),
    /// Answer the sender with this protocol error.
    Reject(ProtocolError),
    /// Done; nothing more is sent to the sender.
    Handled,
}

impl Outcome {
    /// Answer the sender with `event` and `data` (a JSON object).
    pub fn reply(event: &str, data: &Value) -> Outcome {
        Outcome::Reply {
            event: event.to_owned(),
            data: data.to_string(),
        }
    }

    /// Answer the sender with a protocol error.
    pub fn reject(code: ErrorCode, message: impl Into<String>) -> Outcome {
        Outcome::Reject(ProtocolError {
            code,
            message: message.into(),
        })
    }
}

/// A verified identity, from an auth plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub role: Option<String>,
    /// The only room this identity may join; `None` means any.
    pub room_claim: Option<String>,
}

/// What an auth plugin decided about one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Not mine: the next auth plugin decides.
    Pass,
    Accept(Identity),
    /// The token is refused; the text is the client-facing reason.
    Reject(String),
}

/// Calls a plugin asks for besides the events it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Connect,
    Auth,
    Disconnect,
    Timer,
}

/// An event a plugin handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDecl {
    /// 1..64 chars of `[a-z0-9:._-]`.
    pub name: String,
    /// A JSON Schema for `data`: custom events only; the host knows the
    /// schemas of the events PROTOCOL.md defines.
    pub schema: Option<String>,
}

impl EventDecl {
    /// An event without a schema: one that PROTOCOL.md defines.
    pub fn new(name: &str) -> EventDecl {
        EventDecl {
            name: name.to_owned(),
            schema: None,
        }
    }
}

/// What a plugin is and what it wants to be called for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub name: String,
    pub version: String,
    pub events: Vec<EventDecl>,
    pub hooks: Vec<Hook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event;

    fn client(user_id: Option<&str>) -> ClientInfo {
        ClientInfo {
            id: "c1".into(),
            user_id: user_id.map(Into::into),
            role: None,
            room_claim: None,
            room: None,
        }
    }

    #[test]
    fn peer_json_has_exactly_the_wire_fields() {
        let peer = client(Some("alice")).as_peer(r#"{"name":"Alice"}"#);
        assert_eq!(
            peer.to_json(),
            json!({"clientId": "c1", "userId": "alice", "metadata": {"name": "Alice"}})
        );
    }

    #[test]
    fn peer_without_user_id_shows_its_client_id() {
        assert_eq!(client(None).as_peer("{}").user_id, "c1");
    }

    #[test]
    fn metadata_that_is_not_an_object_shows_as_empty_object() {
        for metadata in ["", "[1]", "null", "{"] {
            let peer = client(Some("a")).as_peer(metadata);
            assert_eq!(peer.to_json()["metadata"], json!({}), "{metadata:?}");
        }
    }

    #[test]
    fn outcome_helpers_build_wire_text() {
        assert_eq!(
            Outcome::reply(event::ROOM_LEFT, &json!({"roomId": "r"})),
            Outcome::Reply {
                event: event::ROOM_LEFT.into(),
                data: r#"{"roomId":"r"}"#.into()
            }
        );
        assert_eq!(
            Outcome::reject(ErrorCode::NotInRoom, "no"),
            Outcome::Reject(ProtocolError {
                code: ErrorCode::NotInRoom,
                message: "no".into()
            })
        );
    }

    #[test]
    fn an_event_outcome_relays_a_relay_event_only_to_its_target() {
        let relay = |target: Option<&str>| Relay {
            event: RelayEvent::SdpOffer,
            sender: "c1".into(),
            target: target.map(Into::into),
            same_room: true,
        };
        let to = |id: &str| Outcome::Relay(id.into());
        let read = RelayOutcome::from_event_outcome;
        assert_eq!(read(to("c2"), &relay(Some("c2"))), RelayOutcome::Deliver);
        // `to` named no client id: the host answers PEER_NOT_FOUND.
        assert_eq!(read(to("c9"), &relay(None)), RelayOutcome::Deliver);
        let elsewhere = read(to("c3"), &relay(Some("c2")));
        assert!(matches!(elsewhere, RelayOutcome::Reject(e) if e.code == ErrorCode::Internal));
        assert_eq!(read(Outcome::Pass, &relay(Some("c2"))), RelayOutcome::Pass);
    }
}
