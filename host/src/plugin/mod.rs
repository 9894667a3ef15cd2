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
use crate::ids::RoomId;

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
    Reply { event: String, data: String },
    Relay(String),
    Reject { code: ErrorCode, message: String },
    Handled,
}

/// The client a relay event is addressed to, as the host knows it now.
#[derive(Debug)]
pub struct RelayTarget<'a> {
    /// `data.to`, as the sender wrote it.
    pub id: &'a str,
    /// `None` when it is in no room or not connected.
    pub room: Option<RoomId>,
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

fn wit_relay_target(target: &RelayTarget) -> types::RelayTarget {
    types::RelayTarget {
        id: target.id.to_owned(),
        room: target.room.as_ref().map(|r| r.as_str().to_owned()),
    }
}
