//! Carrying out what plugins queued during a call ([`Effect`]), in the
//! order they queued it, after the caller's own answer; and kicks, which
//! operators ask for too.

use super::Router;
use crate::ids::ClientId;
use crate::net::Outbound;
use crate::plugins::{Called, Effect, PluginFault};
use crate::vocab::CloseCode;

impl Router {
    pub(super) fn apply(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send(to, frame) => {
                    self.hub.send(to, Outbound::Frame(frame));
                }
                Effect::Broadcast { to, frame } => self.hub.deliver(&to, &frame),
                Effect::Kick(client, reason) => self.kick(client, reason),
                Effect::Timer {
                    plugin,
                    room,
                    delay_ms,
                    tag,
                } => self.set_timer(plugin, room, delay_ms, tag),
            }
        }
    }

    /// Closes a client's connection with 4009; a suspended session, with
    /// no connection to close, ends at once.
    pub(crate) fn kick(&self, id: ClientId, reason: String) {
        if !self.sessions.cut_short(id) {
            self.hub
                .send(id, Outbound::Close(CloseCode::Kicked, reason));
        }
    }

    /// The effects of a connect or disconnect hook. Hooks run outside any
    /// message, so only sends make sense.
    pub(super) fn run_hook(&self, result: Result<Called<()>, PluginFault>, id: ClientId) {
        match result {
            Ok(called) => {
                for effect in called.effects {
                    if let Effect::Send(to, frame) = effect {
                        self.hub.send(to, Outbound::Frame(frame));
                    }
                }
            }
            Err(fault) => tracing::warn!(client = %id, "hook: {fault}"),
        }
    }
}
