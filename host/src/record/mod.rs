//! Recording and replay. The router traces every plugin call about a room
//! an operator chose to record and hands it, with what the plugin could
//! see and what it decided, to the room's recording (`recorder`), whose
//! writer thread appends it to the file (the format is
//! `switchboard-recording`'s). `switchboard replay` (`replay`) asks
//! another version the recorded calls, each against a scratch world built
//! from its view, and reports every decision that differs.
//!
//! A shadow run (`shadow`) asks a candidate version the calls the live
//! one answers, as they happen, and counts the decisions that differ.
//!
//! Recording and shadows never make a call wait: lines and calls go to
//! their threads over bounded channels, and what does not fit is counted
//! as dropped.

mod recorder;
mod replay;
mod shadow;

use serde_json::value::RawValue;
use switchboard_recording::{Client, Input};

use crate::ids::{ClientId, RoomId};
use crate::plugins::recorded_client;
use crate::state::ClientInfo;

pub(crate) use recorder::{Forward, Listing, MAX_RECORDINGS, Recorder, Recording, StartError};
pub(crate) use replay::{Replay, replay};
pub(crate) use shadow::{EventFigures, Report, Shadow, Shadows};

/// The inputs of the calls the router records, from its own values.
pub(crate) mod input {
    use super::*;
    use crate::plugins::Relay;
    use crate::schema;

    pub(crate) fn event(info: &ClientInfo, event: &str, data: &str) -> Input {
        Input::Event {
            client: recorded_client(info),
            event: event.to_owned(),
            data: raw(data.to_owned()),
        }
    }

    pub(crate) fn relay(relay: &Relay, data: &schema::Relay) -> Input {
        Input::Relay {
            event: relay.event.as_str().to_owned(),
            sender: relay.sender.to_string(),
            target: relay.target.map(|id| id.to_string()),
            same_room: relay.same_room,
            data: raw(data.data()),
        }
    }

    /// The token is the real one, for the call; a recording writes
    /// [`Input::redacted`].
    pub(crate) fn auth(info: &ClientInfo, token: &str, room_id: Option<&str>) -> Input {
        Input::Auth {
            client: recorded_client(info),
            token: token.to_owned(),
            room_id: room_id.map(str::to_owned),
        }
    }

    pub(crate) fn connect(info: &ClientInfo) -> Input {
        Input::Connect {
            client: recorded_client(info),
        }
    }

    pub(crate) fn disconnect(info: &ClientInfo) -> Input {
        Input::Disconnect {
            client: recorded_client(info),
        }
    }

    pub(crate) fn timer(room: &RoomId, tag: &str) -> Input {
        Input::Timer {
            room: room.to_string(),
            tag: tag.to_owned(),
        }
    }

    /// JSON text the host has already checked, as a recording holds it.
    fn raw(text: String) -> Box<RawValue> {
        RawValue::from_string(text)
            .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).expect("`{}` is JSON"))
    }
}

/// The clients a call names: their records go in its view beside the
/// room's members.
pub(crate) fn callers(input: &Input) -> Vec<ClientId> {
    let id = |client: &Client| ClientId::parse(&client.id);
    match input {
        Input::Event { client, .. }
        | Input::Auth { client, .. }
        | Input::Connect { client }
        | Input::Disconnect { client } => id(client).into_iter().collect(),
        Input::Relay { sender, target, .. } => [Some(sender), target.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|id| ClientId::parse(id))
            .collect(),
        Input::Timer { .. } => Vec::new(),
    }
}
