//! The authoritative table of connected clients and room membership, and
//! delivery to clients' outbound queues.
//!
//! Rooms change only through [`Hub::join`] and [`Hub::leave`] (plugins reach
//! them through the `join-room`/`leave-room` host calls) and when a client
//! is unregistered, so no plugin can leave a ghost member behind. Nothing
//! here blocks or awaits: a send only enqueues.
//!
//! In cluster mode the table also holds *proxies*: clients of other nodes
//! that are members of a room this node owns. A proxy's frames go to its
//! node through the [`Remote`] seam, which also mirrors owned rooms'
//! membership and storage to Redis for a takeover. A local client whose
//! room another node owns is *away*: its room is recorded here, its
//! membership lives with the owner.
//!
//! A proxy whose node died is an *orphan*: it stays a member, and frames
//! for it queue here, as a suspended session's do on its own node, until
//! its session is resumed on another node or its grace period ends.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::envelope::Frame;
use crate::ids::{ClientId, RoomId};
use crate::memory;
use crate::net::{Inbox, Outbound, Outbox, QueueLimits};

/// A cluster node's id: letters, digits, `-`, `_` and `.`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct NodeId(Arc<str>);

impl NodeId {
    pub(crate) fn parse(text: &str) -> Option<NodeId> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        valid.then(|| NodeId(text.into()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the table needs of the cluster: delivery to clients on other
/// nodes, and the Redis mirror of the rooms this node owns. Calls only
/// enqueue.
pub(crate) trait Remote: Send + Sync {
    fn deliver(&self, node: &NodeId, to: ClientId, message: Outbound);
    /// Tells a proxy's node which room of ours its client is in now.
    fn placed(&self, node: &NodeId, client: ClientId, room: Option<&RoomId>);
    /// A member's seat in the mirror (join order, node, who, metadata), or
    /// its removal.
    fn seat(&self, room: &RoomId, client: ClientId, seat: Option<Seat<'_>>);
    fn kv(&self, room: &RoomId, plugin: &str, key: &str, value: Option<&str>);
    /// The room has closed: it is no longer ours.
    fn closed(&self, room: &RoomId);
}

/// A member as the mirror keeps it.
pub(crate) struct Seat<'a> {
    pub(crate) seq: u64,
    pub(crate) node: Option<&'a NodeId>,
    pub(crate) identity: &'a Identity,
    pub(crate) metadata: &'a RawValue,
}

/// Where a client's frames go.
enum Sink {
    /// Its connection task on this node.
    Local(Outbox),
    /// A proxy: the client is connected to this node.
    Remote(NodeId),
    /// A proxy whose node died: its frames wait here.
    Orphan(Box<Orphan>),
}

/// The queue of a member whose node died, kept until its session is
/// resumed on another node or ends at `until`.
struct Orphan {
    outbox: Outbox,
    inbox: Inbox,
    /// The node it was connected to, which its seat in the mirror names.
    was: NodeId,
    until: Instant,
}

impl Sink {
    /// The node a proxy's client is (or was last) connected to; `None`
    /// for a local one.
    fn node(&self) -> Option<&NodeId> {
        match self {
            Sink::Remote(node) => Some(node),
            Sink::Orphan(orphan) => Some(&orphan.was),
            Sink::Local(_) => None,
        }
    }
}

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
    sink: Sink,
    identity: Option<Arc<Identity>>,
    room: Option<RoomId>,
    /// A local client whose room (or the room it is joining) the named
    /// node owns: its room events are handled there.
    away: Option<NodeId>,
}

/// Which chain entries run their canary version in a room, decided when
/// the room opened and kept for its lifetime (`plugins/rollout.rs` reads
/// it; the hub only keeps it): a bit per position in the chain, and how
/// many canaries had started by then, so that a bit never names a canary
/// started later at the same position. The default, every entry on its
/// stable version, is what a room opened with no canary active has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pin {
    pub(crate) canaries: u64,
    pub(crate) at: u64,
}

#[derive(Default)]
struct Room {
    /// Oldest first.
    members: Vec<Peer>,
    /// Each member's place in join order, for the mirror.
    seqs: Vec<u64>,
    /// Plugin storage, by (plugin, key).
    kv: HashMap<(Arc<str>, String), String>,
    pin: Pin,
}

#[derive(Default)]
struct State {
    clients: HashMap<ClientId, Client, BuildHasherDefault<IdHasher>>,
    rooms: HashMap<RoomId, Room>,
    /// Cluster mode: rooms this node has claimed and not opened yet.
    claimed: std::collections::HashSet<RoomId>,
}

/// The hasher of the clients table. Ids are a keyed bijection of a
/// counter, spread over all 64 bits, and clients never choose the ids that
/// go in (only ones to look up), so one folded multiply makes a hash:
/// SipHash cost more than the rest of each of a relay's three lookups.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, id: u64) {
        let product = u128::from(id ^ self.0) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (product as u64) ^ (product >> 64) as u64;
    }

    /// `ClientId` hashes as one `u64`; any other input goes through the
    /// same fold, eight bytes at a time.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
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
    remote: Option<Arc<dyn Remote>>,
    /// Join order across owners: starts at the node's start time in
    /// microseconds, so a room taken over keeps its members' order.
    seq: std::sync::atomic::AtomicU64,
    /// The most clients held since [`Hub::take_peak`] last looked: a crowd
    /// that comes and goes between two looks still counts.
    peak: AtomicUsize,
}

