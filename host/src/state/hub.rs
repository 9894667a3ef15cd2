//! The authoritative table of connected clients and room membership, and
//! delivery to clients' outbound queues.
//!
//! Rooms change only through [`Hub::join`] and [`Hub::leave`] (plugins reach
//! them through the `join-room`/`leave-room` host calls) and when a client
//! is unregistered, so no plugin can leave a ghost member behind. Nothing
//! here blocks or awaits: a send only enqueues.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::envelope::Frame;
use crate::ids::{ClientId, RoomId};
use crate::net::{Outbound, Outbox};

/// A verified identity (from an auth plugin) or, with auth disabled, the
/// client id standing in for a user id.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub user_id: String,
    pub role: Option<String>,
    pub room_claim: Option<String>,
}

/// A snapshot of one client, for plugins.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub id: ClientId,
    pub identity: Option<Arc<Identity>>,
    pub room: Option<RoomId>,
}

/// A room member as PROTOCOL.md's `Peer`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Peer {
    #[serde(rename = "clientId", serialize_with = "display")]
    pub(crate) client_id: ClientId,
    #[serde(rename = "userId")]
    pub(crate) user_id: Arc<str>,
    pub(crate) metadata: Arc<RawValue>,
}

fn display<S: serde::Serializer>(id: &ClientId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// Why [`Hub::join`] refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JoinError {
    #[error("the client is already in a room")]
    AlreadyInRoom,
    #[error("the client is not connected or not authenticated")]
    UnknownClient,
    #[error("the server holds as many rooms as it may")]
    TooManyRooms,
}

struct Client {
    outbox: Outbox,
    identity: Option<Arc<Identity>>,
    room: Option<RoomId>,
}

#[derive(Default)]
struct Room {
    /// Oldest first.
    members: Vec<Peer>,
    /// Plugin storage, by (plugin, key).
    kv: HashMap<(Arc<str>, String), String>,
}

#[derive(Default)]
struct State {
    clients: HashMap<ClientId, Client>,
    rooms: HashMap<RoomId, Room>,
}

pub struct Hub {
    /// Read-locked on the hot path (looking a client up, delivering to it:
    /// an [`Outbox`] has its own lock), so connections on different
    /// workers do not wait on each other; written only when membership
    /// changes.
    state: RwLock<State>,
    /// Plugin calls about a room hold its stripe, so one room's events reach
    /// plugins in one total order while other rooms run in parallel.
    room_locks: Box<[Mutex<()>]>,
    stripe_hasher: RandomState,
    /// `limits.max_rooms`: a join that would open one more room fails.
    max_rooms: usize,
}

const ROOM_LOCK_STRIPES: usize = 1024;

impl Hub {
    pub(crate) fn new(max_rooms: usize) -> Hub {
        Hub {
            state: RwLock::default(),
            room_locks: (0..ROOM_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            stripe_hasher: RandomState::new(),
            max_rooms,
        }
    }

    pub(crate) fn lock_room(&self, room: &RoomId) -> MutexGuard<'_, ()> {
        let stripe = self.stripe_hasher.hash_one(room) as usize % self.room_locks.len();
        self.room_locks[stripe].lock()
    }

    pub(crate) fn register(&self, id: ClientId, outbox: Outbox, identity: Option<Arc<Identity>>) {
        let client = Client {
            outbox,
            identity,
            room: None,
        };
        self.state.write().clients.insert(id, client);
    }

    /// Forgets a client; returns the room it was in, which it has left.
    pub(crate) fn unregister(&self, id: ClientId) -> Option<RoomId> {
        let mut state = self.state.write();
        let room = state.clients.remove(&id)?.room?;
        state.remove_member(&room, id);
        Some(room)
    }

    pub(crate) fn set_identity(&self, id: ClientId, identity: Arc<Identity>) {
        if let Some(client) = self.state.write().clients.get_mut(&id) {
            client.identity = Some(identity);
        }
    }

    pub fn client_info(&self, id: ClientId) -> Option<ClientInfo> {
        let state = self.state.read();
        let client = state.clients.get(&id)?;
        Some(ClientInfo {
            id,
            identity: client.identity.clone(),
            room: client.room.clone(),
        })
    }

