//! Replaying a recording (what `POST /admin/recordings` wrote) against a
//! plugin's trait impl, natively: each recorded call of the plugin's entry
//! is asked again with a [`TestHost`] built from the view recorded with it,
//! and every decision that differs from the recorded one is reported, as
//! `switchboard replay` does against a component.
//!
//! ```no_run
//! # use switchboard_sdk::{Descriptor, Plugin};
//! # struct Rooms;
//! # impl Plugin for Rooms {
//! #     fn describe() -> Descriptor {
//! #         Descriptor {
//! #             name: "rooms".into(),
//! #             version: "1.0.0".into(),
//! #             events: Vec::new(),
//! #             hooks: Vec::new(),
//! #         }
//! #     }
//! #     fn new(_: &str) -> Result<Self, String> { Ok(Rooms) }
//! # }
//! use switchboard_sdk::testing::replay;
//!
//! let plugin = Rooms::new(r#"{"capacity": 8}"#).unwrap();
//! let report = replay("tests/standup.jsonl", &plugin).unwrap();
//! assert!(report.is_clean(), "{report}");
//! ```

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use serde_json::Value;
use switchboard_recording::{
    Call, Client, Decision, Input, ReadError, Recording, Report, Ruling, View, compare,
};

use super::{State, TestHost};
use crate::__private::wit;
use crate::types::json_object;
use crate::{
    AuthOutcome, ClientInfo, ErrorCode, Outcome, Peer, Plugin, ProtocolError, Relay, RelayEvent,
    RelayOutcome,
};

/// Replays the recorded calls of the entry named as `P` describes itself.
pub fn replay<P: Plugin>(path: impl AsRef<Path>, plugin: &P) -> Result<Report, ReadError> {
    replay_entry(path, &P::describe().name, plugin)
}

/// Replays the recorded calls of the chain entry `entry` (for a plugin the
/// chain names otherwise than it names itself).
pub fn replay_entry<P: Plugin>(
    path: impl AsRef<Path>,
    entry: &str,
    plugin: &P,
) -> Result<Report, ReadError> {
    let recording = Recording::read(path)?;
    Ok(compare(&recording, entry, |call| decide(plugin, call)))
}

/// Asks `plugin` the call, as the host would have, and writes down what it
/// decided. A panic is the trap it would be in the host: a fault.
fn decide<P: Plugin>(plugin: &P, call: &Call) -> Decision {
    let host = TestHost::from_view(&call.view);
    host.state.borrow_mut().journal = Some(Vec::new());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| ask(plugin, &host, &call.input)));
    let steps = host.state.borrow_mut().journal.take().unwrap_or_default();
    match outcome {
        Ok(outcome) => Decision {
            outcome,
            effects: steps,
        },
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            Decision::fault(message, steps)
        }
    }
}

fn ask<P: Plugin>(plugin: &P, host: &TestHost, input: &Input) -> Ruling {
    match input {
        Input::Event {
            client,
            event,
            data,
        } => event_ruling(plugin.on_event(host, &client_info(client), event, data.get())),
        Input::Relay {
            event,
            sender,
            target,
            same_room,
            data,
        } => {
            let Some(event) = RelayEvent::parse(event) else {
                return Ruling::Fault {
                    reason: format!("`{event}` is not a relay event"),
                };
            };
            host.state.borrow_mut().relay_data = data.get().to_owned();
            let relay = Relay {
                event,
                sender: sender.clone(),
                target: target.clone(),
                same_room: *same_room,
            };
            relay_ruling(plugin.on_relay(host, &relay))
        }
        Input::Auth {
            client,
            token,
            room_id,
        } => auth_ruling(plugin.on_auth(host, &client_info(client), token, room_id.as_deref())),
        Input::Connect { client } => {
            plugin.on_connect(host, &client_info(client));
            Ruling::Done
        }
        Input::Disconnect { client } => {
            plugin.on_disconnect(host, &client_info(client));
            Ruling::Done
        }
        Input::Timer { room, tag } => {
            plugin.on_timer(host, room, tag);
            Ruling::Done
        }
    }
}

impl TestHost {
    /// The world a recorded call saw: its clients, its room with its
    /// members and storage, the room limit (rooms open elsewhere
    /// counting), and the clock.
    fn from_view(view: &View) -> TestHost {
        let mut state = State {
            now: view.now,
            max_rooms: Some(view.max_rooms),
            ..State::default()
        };
        for client in &view.clients {
            state.clients.insert(client.id.clone(), client_info(client));
        }
        if let Some(room) = &view.room {
            let members = room.members.iter().map(|member| Peer {
                client_id: member.client_id.clone(),
                user_id: member.user_id.clone(),
                metadata: member.metadata.to_string(),
            });
            state.rooms.insert(room.id.clone(), members.collect());
            for (key, value) in &room.kv {
                state
                    .kv
                    .insert((room.id.clone(), key.clone()), value.clone());
            }
        }
        state.other_rooms = view.open_rooms.saturating_sub(state.rooms.len());
        TestHost {
            state: state.into(),
        }
    }
}

fn client_info(client: &Client) -> ClientInfo {
    ClientInfo {
        id: client.id.clone(),
        user_id: client.user_id.clone(),
        role: client.role.clone(),
        room_claim: client.room_claim.clone(),
        room: client.room.clone(),
    }
}

fn event_ruling(outcome: Outcome) -> Ruling {
    match outcome {
        Outcome::Pass => Ruling::Pass,
        Outcome::Reply { event, data } => reply(event, &data),
        Outcome::Relay(to) => Ruling::Relay {
            to: switchboard_vocab::ids::ClientId::parse(&to).map(|_| to),
        },
        Outcome::Reject(error) => reject(error),
        Outcome::Handled => Ruling::Handled,
    }
}

fn relay_ruling(outcome: RelayOutcome) -> Ruling {
    match outcome {
        RelayOutcome::Pass => Ruling::Pass,
        RelayOutcome::Deliver => Ruling::Deliver,
        RelayOutcome::Reply { event, data } => reply(event, &data),
        RelayOutcome::Reject(error) => reject(error),
        RelayOutcome::Handled => Ruling::Handled,
    }
}

fn auth_ruling(outcome: AuthOutcome) -> Ruling {
    match outcome {
        AuthOutcome::Pass => Ruling::Pass,
        AuthOutcome::Accept(identity) => Ruling::Accept {
            user_id: identity.user_id,
            role: identity.role,
            room_claim: identity.room_claim,
        },
        AuthOutcome::Reject(reason) => Ruling::Refuse { reason },
    }
}

/// A reply as the host takes it: a reply whose event name is invalid or
/// whose data is not an object fails the call there.
fn reply(event: String, data: &str) -> Ruling {
    let valid = switchboard_vocab::ids::EventName::parse(&event).is_some();
    match json_object(data) {
        Some(data) if valid => Ruling::Reply {
            event,
            data: serde_json::from_str(data.get()).unwrap_or(Value::Null),
        },
        _ => Ruling::Fault {
            reason: format!("replied {event:?} with data {data}: not a valid reply"),
        },
    }
}

/// A rejection as it reaches the host: a code only the host answers with
/// has no WIT case and arrives as `INTERNAL`.
fn reject(error: ProtocolError) -> Ruling {
    let code = ErrorCode::from(wit::ErrorCode::from(error.code));
    Ruling::Reject {
        code: code.as_str().to_owned(),
        message: error.message,
    }
}