const ROOM_LOCK_STRIPES: usize = 1024;

impl Hub {
    pub(crate) fn new(max_rooms: usize) -> Hub {
        Hub::with_remote(max_rooms, None)
    }

    /// A table whose rooms may have members on other nodes.
    pub(crate) fn with_remote(max_rooms: usize, remote: Option<Arc<dyn Remote>>) -> Hub {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Hub {
            state: RwLock::default(),
            room_locks: (0..ROOM_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            stripe_hasher: RandomState::new(),
            max_rooms,
            remote,
            seq: (since_epoch.as_micros() as u64).into(),
            peak: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lock_room(&self, room: &RoomId) -> MutexGuard<'_, ()> {
        let stripe = self.stripe_hasher.hash_one(room) as usize % self.room_locks.len();
        self.room_locks[stripe].lock()
    }

    pub(crate) fn register(&self, id: ClientId, outbox: Outbox, identity: Option<Arc<Identity>>) {
        let client = Client {
            sink: Sink::Local(outbox),
            identity,
            room: None,
            away: None,
        };
        let mut state = self.state.write();
        state.clients.insert(id, client);
        self.peak.fetch_max(state.clients.len(), Relaxed);
    }

    /// Registers a client of `node` as a proxy, or brings a known proxy
    /// up to date: its identity, and its node (a resume may have moved
    /// it).
    pub(crate) fn register_proxy(&self, id: ClientId, node: &NodeId, identity: Arc<Identity>) {
        // Every message a proxy's client sends comes through here: a known
        // proxy takes only the read lock.
        if let Some(client) = self.state.read().clients.get(&id)
            && matches!(&client.sink, Sink::Remote(edge) if edge == node)
            && client.identity.as_deref() == Some(&*identity)
        {
            return;
        }
        let mut state = self.state.write();
        let client = state.clients.entry(id).or_insert_with(|| Client {
            sink: Sink::Remote(node.clone()),
            identity: None,
            room: None,
            away: None,
        });
        client.identity = Some(identity);
        self.redirect(client, id, node);
        self.peak.fetch_max(state.clients.len(), Relaxed);
    }

    /// A proxy's client is connected to `edge` now (resumed there). An
    /// orphan's queued frames go there first, in order. False when the
    /// client is an orphan whose queue overflowed: its session is lost.
    pub(crate) fn rehome(&self, id: ClientId, edge: &NodeId) -> bool {
        let mut state = self.state.write();
        let Some(client) = state.clients.get_mut(&id) else {
            return true;
        };
        if matches!(&client.sink, Sink::Orphan(orphan) if orphan.inbox.overflowed()) {
            return false;
        }
        if self.redirect(client, id, edge) {
            self.reseat(&state, id);
        }
        true
    }

    /// Points a proxy (or an orphan, whose queue is sent on) at `edge`;
    /// whether its node changed (never for a local client).
    fn redirect(&self, client: &mut Client, id: ClientId, edge: &NodeId) -> bool {
        let was = std::mem::replace(&mut client.sink, Sink::Remote(edge.clone()));
        match was {
            Sink::Remote(node) => node != *edge,
            Sink::Orphan(mut orphan) => {
                while let Some(message) = orphan.inbox.try_recv() {
                    if let Some(remote) = &self.remote {
                        remote.deliver(edge, id, message);
                    }
                }
                true
            }
            local @ Sink::Local(_) => {
                client.sink = local;
                false
            }
        }
    }

    /// Makes a proxy whose node died an orphan: frames for it queue here
    /// (up to `limits`) until its session is resumed on another node
    /// ([`Hub::rehome`]) or `until`. False if it is a proxy in no room,
    /// which has nothing to wait for.
    pub(crate) fn orphan(&self, id: ClientId, until: Instant, limits: QueueLimits) -> bool {
        let mut state = self.state.write();
        let Some(client) = state.clients.get_mut(&id) else {
            return false;
        };
        let (Sink::Remote(node), Some(_)) = (&client.sink, &client.room) else {
            return false;
        };
        let (outbox, inbox) = crate::net::queue(limits);
        let was = node.clone();
        client.sink = Sink::Orphan(Box::new(Orphan {
            outbox,
            inbox,
            was,
            until,
        }));
        true
    }

    /// Orphans whose session has ended: past their time, or their queue
    /// overflowed.
    pub(crate) fn orphans_due(&self, now: Instant) -> Vec<ClientId> {
        let state = self.state.read();
        let due = |sink: &Sink| match sink {
            Sink::Orphan(orphan) => orphan.until <= now || orphan.inbox.overflowed(),
            _ => false,
        };
        let ids = state.clients.iter().filter(|(_, c)| due(&c.sink));
        ids.map(|(id, _)| *id).collect()
    }

    /// A client whose session a connection of this node resumed from its
    /// record in Redis (its node died): a member of a room here (a proxy,
    /// or an orphan, whose queue the connection takes) stays in its room.
    /// Returns the connection's queue.
    pub(crate) fn resume_here(
        &self,
        id: ClientId,
        identity: Option<Arc<Identity>>,
        limits: QueueLimits,
    ) -> Inbox {
        let mut guard = self.state.write();
        let state = &mut *guard;
        let (queue, room) = match memory::remove(&mut state.clients, &id) {
            Some(Client {
                sink: Sink::Orphan(orphan),
                room,
                ..
            }) => ((orphan.outbox, orphan.inbox), room),
            Some(client) => (crate::net::queue(limits), client.room),
            None => (crate::net::queue(limits), None),
        };
        let (outbox, inbox) = queue;
        let client = Client {
            sink: Sink::Local(outbox),
            identity,
            room,
            away: None,
        };
        state.clients.insert(id, client);
        self.reseat(state, id);
        self.peak.fetch_max(state.clients.len(), Relaxed);
        inbox
    }

    /// Writes a local member's seat to the mirror again: a takeover read
    /// it naming the node the client's session was resumed from.
    pub(crate) fn reseat_local(&self, id: ClientId) {
        self.reseat(&self.state.read(), id);
    }

    /// Writes a member's seat to the mirror again (its node changed, or
    /// Redis lost it).
    fn reseat(&self, state: &State, id: ClientId) {
        let Some(remote) = &self.remote else {
            return;
        };
        let Some(client) = state.clients.get(&id) else {
            return;
        };
        let (Some(room), Some(identity)) = (&client.room, &client.identity) else {
            return;
        };
        let Some(entry) = state.rooms.get(room) else {
            return;
        };
        let Some(at) = entry.members.iter().position(|m| m.client_id == id) else {
            return;
        };
        let seat = Seat {
            seq: entry.seqs[at],
            node: client.sink.node(),
            identity,
            metadata: &entry.members[at].metadata,
        };
        remote.seat(room, id, Some(seat));
    }

    /// Gives a local client's session to the node `edge`, where it has been
    /// resumed: `send` gets what the session had (identity, room, the
    /// messages queued for it) under the table's write lock, so no message
    /// lands between the queue drained and the client moved. A member of a
    /// room this node owns stays as a proxy of `edge`; any other client is
    /// forgotten here.
    pub(crate) fn hand_over(
        &self,
        id: ClientId,
        mut queue: Inbox,
        edge: &NodeId,
        send: impl FnOnce(HandedOver),
    ) {
        let mut guard = self.state.write();
        let state = &mut *guard;
        let Some(client) = state.clients.get_mut(&id) else {
            return;
        };
        let mut frames = Vec::with_capacity(queue.depth());
        while let Some(message) = queue.try_recv() {
            if let Outbound::Frame(frame) = message {
                frames.push(frame);
            }
        }
        let owned_here = client
            .room
            .as_ref()
            .is_some_and(|r| state.rooms.contains_key(r));
        send(HandedOver {
            identity: client.identity.clone(),
            room: client.room.clone(),
            owner: if owned_here {
                None
            } else {
                client.away.clone()
            },
            frames,
        });
        if owned_here {
            client.sink = Sink::Remote(edge.clone());
            self.reseat(state, id);
        } else {
            memory::remove(&mut state.clients, &id);
        }
    }

    /// Forgets a client; returns the room it was in, which it has left.
    pub(crate) fn unregister(&self, id: ClientId) -> Option<RoomId> {
        let mut state = self.state.write();
        let room = memory::remove(&mut state.clients, &id)?.room?;
        self.remove_member(&mut state, &room, id);
        Some(room)
    }

    /// Forgets a proxy that is in no room here any more, and tells its
    /// node so; its client's next events are that node's own again.
    pub(crate) fn drop_proxy_if_roomless(&self, id: ClientId) {
        let mut state = self.state.write();
        let Some(client) = state.clients.get(&id) else {
            return;
        };
        if let (Sink::Remote(node), None) = (&client.sink, &client.room) {
            let node = node.clone();
            memory::remove(&mut state.clients, &id);
            if let Some(remote) = &self.remote {
                remote.placed(&node, id, None);
            }
        }
    }

    /// The node a local client's room events go to, if not this one.
    pub(crate) fn away(&self, id: ClientId) -> Option<NodeId> {
        self.state.read().clients.get(&id)?.away.clone()
    }

    /// Records where a local client's room lives: `node` owns `room` (or
    /// the room it is joining, when `room` is `None`); `node` `None`
    /// brings the client home, in no room.
    pub(crate) fn set_away(&self, id: ClientId, node: Option<NodeId>, room: Option<RoomId>) {
        if let Some(client) = self.state.write().clients.get_mut(&id)
            && matches!(client.sink, Sink::Local(_))
        {
            client.room = node.as_ref().and(room);
            client.away = node;
        }
    }

    /// Whether `id` is connected to this node (not a proxy).
    pub(crate) fn is_local(&self, id: ClientId) -> bool {
        let state = self.state.read();
        matches!(
            state.clients.get(&id).map(|c| &c.sink),
            Some(Sink::Local(_))
        )
    }

    /// The node a proxy's client is connected to.
    pub(crate) fn edge_of(&self, id: ClientId) -> Option<NodeId> {
        self.state.read().clients.get(&id)?.sink.node().cloned()
    }

    /// The clients connected to this node.
    pub(crate) fn local_clients(&self) -> Vec<ClientId> {
        let state = self.state.read();
        let local = state
            .clients
            .iter()
            .filter(|(_, c)| matches!(c.sink, Sink::Local(_)));
        local.map(|(id, _)| *id).collect()
    }

    /// The most clients (local ones and proxies) held at once since the
    /// last call, and how many are held now; the peak starts again from
    /// now.
    pub(crate) fn take_peak(&self) -> (usize, usize) {
        let now = self.state.read().clients.len();
        (self.peak.swap(now, Relaxed).max(now), now)
    }

    /// Local clients, proxies, and open rooms.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let state = self.state.read();
        let proxies = state
            .clients
            .values()
            .filter(|c| !matches!(c.sink, Sink::Local(_)))
            .count();
        (state.clients.len() - proxies, proxies, state.rooms.len())
    }

    /// Writes an open room's mirror again: every seat and stored value.
    pub(crate) fn remirror(&self, room: &RoomId) {
        let Some(remote) = &self.remote else {
            return;
        };
        let state = self.state.read();
        let Some(entry) = state.rooms.get(room) else {
            return;
        };
        for peer in &entry.members {
            self.reseat(&state, peer.client_id);
        }
        for ((plugin, key), value) in &entry.kv {
            remote.kv(room, plugin, key, Some(value));
        }
    }

    /// Proxies of clients connected to `node`.
    pub(crate) fn proxies_of(&self, node: &NodeId) -> Vec<ClientId> {
        let state = self.state.read();
        let on = |c: &Client| matches!(&c.sink, Sink::Remote(n) if n == node);
        state
            .clients
            .iter()
            .filter(|(_, c)| on(c))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Local clients whose room `node` owned, with that room.
    pub(crate) fn away_at(&self, node: &NodeId) -> Vec<(ClientId, Option<RoomId>)> {
        let state = self.state.read();
        state
            .clients
            .iter()
            .filter(|(_, c)| c.away.as_ref() == Some(node))
            .map(|(id, c)| (*id, c.room.clone()))
            .collect()
    }

    /// Whether this node owns `room`: it is open here, or claimed.
    pub(crate) fn owns(&self, room: &RoomId) -> bool {
        let state = self.state.read();
        state.rooms.contains_key(room) || state.claimed.contains(room)
    }

    /// Notes a claim won for `room`; it lasts until the room has opened
    /// and closed, or [`Hub::settle`] finds it never opened.
    pub(crate) fn claimed(&self, room: RoomId) {
        self.state.write().claimed.insert(room);
    }

    /// Gives up a claim on `room` if the room did not open.
    pub(crate) fn settle(&self, room: &RoomId) {
        let mut state = self.state.write();
        if !state.rooms.contains_key(room)
            && state.claimed.remove(room)
            && let Some(remote) = &self.remote
        {
            remote.closed(room);
        }
    }

    /// Rebuilds a room taken over from a dead node: `members` in join
    /// order (proxies, or local clients coming home) and its storage.
    pub(crate) fn adopt_room(
        &self,
        room: &RoomId,
        members: Vec<Adopted>,
        kv: Vec<(String, String, String)>,
    ) {
        let mut guard = self.state.write();
        let state = &mut *guard;
        state.claimed.remove(room);
        let entry = state.rooms.entry(room.clone()).or_default();
        for member in members {
            let client = state
                .clients
                .entry(member.peer.client_id)
                .or_insert_with(|| Client {
                    sink: Sink::Remote(member.node.clone()),
                    identity: Some(Arc::clone(&member.identity)),
                    room: None,
                    away: None,
                });
            client.room = Some(room.clone());
            client.away = None;
            if !entry
                .members
                .iter()
                .any(|p| p.client_id == member.peer.client_id)
            {
                entry.members.push(member.peer);
                entry.seqs.push(member.seq);
            }
        }
        for (plugin, key, value) in kv {
            entry.kv.insert((plugin.into(), key), value);
        }
        if entry.members.is_empty() {
            memory::remove(&mut state.rooms, room);
            if let Some(remote) = &self.remote {
                remote.closed(room);
            }
        }
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
        let identity = client.identity.as_ref().ok_or(JoinError::UnknownClient)?;
        let peer = Peer {
            client_id: id,
            user_id: identity.user_id.as_str().into(),
            metadata,
        };
        client.room = Some(room.clone());
        let seq = self.seq.fetch_add(1, Relaxed);
        state.claimed.remove(room);
        let entry = state.rooms.entry(room.clone()).or_default();
        let others = entry.members.clone();
        entry.members.push(peer.clone());
        entry.seqs.push(seq);
        if let Some(remote) = &self.remote {
            self.reseat(state, id);
            if let Some(node) = state.clients.get(&id).and_then(|c| c.sink.node()) {
                remote.placed(node, id, Some(room));
            }
        }
        Ok((others, peer))
    }

    /// Takes a client out of its room; returns the room.
    pub(crate) fn leave(&self, id: ClientId) -> Option<RoomId> {
        let mut state = self.state.write();
        let room = state.clients.get_mut(&id)?.room.take()?;
        self.remove_member(&mut state, &room, id);
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

    /// How many rooms are open, and how many may be (`limits.max_rooms`).
    pub(crate) fn room_count(&self) -> (usize, usize) {
        (self.state.read().rooms.len(), self.max_rooms)
    }

    /// Everything `plugin` stores in `room`.
    pub(crate) fn kv_of(&self, room: &RoomId, plugin: &str) -> Vec<(String, String)> {
        let state = self.state.read();
        let Some(room) = state.rooms.get(room) else {
            return Vec::new();
        };
        let entries = room.kv.iter().filter(|((owner, _), _)| **owner == *plugin);
        entries
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Messages queued for all clients and not yet written.
    pub(crate) fn queued(&self) -> usize {
        let state = self.state.read();
        let depth = |c: &Client| match &c.sink {
            Sink::Local(outbox) => outbox.depth(),
            Sink::Orphan(orphan) => orphan.outbox.depth(),
            Sink::Remote(_) => 0,
        };
        state.clients.values().map(depth).sum()
    }

    /// Queues a message for a client, here or on its node.
    fn push(&self, id: ClientId, client: &Client, message: Outbound) {
        match &client.sink {
            Sink::Local(outbox) => outbox.push(message),
            Sink::Orphan(orphan) => orphan.outbox.push(message),
            Sink::Remote(node) => {
                if let Some(remote) = &self.remote {
                    remote.deliver(node, id, message);
                }
            }
        }
    }

    pub(crate) fn room_exists(&self, room: &RoomId) -> bool {
        self.state.read().rooms.contains_key(room)
    }

    /// An open room's pin; `None` when the room is not open.
    pub(crate) fn pin_of(&self, room: &RoomId) -> Option<Pin> {
        Some(self.state.read().rooms.get(room)?.pin)
    }

    /// Pins a room that has just opened; a room that is not open keeps
    /// nothing.
    pub(crate) fn pin(&self, room: &RoomId, pin: Pin) {
        if let Some(entry) = self.state.write().rooms.get_mut(room) {
            entry.pin = pin;
        }
    }

    /// Queues a message for a client; false when no such client is
    /// connected.
    pub(crate) fn send(&self, to: ClientId, message: Outbound) -> bool {
        let state = self.state.read();
        let Some(client) = state.clients.get(&to) else {
            return false;
        };
        self.push(to, client, message);
        true
    }

    /// Queues one frame for each of `to` that is connected, under one read
    /// of the table.
    pub(crate) fn deliver(&self, to: &[ClientId], frame: &Frame) {
        let state = self.state.read();
        for id in to {
            if let Some(client) = state.clients.get(id) {
                self.push(*id, client, Outbound::Frame(frame.clone()));
            }
        }
    }

    pub(crate) fn broadcast(&self, room: &RoomId, frame: &Frame, except: Option<ClientId>) {
        let state = self.state.read();
        let Some(members) = state.rooms.get(room).map(|r| &r.members) else {
            return;
        };
        for member in members.iter().filter(|m| Some(m.client_id) != except) {
            if let Some(client) = state.clients.get(&member.client_id) {
                self.push(member.client_id, client, Outbound::Frame(frame.clone()));
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
        if let Some(entry) = self.state.write().rooms.get_mut(room) {
            if let Some(remote) = &self.remote {
                remote.kv(room, plugin, &key, Some(&value));
            }
            entry.kv.insert((plugin.clone(), key), value);
        }
    }

    pub(crate) fn kv_delete(&self, room: &RoomId, plugin: &Arc<str>, key: &str) {
        if let Some(entry) = self.state.write().rooms.get_mut(room) {
            if let Some(remote) = &self.remote {
                remote.kv(room, plugin, key, None);
            }
            entry.kv.remove(&(plugin.clone(), key.to_owned()));
        }
    }

    fn remove_member(&self, state: &mut State, room: &RoomId, id: ClientId) {
        let Some(entry) = state.rooms.get_mut(room) else {
            return;
        };
        let Some(at) = entry.members.iter().position(|m| m.client_id == id) else {
            return;
        };
        entry.members.remove(at);
        entry.seqs.remove(at);
        if let Some(remote) = &self.remote {
            remote.seat(room, id, None);
        }
        if entry.members.is_empty() {
            memory::remove(&mut state.rooms, room);
            if let Some(remote) = &self.remote {
                remote.closed(room);
            }
        }
    }
}

/// A session as [`Hub::hand_over`] gives it away. `owner` is the node that
/// owns its room when that is not this one (`None` with a room: this
/// node owns it).
pub(crate) struct HandedOver {
    pub(crate) identity: Option<Arc<Identity>>,
    pub(crate) room: Option<RoomId>,
    pub(crate) owner: Option<NodeId>,
    pub(crate) frames: Vec<Frame>,
}

/// A member of a room being taken over.
pub(crate) struct Adopted {
    pub(crate) peer: Peer,
    pub(crate) seq: u64,
    pub(crate) node: NodeId,
    pub(crate) identity: Arc<Identity>,
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
