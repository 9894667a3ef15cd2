//! Steps 6 to 8 of the order of checks for the events plugins handle:
//! routing (`UNKNOWN_EVENT`), the schema of `data`, then the chain under
//! the room's lock, and what its outcome says to do. While a canary is
//! active the chain is the room's own (its pin), and a room opened by the
//! event is pinned.

use std::sync::Arc;

use super::reply::Cause;
use super::{Router, Verdict};
use crate::envelope::{self, Data, ErrorCode};
use crate::ids::{ClientId, RoomId};
use crate::net::Outbound;
use crate::plugins::{Called, Chain, Chains, Effect, Outcome, Plugin, PluginFault, Relay};
use crate::record::input;
use crate::schema::{self, Normalized};
use crate::state::{NodeId, Pin};
use crate::vocab::event;

/// What the chain decided about an event and every plugin's queued
/// effects, in chain order.
struct Decided {
    outcome: Outcome,
    effects: Vec<Effect>,
}

impl Router {
    /// Routes an event plugins handle; `text` is the message as it came,
    /// for the room's owner when that is another node.
    pub(super) fn route(
        &self,
        chains: Chains<'_>,
        id: ClientId,
        cause: &Cause,
        data: Data,
        text: &str,
    ) -> Verdict {
        let name = cause.event.as_str();
        // Its errors come after routing's, as the order of checks says.
        let data = schema::normalize(name, data);
        // A canary may declare events and schemas its stable version does
        // not: with a canary active, the room's chain says what the event
        // is.
        let chain = match chains.rollout {
            None => chains.stable,
            Some(_) => {
                let room = self.event_room(id, name, data.as_ref().ok());
                self.room_chain(chains, room.as_ref()).0
            }
        };
        let plugins = chain.route(name);
        if plugins.is_empty() {
            let message = format!("no handler for `{}`", cause.event);
            self.error(id, cause, ErrorCode::UnknownEvent, &message);
            return Verdict::Open;
        }
        let data = match data {
            Ok(data) => data,
            Err(message) => {
                self.error(id, cause, ErrorCode::InvalidMessage, &message);
                return Verdict::Open;
            }
        };
        if let Normalized::Object(object) = &data
            && let Err(message) = chain.validate(name, object)
        {
            self.error(id, cause, ErrorCode::InvalidMessage, &message);
            return Verdict::Open;
        }
        if let Some(link) = &self.link {
            match self.place(id, name, &data) {
                Place::Here => {}
                Place::At(owner) => {
                    if let Some(identity) = self.hub.client_info(id).and_then(|i| i.identity) {
                        link.forward(&owner, id, &identity, text);
                    }
                    return Verdict::Open;
                }
                Place::Claim(room) => return Verdict::Claim(room),
            }
        }
        self.run_event(chains, plugins, id, cause, name, data);
        Verdict::Open
    }

    /// The room an event is about: the sender's, or the one it joins.
    fn event_room(&self, id: ClientId, name: &str, data: Option<&Normalized>) -> Option<RoomId> {
        self.hub
            .room_of(id)
            .or_else(|| data.and_then(|data| join_target(name, data)))
    }

    /// The chain `room`'s events run on, and, for a room not open yet, the
    /// pin it gets if it opens now. Events of no room run on the stable
    /// chain.
    pub(super) fn room_chain<'a>(
        &self,
        chains: Chains<'a>,
        room: Option<&RoomId>,
    ) -> (&'a Chain, Option<Pin>) {
        let (Some(rollout), Some(room)) = (chains.rollout, room) else {
            return (chains.stable, None);
        };
        match self.hub.pin_of(room) {
            Some(pin) => (rollout.chain(pin), None),
            None => {
                let pin = rollout.assign(room);
                (rollout.chain(pin), Some(pin))
            }
        }
    }

    /// Cluster mode: where an event is handled. A client whose room
    /// another node owns sends everything there; a join of a room this
    /// node does not own needs a claim first.
    fn place(&self, id: ClientId, name: &str, data: &Normalized) -> Place {
        if let Some(owner) = self.hub.away(id) {
            return Place::At(owner);
        }
        match join_target(name, data) {
            Some(room) if !self.hub.owns(&room) && self.hub.room_of(id).is_none() => {
                Place::Claim(room)
            }
            _ => Place::Here,
        }
    }

    /// Steps 7 and 8 on this node: the chain under the room's lock, and
    /// what it decided. `plugins` are the event's on the chain `route`
    /// chose; with a canary active they are looked up again under the
    /// lock, where the room's pin cannot change.
    fn run_event(
        &self,
        chains: Chains<'_>,
        plugins: &[Arc<Plugin>],
        id: ClientId,
        cause: &Cause,
        name: &str,
        data: Normalized,
    ) {
        let Some(info) = self.hub.client_info(id) else {
            return;
        };
        let room = info.room.clone().or_else(|| join_target(name, &data));
        if let Some(room) = &room {
            tracing::Span::current().record("room", tracing::field::display(room));
        }
        // Held across the chain and the delivery of what it decided, so
        // one room's events reach plugins, and their effects reach members,
        // in one order.
        let _guard = room.as_ref().map(|room| self.hub.lock_room(room));
        let (plugins, opening) = match chains.rollout {
            None => (plugins, None),
            Some(_) => {
                let (chain, opening) = self.room_chain(chains, room.as_ref());
                (chain.route(name), opening)
            }
        };
        // The client a relay event's `to` names, if it is a client id.
        let target = match &data {
            Normalized::Relay(relay) => relay.target,
            Normalized::Object(_) => None,
        };
        let tap = self.tap(room.as_ref());
        let tap = tap.as_ref();
        let decided = match &data {
            Normalized::Relay(relay) => {
                // Read under the room's lock, where the room's joins and
                // leaves are wholly before or after it. Read before the lock
                // with the sender's record, it could miss a membership the
                // room's order put first: the cross-node soak lost relays.
                let target_room = target.and_then(|to| self.hub.room_of(to));
                let call = Relay {
                    event: relay.event,
                    sender: id,
                    target,
                    same_room: info.room.is_some() && target_room == info.room,
                };
                run_chain(plugins, |plugin| {
                    let input = || input::relay(&call, relay);
                    self.call(tap, plugin, input, || plugin.on_relay(&call, relay))
                })
            }
            Normalized::Object(object) => {
                let json = object.to_string();
                run_chain(plugins, |plugin| {
                    let input = || input::event(&info, name, &json);
                    self.call(tap, plugin, input, || plugin.on_event(&info, name, &json))
                })
            }
        };
        // The room this event opened keeps the versions that handled it.
        if let (Some(pin), Some(room)) = (opening, &room) {
            self.hub.pin(room, pin);
        }
        let decided = match decided {
            Ok(decided) => decided,
            Err(fault) => {
                // Whatever the failing call queued is dropped with it.
                self.plugin_error(id, cause, &fault);
                Decided {
                    outcome: Outcome::Handled,
                    effects: Vec::new(),
                }
            }
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
        if self.link.is_some() {
            // A claim for a join that did not open the room is given up,
            // and a proxy left in no room here goes home.
            if let Some(room) = &room {
                self.hub.settle(room);
            }
            self.hub.drop_proxy_if_roomless(id);
        }
    }
}

/// The room a `room:join` names.
fn join_target(name: &str, data: &Normalized) -> Option<RoomId> {
    match data {
        Normalized::Object(object) if name == event::ROOM_JOIN => schema::join_target(object),
        _ => None,
    }
}

/// Where an event is handled (cluster mode).
enum Place {
    Here,
    At(NodeId),
    Claim(RoomId),
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
