//! The cluster as the membership table and the router see it: frames for
//! clients on other nodes, the Redis mirror of the rooms this node owns,
//! and events forwarded to the node that owns their room. Everything here
//! only enqueues on the [`Bus`].

use super::bus::{Bus, Op, Session};
use super::wire::{Member, Message, Seat as WireSeat, TimerRecord};
use crate::ids::{ClientId, RoomId};
use crate::net::Outbound;
use crate::session::ResumeToken;
use crate::state::{Identity, NodeId, Remote, Seat};

pub(crate) struct Link {
    pub(crate) me: NodeId,
    pub(crate) bus: Bus,
}

impl Link {
    /// Hands a client's message to the owner of its room.
    pub(crate) fn forward(
        &self,
        owner: &NodeId,
        client: ClientId,
        identity: &Identity,
        text: &str,
    ) {
        self.forward_for(owner, client, &self.me, identity, text);
    }

    /// Hands on a message of a client connected to `edge`.
    pub(crate) fn forward_for(
        &self,
        owner: &NodeId,
        client: ClientId,
        edge: &NodeId,
        identity: &Identity,
        text: &str,
    ) {
        let message = Message::Event {
            client,
            edge: edge.clone(),
            identity: Member::from(identity),
            text: text.to_owned(),
        };
        self.bus.publish(owner, message);
    }

    /// Enters a client of this node in the client directory with its
    /// session's record (what a resume on another node needs if this node
    /// dies), or takes it out (`None`: its session has ended).
    pub(crate) fn directory(
        &self,
        client: ClientId,
        session: Option<(&ResumeToken, Option<&Identity>)>,
    ) {
        let session = session.map(|(token, identity)| Session {
            token: token.as_str().to_owned(),
            identity: identity.map(member_json),
        });
        self.bus.send(Op::Client(client, session));
    }

    /// A plugin timer of a room this node owns, set (plugin, tag, when it
    /// is due in Unix ms) or gone (fired).
    pub(crate) fn timer(&self, room: &RoomId, id: u64, timer: Option<(&str, &str, u64)>) {
        let record = timer.map(|(plugin, tag, due)| {
            let record = TimerRecord {
                plugin: plugin.to_owned(),
                tag: tag.to_owned(),
                due,
            };
            serde_json::to_string(&record).unwrap_or_default()
        });
        self.bus.send(Op::Timer(room.clone(), id, record));
    }

    /// A client of this node has authenticated as `identity`.
    pub(crate) fn authenticated(&self, client: ClientId, identity: &Identity) {
        self.bus.send(Op::Identity(client, member_json(identity)));
    }

    /// Tells the owner of a client's room that the client's session ended.
    pub(crate) fn gone(&self, owner: &NodeId, client: ClientId) {
        self.bus.publish(owner, Message::Gone { client });
    }

    /// Tells a client's edge that its room (`room`, if it is a member
    /// already) lives on `owner` now.
    pub(crate) fn moved_to(
        &self,
        edge: &NodeId,
        client: ClientId,
        owner: &NodeId,
        room: Option<&RoomId>,
    ) {
        let message = Message::Moved {
            client,
            owner: owner.clone(),
            room: room.cloned(),
        };
        self.bus.publish(edge, message);
    }
}

impl Remote for Link {
    fn deliver(&self, node: &NodeId, to: ClientId, message: Outbound) {
        let message = match message {
            Outbound::Frame(frame) => match Message::frame(to, &frame) {
                Some(message) => message,
                None => return tracing::error!(client = %to, "cluster: a frame that is not JSON"),
            },
            Outbound::Close(code, reason) => Message::close(to, code, reason),
        };
        self.bus.publish(node, message);
    }

    fn placed(&self, node: &NodeId, client: ClientId, room: Option<&RoomId>) {
        let message = Message::Placed {
            client,
            room: room.cloned(),
            owner: self.me.clone(),
        };
        self.bus.publish(node, message);
    }

    fn seat(&self, room: &RoomId, client: ClientId, seat: Option<Seat<'_>>) {
        let seat = seat.map(|seat| {
            let seat = WireSeat {
                seq: seat.seq,
                node: seat.node.unwrap_or(&self.me).clone(),
                member: Member::from(seat.identity),
                metadata: seat.metadata.to_owned(),
            };
            serde_json::to_string(&seat).unwrap_or_default()
        });
        self.bus.send(Op::Seat(room.clone(), client, seat));
    }

    fn kv(&self, room: &RoomId, plugin: &str, key: &str, value: Option<&str>) {
        let field = format!("{plugin}\0{key}");
        self.bus
            .send(Op::Kv(room.clone(), field, value.map(str::to_owned)));
    }

    fn closed(&self, room: &RoomId) {
        self.bus.send(Op::Close(room.clone()));
    }
}

fn member_json(identity: &Identity) -> String {
    serde_json::to_string(&Member::from(identity)).unwrap_or_default()
}

/// Splits a mirrored storage field into plugin and key.
pub(crate) fn kv_field(field: &str) -> Option<(&str, &str)> {
    field.split_once('\0')
}
