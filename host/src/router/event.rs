//! Steps 6 to 8 of the order of checks for the events plugins handle:
//! routing (`UNKNOWN_EVENT`), the schema of `data`, then the chain under
//! the room's lock, and what its outcome says to do.

use std::sync::Arc;

use super::Router;
use super::reply::Cause;
use crate::envelope::{self, Data, ErrorCode};
use crate::ids::ClientId;
use crate::net::Outbound;
use crate::plugins::{Called, Chain, Effect, Outcome, Plugin, PluginFault, Relay};
use crate::schema::{self, Normalized};
use crate::vocab::event;

/// What the chain decided about an event and every plugin's queued
/// effects, in chain order.
struct Decided {
    outcome: Outcome,
    effects: Vec<Effect>,
}

impl Router {
    pub(super) fn route(&self, chain: &Chain, id: ClientId, cause: &Cause, data: Data) {
        let name = cause.event.as_str();
        let plugins = chain.route(name);
        if plugins.is_empty() {
            let message = format!("no handler for `{}`", cause.event);
            return self.error(id, cause, ErrorCode::UnknownEvent, &message);
        }
        let data = match schema::normalize(name, data) {
            Ok(data) => data,
            Err(message) => return self.error(id, cause, ErrorCode::InvalidMessage, &message),
        };
        if let Normalized::Object(object) = &data
            && let Err(message) = chain.validate(name, object)
        {
            return self.error(id, cause, ErrorCode::InvalidMessage, &message);
        }
        let Some(info) = self.hub.client_info(id) else {
            return;
        };
        let room = info.room.clone().or_else(|| match &data {
            Normalized::Object(object) if name == event::ROOM_JOIN => schema::join_target(object),
            _ => None,
        });
        if let Some(room) = &room {
            tracing::Span::current().record("room", tracing::field::display(room));
        }
        // Held across the chain and the delivery of what it decided, so
        // one room's events reach plugins, and their effects reach members,
        // in one order.
        let _guard = room.as_ref().map(|room| self.hub.lock_room(room));
        // The client a relay event's `to` names, if it is a client id.
        let target = match &data {
            Normalized::Relay(relay) => ClientId::parse(&relay.to),
            Normalized::Object(_) => None,
        };
        let decided = match &data {
            Normalized::Relay(relay) => {
                let target_room = target.and_then(|to| self.hub.room_of(to));
                let call = Relay {
                    event: relay.event,
                    sender: id,
                    target,
                    same_room: info.room.is_some() && target_room == info.room,
                };
                run_chain(plugins, |plugin| plugin.on_relay(&call, relay.json()))
            }
            Normalized::Object(object) => {
                let json = object.to_string();
                run_chain(plugins, |plugin| plugin.on_event(&info, name, &json))
            }
        };
        let decided = match decided {
            Ok(decided) => decided,
            Err(fault) => return self.plugin_error(id, cause, &fault),
        };
        match decided.outcome {
            Outcome::Pass | Outcome::Handled => {}
            Outcome::Reply(reply) => {
                let frame = envelope::frame_raw(reply.event.as_str(), cause.id, &reply.data);
                self.hub.send(id, Outbound::Frame(frame));
            }
            Outcome::Relay(to) => self.relay(id, cause, to, data),
            Outcome::Deliver => self.relay(id, cause, target, data),
            Outcome::Reject { code, message } => self.error(id, cause, code, &message),
        }
        self.apply(decided.effects);
    }
}

/// Asks each plugin in turn, with `call`, until one decides.
fn run_chain(
    plugins: &[Arc<Plugin>],
    call: impl Fn(&Plugin) -> Result<Called<Outcome>, PluginFault>,
) -> Result<Decided, PluginFault> {
    let mut effects = Vec::new();
    for plugin in plugins {
        let called = call(plugin)?;
        effects.extend(called.effects);
        if !matches!(called.value, Outcome::Pass) {
            return Ok(Decided {
                outcome: called.value,
                effects,
            });
        }
    }
    Ok(Decided {
        outcome: Outcome::Pass,
        effects,
    })
}
