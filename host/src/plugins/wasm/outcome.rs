//! The facade's values: what a plugin declares and decides, in the host's
//! own types. Values coming out of the guest are converted here, once, and
//! a value that breaks the contract (a reply with an invalid event name or
//! data that is not an object) never becomes one: it is a [`Breach`].

use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_recording::{self as recording, Ruling};

use super::bindings::types;
use super::contract::{self, Breach};
use crate::envelope::ErrorCode;
use crate::ids::{ClientId, EventName};
use crate::state::{ClientInfo, Identity};
use crate::vocab::RelayEvent;

/// What a plugin declared about itself.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub name: String,
    pub version: String,
    pub events: Vec<EventDecl>,
    pub hooks: Hooks,
}

#[derive(Clone, Debug)]
pub struct EventDecl {
    pub name: String,
    pub schema: Option<String>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Hooks {
    pub connect: bool,
    pub auth: bool,
    pub disconnect: bool,
    pub timer: bool,
}

/// What a plugin decided about one event.
#[derive(Debug)]
pub enum Outcome {
    Pass,
    Reply(Reply),
    /// Deliver the event to the client this names (`on-event` only);
    /// `None` when the plugin named no client id at all, which the host
    /// answers as it answers a client that is gone: `PEER_NOT_FOUND`.
    Relay(Option<ClientId>),
    /// Deliver the relay event to its target (`on-relay` only).
    Deliver,
    Reject {
        code: ErrorCode,
        message: String,
    },
    Handled,
}

/// An answer to the sender, already checked: the host adds the `id`.
#[derive(Debug)]
pub struct Reply {
    pub event: EventName,
    pub data: Box<RawValue>,
}

/// A relay event as `on-relay` gets it.
#[derive(Clone, Copy, Debug)]
pub struct Relay {
    pub event: RelayEvent,
    pub sender: ClientId,
    /// The client `data.to` names, if it is a client id at all.
    pub target: Option<ClientId>,
    /// Whether the target is in the sender's room.
    pub same_room: bool,
}

#[derive(Debug)]
pub enum AuthOutcome {
    Pass,
    Accept(Identity),
    Reject(String),
}

/// What any hook returned, for a call described by a recorded
/// [`Input`](recording::Input).
#[derive(Debug)]
pub enum Answer {
    /// `on-event` or `on-relay`.
    Event(Outcome),
    Auth(AuthOutcome),
    /// `on-connect`, `on-disconnect`, `on-timer`.
    Done,
}

impl Answer {
    /// The answer as a recording holds it.
    pub(super) fn ruling(&self) -> Ruling {
        match self {
            Answer::Event(outcome) => match outcome {
                Outcome::Pass => Ruling::Pass,
                Outcome::Reply(reply) => Ruling::Reply {
                    event: reply.event.to_string(),
                    data: serde_json::from_str(reply.data.get()).unwrap_or(Value::Null),
                },
                Outcome::Relay(to) => Ruling::Relay {
                    to: to.map(|id| id.to_string()),
                },
                Outcome::Deliver => Ruling::Deliver,
                Outcome::Reject { code, message } => Ruling::Reject {
                    code: code.to_string(),
                    message: message.clone(),
                },
                Outcome::Handled => Ruling::Handled,
            },
            Answer::Auth(AuthOutcome::Pass) => Ruling::Pass,
            Answer::Auth(AuthOutcome::Accept(identity)) => Ruling::Accept {
                user_id: identity.user_id.clone(),
                role: identity.role.clone(),
                room_claim: identity.room_claim.clone(),
            },
            Answer::Auth(AuthOutcome::Reject(reason)) => Ruling::Refuse {
                reason: reason.clone(),
            },
            Answer::Done => Ruling::Done,
        }
    }
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Outcome {
        match answer {
            Answer::Event(outcome) => outcome,
            Answer::Auth(_) | Answer::Done => Outcome::Pass,
        }
    }
}

impl From<Answer> for AuthOutcome {
    fn from(answer: Answer) -> AuthOutcome {
        match answer {
            Answer::Auth(outcome) => outcome,
            Answer::Event(_) | Answer::Done => AuthOutcome::Pass,
        }
    }
}

impl From<Answer> for () {
    fn from(_: Answer) {}
}

impl From<types::Descriptor> for Descriptor {
    fn from(d: types::Descriptor) -> Self {
        let mut hooks = Hooks::default();
        for hook in d.hooks {
            match hook {
                types::Hook::Connect => hooks.connect = true,
                types::Hook::Auth => hooks.auth = true,
                types::Hook::Disconnect => hooks.disconnect = true,
                types::Hook::Timer => hooks.timer = true,
            }
        }
        let events = d
            .events
            .into_iter()
            .map(|e| EventDecl {
                name: e.name,
                schema: e.schema,
            })
            .collect();
        Descriptor {
            name: d.name,
            version: d.version,
            events,
            hooks,
        }
    }
}

impl TryFrom<types::Outcome> for Outcome {
    type Error = Breach;