    /// The room a client is in; `None` when it is in none or not connected.
    pub(crate) fn room_of(&self, id: ClientId) -> Option<RoomId> {
        self.state.read().clients.get(&id)?.room.clone()
    }

    /// Adds an authenticated client to a room; returns the other members,
    /// oldest first, and the new member.
    pub(crate) fn join(
        &self,
        id: ClientId,
        room: &RoomId,
        metadata: Arc<RawValue>,
    ) -> Result<(Vec<Peer>, Peer), JoinError> {
        let mut guard = self.state.write();
        let state = &mut *guard;
        let client = state.clients.get_mut(&id).ok_or(JoinError::UnknownClient)?;
        if client.room.is_some() {
            return Err(JoinError::AlreadyInRoom);
        }
        if state.rooms.len() >= self.max_rooms && !state.rooms.contains_key(room) {
            return Err(JoinError::TooManyRooms);
        }
        let user_id = client
            .identity
            .as_ref()
            .ok_or(JoinError::UnknownClient)?
            .user_id
            .as_str();
        let peer = Peer {
            client_id: id,
            user_id: user_id.into(),
            metadata,
        };
        client.room = Some(room.clone());
        let members = &mut state.rooms.entry(room.clone()).or_default().members;
        let others = members.clone();
        members.push(peer.clone());
        Ok((others, peer))
    }

    /// Takes a client out of its room; returns the room.
    pub(crate) fn leave(&self, id: ClientId) -> Option<RoomId> {
        let mut state = self.state.write();
        let room = state.clients.get_mut(&id)?.room.take()?;
        state.remove_member(&room, id);
        Some(room)
    }

    pub(crate) fn members(&self, room: &RoomId) -> Vec<Peer> {
        let state = self.state.read();
        state
            .rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }

    /// The ids of a room's members, oldest first, but `except`.
    pub(crate) fn member_ids(&self, room: &RoomId, except: Option<ClientId>) -> Vec<ClientId> {
        let state = self.state.read();
        let Some(room) = state.rooms.get(room) else {
            return Vec::new();
        };
        let ids = room.members.iter().map(|member| member.client_id);
        ids.filter(|id| Some(*id) != except).collect()
    }

    /// Rooms, with their member counts, in no particular order.
    pub(crate) fn rooms(&self) -> Vec<(RoomId, usize)> {
        let state = self.state.read();
        state
            .rooms
            .iter()
            .map(|(id, room)| (id.clone(), room.members.len()))
            .collect()
    }

    /// Messages queued for all clients and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.state
            .read()
            .clients
            .values()
            .map(|c| c.outbox.depth())
            .sum()
    }

    pub(crate) fn is_connected(&self, id: ClientId) -> bool {
        self.state.read().clients.contains_key(&id)
    }

    pub(crate) fn room_exists(&self, room: &RoomId) -> bool {
        self.state.read().rooms.contains_key(room)
    }

    /// Queues a message for a client; false when no such client is
    /// connected.
    pub(crate) fn send(&self, to: ClientId, message: Outbound) -> bool {
        let state = self.state.read();
        let Some(client) = state.clients.get(&to) else {
            return false;
        };
        client.outbox.push(message);
        true
    }

    /// Queues one frame for each of `to` that is connected, under one read
    /// of the table.
    pub(crate) fn deliver(&self, to: &[ClientId], frame: &Frame) {
        let state = self.state.read();
        for client in to.iter().filter_map(|id| state.clients.get(id)) {
            client.outbox.push(Outbound::Frame(frame.clone()));
        }
    }

    pub(crate) fn broadcast(&self, room: &RoomId, frame: &Frame, except: Option<ClientId>) {
        let state = self.state.read();
        let Some(members) = state.rooms.get(room).map(|r| &r.members) else {
            return;
        };
        for member in members.iter().filter(|m| Some(m.client_id) != except) {
            if let Some(client) = state.clients.get(&member.client_id) {
                client.outbox.push(Outbound::Frame(frame.clone()));
            }
        }
    }

    pub(crate) fn kv_get(&self, room: &RoomId, plugin: &Arc<str>, key: &str) -> Option<String> {
        let state = self.state.read();
        state
            .rooms
            .get(room)?
            .kv
            .get(&(plugin.clone(), key.to_owned()))
            .cloned()
    }

    /// Stores a value; a room that does not exist keeps nothing.
    pub(crate) fn kv_set(&self, room: &RoomId, plugin: &Arc<str>, key: String, value: String) {
        if let Some(room) = self.state.write().rooms.get_mut(room) {
            room.kv.insert((plugin.clone(), key), value);
        }
    }

    pub(crate) fn kv_delete(&self, room: &RoomId, plugin: &Arc<str>, key: &str) {
        if let Some(room) = self.state.write().rooms.get_mut(room) {
            room.kv.remove(&(plugin.clone(), key.to_owned()));
        }
    }
}

