//! Plugins: WASM components run under wasmtime, behind a facade that speaks
//! the host's own types. Outside this module nothing sees wasmtime or the
//! generated bindings.

mod bindings;
mod cache;
mod engine;
mod imports;
mod load;
mod pool;
mod state;

pub use cache::{CompileCache, default_dir as default_cache_dir};
pub use engine::{engine, linker};
pub use imports::unix_millis;
pub use load::{Loader, PluginSource, WIT_VERSION, sha256_hex};
pub use pool::{Called, Plugin, PluginFault};
pub use state::Effect;

use bindings::types;

use crate::envelope::ErrorCode;
use crate::hub::{ClientInfo, Identity};
use crate::ids::ClientId;
use crate::schema::RelayKind;

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
    Reply {
        event: String,
        data: String,
    },
    /// Deliver the event to this client (`on-event` only).
    Relay(String),
    /// Deliver the relay event to its target (`on-relay` only).
    Deliver,
    Reject {
        code: ErrorCode,
        message: String,
    },
    Handled,
}

/// A relay event as `on-relay` gets it.
#[derive(Clone, Copy, Debug)]
pub struct Relay {
    pub kind: RelayKind,
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

impl From<types::Outcome> for Outcome {
    fn from(outcome: types::Outcome) -> Self {
        match outcome {
            types::Outcome::Pass => Outcome::Pass,
            types::Outcome::Reply(m) => Outcome::Reply {
                event: m.event,
                data: m.data,
            },
            types::Outcome::Relay(to) => Outcome::Relay(to),
            types::Outcome::Reject(e) => Outcome::Reject {
                code: error_code(e.code),
                message: e.message,
            },
            types::Outcome::Handled => Outcome::Handled,
        }
    }
}

impl From<types::RelayOutcome> for Outcome {
    fn from(outcome: types::RelayOutcome) -> Self {
        match outcome {
            types::RelayOutcome::Pass => Outcome::Pass,
            types::RelayOutcome::Deliver => Outcome::Deliver,
            types::RelayOutcome::Reply(m) => Outcome::Reply {
                event: m.event,
                data: m.data,
            },
            types::RelayOutcome::Reject(e) => Outcome::Reject {
                code: error_code(e.code),
                message: e.message,
            },
            types::RelayOutcome::Handled => Outcome::Handled,
        }
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

fn error_code(code: types::ErrorCode) -> ErrorCode {
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

fn wit_client_info(info: &ClientInfo) -> types::ClientInfo {
    let identity = info.identity.as_ref();
    types::ClientInfo {
        id: info.id.to_string(),
        user_id: identity.map(|i| i.user_id.clone()),
        role: identity.and_then(|i| i.role.clone()),
        room_claim: identity.and_then(|i| i.room_claim.clone()),
        room: info.room.as_ref().map(|r| r.as_str().to_owned()),
    }
}

fn wit_relay(relay: &Relay) -> types::Relay {
    types::Relay {
        event: match relay.kind {
            RelayKind::SdpOffer => types::RelayEvent::SdpOffer,
            RelayKind::SdpAnswer => types::RelayEvent::SdpAnswer,
            RelayKind::IceCandidate => types::RelayEvent::IceCandidate,
        },
        sender: relay.sender.to_u64(),
        target: relay.target.map(ClientId::to_u64),
        same_room: relay.same_room,
    }
}
