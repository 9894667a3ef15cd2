//! The one place a plugin call meets recording: a call about a room being
//! recorded is traced, and written down with the view its plugin had;
//! any other call goes straight to the plugin, after one atomic load.

use std::sync::Arc;

use switchboard_recording::{Call, Input};

use super::Router;
use crate::ids::RoomId;
use crate::plugins::{self, Answer, Called, Plugin, PluginFault, unix_millis};
use crate::record::{self, Recording};

/// Where a room's calls are being recorded.
pub(super) struct Tap {
    recording: Arc<Recording>,
    room: RoomId,
}

impl Router {
    /// The recording `room`'s calls go to, if it is being recorded.
    pub(super) fn tap(&self, room: Option<&RoomId>) -> Option<Tap> {
        let room = room?;
        let recording = self.recorder.recording(room)?;
        Some(Tap {
            recording,
            room: room.clone(),
        })
    }

    /// One plugin call: `live` when `tap` is `None`; otherwise the call
    /// `input` describes, traced, with the same effect on the hub and the
    /// same answer as `live`, and written to the recording.
    pub(super) fn call<R: From<Answer>>(
        &self,
        tap: Option<&Tap>,
        plugin: &Plugin,
        input: impl FnOnce() -> Input,
        live: impl FnOnce() -> Result<Called<R>, PluginFault>,
    ) -> Result<Called<R>, PluginFault> {
        let Some(tap) = tap else {
            return live();
        };
        let input = input();
        let now = unix_millis();
        let callers = record::callers(&input);
        let view = plugins::view(&self.hub, &tap.room, &plugin.name, &callers, now);
        let traced = plugin.trace(&input, now, None);
        tap.recording.write(Call {
            seq: 0,
            room: tap.room.to_string(),
            entry: plugin.name.to_string(),
            hash: plugin.hash.clone(),
            input: input.redacted(),
            view,
            decision: traced.decision,
        });
        traced.result.map(|called| called.map(R::from))
    }
}