impl State {
    fn remove_member(&mut self, room: &RoomId, id: ClientId) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        entry.members.retain(|m| m.client_id != id);
        if entry.members.is_empty() {
            self.rooms.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Inbox, QueueLimits, queue};
    use crate::session::ClientIds;

    fn client(hub: &Hub, ids: &ClientIds) -> (ClientId, Inbox) {
        let (tx, rx) = queue(QueueLimits {
            messages: 16,
            bytes: 1 << 20,
        });
        let id = ids.next();
        let identity = Identity {
            user_id: format!("u{id}"),
            role: None,
            room_claim: None,
        };
        hub.register(id, tx, Some(Arc::new(identity)));
        (id, rx)
    }

    fn empty() -> Arc<RawValue> {
        RawValue::from_string("{}".into()).unwrap().into()
    }

    #[test]
    fn membership_is_ordered_and_rooms_end_when_empty() {
        let (hub, ids) = (Hub::new(usize::MAX), ClientIds::new());
        let room = RoomId::parse("r").unwrap();
        let (a, _ra) = client(&hub, &ids);
        let (b, _rb) = client(&hub, &ids);
        assert!(hub.join(a, &room, empty()).unwrap().0.is_empty());
        let (others, _) = hub.join(b, &room, empty()).unwrap();
        assert_eq!(
            others.iter().map(|p| p.client_id).collect::<Vec<_>>(),
            vec![a]
        );
        assert_eq!(
            hub.join(a, &room, empty()).unwrap_err(),
            JoinError::AlreadyInRoom
        );
        hub.kv_set(&room, &"p".into(), "k".into(), "v".into());
        assert_eq!(hub.leave(a), Some(room.clone()));
        assert_eq!(hub.unregister(b), Some(room.clone()));
        assert!(!hub.room_exists(&room));
        assert_eq!(hub.kv_get(&room, &"p".into(), "k"), None);
    }

    #[test]
    fn broadcast_skips_the_excepted_member() {
        let (hub, ids) = (Hub::new(usize::MAX), ClientIds::new());
        let room = RoomId::parse("r").unwrap();
        let (a, mut ra) = client(&hub, &ids);
        let (b, mut rb) = client(&hub, &ids);
        hub.join(a, &room, empty()).unwrap();
        hub.join(b, &room, empty()).unwrap();
        hub.broadcast(&room, &Frame::from("x"), Some(a));
        assert_eq!(hub.queued(), 1);
        assert!(ra.try_recv().is_none());
        assert!(matches!(rb.try_recv(), Some(Outbound::Frame(f)) if f.as_str() == "x"));
        assert_eq!(hub.queued(), 0);
    }

    #[test]
    fn deliver_reaches_the_named_clients_that_are_connected() {
        let (hub, ids) = (Hub::new(usize::MAX), ClientIds::new());
        let room = RoomId::parse("r").unwrap();
        let (a, mut ra) = client(&hub, &ids);
        let (b, mut rb) = client(&hub, &ids);
        hub.join(a, &room, empty()).unwrap();
        hub.join(b, &room, empty()).unwrap();
        assert_eq!(hub.member_ids(&room, Some(a)), [b]);
        hub.deliver(&[b, ids.next()], &Frame::from("x"));
        assert!(ra.try_recv().is_none());
        assert!(matches!(rb.try_recv(), Some(Outbound::Frame(f)) if f.as_str() == "x"));
        assert_eq!(hub.queued(), 0);
    }
}
