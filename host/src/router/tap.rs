//! The one place a plugin call meets recording and shadow runs: a call
//! about a room being recorded, or to an entry being shadowed (about a
//! room or not: a connect, the auth of a client in no room), is traced,
//! and written down with the view its plugin had, or handed with it to
//! the shadow; any other call goes straight to the plugin, after an
//! atomic load or two.

use std::sync::Arc;

use switchboard_recording::{Call, Input};

use super::Router;
use crate::ids::RoomId;
use crate::plugins::{self, Answer, Called, Plugin, PluginFault, unix_millis};
use crate::record::{self, Recording};

/// Who watches the calls about a room, or about no room: the recording
/// the room is in, and (`None` if no shadow runs) the shadows of the
/// entries called.
pub(super) struct Tap {
    recording: Option<Arc<Recording>>,
    room: Option<RoomId>,
}

impl Router {
    /// What watches the calls about `room`, if anything may.
    pub(super) fn tap(&self, room: Option<&RoomId>) -> Option<Tap> {
        let recording = room.and_then(|room| self.recorder.recording(room));
        if recording.is_none() && !self.shadows.any() {
            return None;
        }
        Some(Tap {
            recording,
            room: room.cloned(),
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
        let shadow = self.shadows.of(&plugin.name);
        if tap.recording.is_none() && shadow.is_none() {
            return live();
        }
        let input = input();
        let now = unix_millis();
        let callers = record::callers(&input);
        let room = tap.room.as_ref();
        let view = plugins::view(&self.hub, room, &plugin.name, &callers, now);
        let traced = plugin.trace(&input, now, None);
        let room = room.map(RoomId::to_string);
        if let Some(shadow) = shadow {
            let (view, decision) = (view.clone(), traced.decision.clone());
            shadow.ask(room.clone(), input.clone(), view, now, decision);
        }
        // Only a call about a room has a recording.
        if let (Some(recording), Some(room)) = (&tap.recording, room) {
            recording.write(Call {
                seq: 0,
                room,
                entry: plugin.name.to_string(),
                hash: plugin.hash.clone(),
                input: input.redacted(),
                view,
                decision: traced.decision,
            });
        }
        traced.result.map(|called| called.map(R::from))
    }
}