    fn try_from(outcome: types::Outcome) -> Result<Self, Breach> {
        Ok(match outcome {
            types::Outcome::Pass => Outcome::Pass,
            types::Outcome::Reply(m) => Outcome::Reply(Reply::try_from(m)?),
            types::Outcome::Relay(to) => Outcome::Relay(ClientId::parse(&to)),
            types::Outcome::Reject(e) => reject(e),
            types::Outcome::Handled => Outcome::Handled,
        })
    }
}

impl TryFrom<types::RelayOutcome> for Outcome {
    type Error = Breach;

    fn try_from(outcome: types::RelayOutcome) -> Result<Self, Breach> {
        Ok(match outcome {
            types::RelayOutcome::Pass => Outcome::Pass,
            types::RelayOutcome::Deliver => Outcome::Deliver,
            types::RelayOutcome::Reply(m) => Outcome::Reply(Reply::try_from(m)?),
            types::RelayOutcome::Reject(e) => reject(e),
            types::RelayOutcome::Handled => Outcome::Handled,
        })
    }
}

impl TryFrom<types::Message> for Reply {
    type Error = Breach;

    fn try_from(message: types::Message) -> Result<Self, Breach> {
        let (event, data) = contract::message(&message.event, &message.data)?;
        Ok(Reply { event, data })
    }
}

fn reject(error: types::ProtocolError) -> Outcome {
    Outcome::Reject {
        code: error_code(error.code),
        message: error.message,
    }
}

impl From<types::AuthOutcome> for AuthOutcome {
    fn from(outcome: types::AuthOutcome) -> Self {
        match outcome {
            types::AuthOutcome::Pass => AuthOutcome::Pass,
            types::AuthOutcome::Accept(i) => AuthOutcome::Accept(Identity {
                user_id: i.user_id,
                role: i.role,
                room_claim: i.room_claim,
            }),
            types::AuthOutcome::Reject(reason) => AuthOutcome::Reject(reason),
        }
    }
}

pub(super) fn error_code(code: types::ErrorCode) -> ErrorCode {
    use types::ErrorCode as W;
    match code {
        W::InvalidMessage => ErrorCode::InvalidMessage,
        W::UnknownEvent => ErrorCode::UnknownEvent,
        W::NotAuthenticated => ErrorCode::NotAuthenticated,
        W::AuthFailed => ErrorCode::AuthFailed,
        W::AlreadyInRoom => ErrorCode::AlreadyInRoom,
        W::NotInRoom => ErrorCode::NotInRoom,
        W::PeerNotFound => ErrorCode::PeerNotFound,
        W::RoomFull => ErrorCode::RoomFull,
        W::Forbidden => ErrorCode::Forbidden,
        W::Internal => ErrorCode::Internal,
    }
}

pub(super) fn wit_client_info(info: &ClientInfo) -> types::ClientInfo {
    let identity = info.identity.as_ref();
    types::ClientInfo {
        id: info.id.to_string(),
        user_id: identity.map(|i| i.user_id.clone()),
        role: identity.and_then(|i| i.role.clone()),
        room_claim: identity.and_then(|i| i.room_claim.clone()),
        room: info.room.as_ref().map(|r| r.as_str().to_owned()),
    }
}

/// A recorded client record as the guest gets it.
pub(super) fn wit_recorded_client(client: &recording::Client) -> types::ClientInfo {
    types::ClientInfo {
        id: client.id.clone(),
        user_id: client.user_id.clone(),
        role: client.role.clone(),
        room_claim: client.room_claim.clone(),
        room: client.room.clone(),
    }
}

/// A recorded relay as the guest gets it; `None` for an event or a sender
/// that the host would never have passed on.
pub(super) fn wit_recorded_relay(
    event: &str,
    sender: &str,
    target: Option<&str>,
    same_room: bool,
) -> Option<types::Relay> {
    let relay = Relay {
        event: RelayEvent::parse(event)?,
        sender: ClientId::parse(sender)?,
        target: target.and_then(ClientId::parse),
        same_room,
    };
    Some(wit_relay(&relay))
}

pub(super) fn wit_relay(relay: &Relay) -> types::Relay {
    types::Relay {
        event: match relay.event {
            RelayEvent::SdpOffer => types::RelayEvent::SdpOffer,
            RelayEvent::SdpAnswer => types::RelayEvent::SdpAnswer,
            RelayEvent::IceCandidate => types::RelayEvent::IceCandidate,
        },
        sender: relay.sender.to_u64(),
        target: relay.target.map(ClientId::to_u64),
        same_room: relay.same_room,
    }
}
