//! The world a plugin call reads and writes through its imports: the hub,
//! or a [`Scratch`] world, a copy of what one call could see in which every
//! write stays. `switchboard replay` runs each recorded call against a
//! scratch world built from the [`View`] recorded with it; a shadow run can
//! run a candidate against one built from the hub ([`view`]) and nothing it
//! does reaches the hub or a client.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_recording::{self as recording, Member, RoomView, View};

use crate::ids::{ClientId, RoomId};
use crate::state::{ClientInfo, Hub, Identity, JoinError, Peer};

/// What a call's imports reach.
pub(crate) enum World<'a> {
    Hub(&'a Hub),
    Scratch(&'a mut Scratch),
}

/// A world of its own: clients, rooms with ordered members, one chain
/// entry's storage, the room limit and a clock, answering and refusing as
/// the hub does. Rooms that were open but not in the view count toward the
/// limit and are otherwise empty.
#[derive(Debug, Default)]
pub struct Scratch {
    clients: HashMap<ClientId, ClientInfo>,
    /// Members, oldest first; a room exists while it has any.
    rooms: HashMap<RoomId, Vec<Peer>>,
    /// The calling entry's storage, by room and key.
    kv: HashMap<(RoomId, String), String>,
    /// Rooms open beyond those in `rooms`.
    elsewhere: usize,
    max_rooms: usize,
    now: u64,
}

impl Scratch {
    /// The world `view` describes. Ids that are not ids (a hand-edited
    /// file) name no one.
    pub fn from_view(view: &View) -> Scratch {
        let mut scratch = Scratch {
            max_rooms: view.max_rooms,
            now: view.now,
            ..Scratch::default()
        };
        for client in &view.clients {
            if let Some(id) = ClientId::parse(&client.id) {
                scratch.clients.insert(id, client_info(id, client));
            }
        }
        if let Some(room) = &view.room
            && let Some(id) = RoomId::parse(&room.id)
        {
            let members = room.members.iter().filter_map(peer).collect();
            scratch.rooms.insert(id.clone(), members);
            for (key, value) in &room.kv {
                scratch.kv.insert((id.clone(), key.clone()), value.clone());
            }
        }
        scratch.elsewhere = view.open_rooms.saturating_sub(scratch.rooms.len());
        scratch
    }

    /// What `now` returns in this world.
    pub fn now(&self) -> u64 {
        self.now
    }

    fn join(
        &mut self,
        id: ClientId,
        room: &RoomId,
        metadata: Arc<RawValue>,
    ) -> Result<(Vec<Peer>, Peer), JoinError> {
        let full = self.rooms.len() + self.elsewhere >= self.max_rooms;
        let opens = !self.rooms.contains_key(room);
        let client = self.clients.get_mut(&id).ok_or(JoinError::UnknownClient)?;
        if client.room.is_some() {
            return Err(JoinError::AlreadyInRoom);
        }
        if full && opens {
            return Err(JoinError::TooManyRooms);
        }
        let identity = client.identity.as_ref().ok_or(JoinError::UnknownClient)?;
        let peer = Peer {
            client_id: id,
            user_id: identity.user_id.as_str().into(),
            metadata,
        };
        client.room = Some(room.clone());
        let members = self.rooms.entry(room.clone()).or_default();
        let others = members.clone();
        members.push(peer.clone());
        Ok((others, peer))
    }

    fn leave(&mut self, id: ClientId) -> Option<RoomId> {
        let room = self.clients.get_mut(&id)?.room.take()?;
        if let Some(members) = self.rooms.get_mut(&room) {
            members.retain(|peer| peer.client_id != id);
            if members.is_empty() {
                self.rooms.remove(&room);
                self.kv.retain(|(kv_room, _), _| *kv_room != room);
            }
        }
        Some(room)
    }
}

impl World<'_> {
    pub(crate) fn join(
        &mut self,
        id: ClientId,
        room: &RoomId,
        metadata: Arc<RawValue>,
    ) -> Result<(Vec<Peer>, Peer), JoinError> {
        match self {
            World::Hub(hub) => hub.join(id, room, metadata),
            World::Scratch(scratch) => scratch.join(id, room, metadata),
        }
    }

    pub(crate) fn leave(&mut self, id: ClientId) -> Option<RoomId> {
        match self {
            World::Hub(hub) => hub.leave(id),
            World::Scratch(scratch) => scratch.leave(id),
        }
    }

    pub(crate) fn members(&self, room: &RoomId) -> Vec<Peer> {
        match self {
            World::Hub(hub) => hub.members(room),
            World::Scratch(scratch) => scratch.rooms.get(room).cloned().unwrap_or_default(),
        }
    }

    /// A room's members, oldest first, but `except`.
    pub(crate) fn member_ids(&self, room: &RoomId, except: Option<ClientId>) -> Vec<ClientId> {
        match self {
            World::Hub(hub) => hub.member_ids(room, except),
            World::Scratch(scratch) => {
                let members = scratch.rooms.get(room).into_iter().flatten();
                let ids = members.map(|peer| peer.client_id);
                ids.filter(|id| Some(*id) != except).collect()
            }
        }
    }

    pub(crate) fn client_info(&self, id: ClientId) -> Option<ClientInfo> {
        match self {
            World::Hub(hub) => hub.client_info(id),
            World::Scratch(scratch) => scratch.clients.get(&id).cloned(),
        }
    }

    pub(crate) fn kv_get(&self, room: &RoomId, plugin: &Arc<str>, key: &str) -> Option<String> {
        match self {
            World::Hub(hub) => hub.kv_get(room, plugin, key),
            World::Scratch(scratch) => scratch.kv.get(&(room.clone(), key.to_owned())).cloned(),
        }
    }

    /// Stores a value; a room that does not exist keeps nothing.
    pub(crate) fn kv_set(&mut self, room: &RoomId, plugin: &Arc<str>, key: String, value: String) {
        match self {
            World::Hub(hub) => hub.kv_set(room, plugin, key, value),
            World::Scratch(scratch) => {
                if scratch.rooms.contains_key(room) {
                    scratch.kv.insert((room.clone(), key), value);
                }
            }
        }
    }

    pub(crate) fn kv_delete(&mut self, room: &RoomId, plugin: &Arc<str>, key: &str) {
        match self {
            World::Hub(hub) => hub.kv_delete(room, plugin, key),
            World::Scratch(scratch) => {
                scratch.kv.remove(&(room.clone(), key.to_owned()));
            }
        }
    }
}

/// What a call of `entry` about `room` (if it is about one) can see of
/// the hub now: `room` with its members and the entry's storage, the
/// members' and `callers'` client records, the room count and limit, and
/// `now`.
pub(crate) fn view(
    hub: &Hub,
    room: Option<&RoomId>,
    entry: &str,
    callers: &[ClientId],
    now: u64,
) -> View {
    let members = room.map(|room| hub.members(room)).unwrap_or_default();
    let mut ids: Vec<ClientId> = callers.to_vec();
    for member in &members {
        if !ids.contains(&member.client_id) {
            ids.push(member.client_id);
        }
    }
    let clients = ids
        .into_iter()
        .filter_map(|id| hub.client_info(id))
        .map(|info| recorded_client(&info))
        .collect();
    let (open_rooms, max_rooms) = hub.room_count();
    let room = room.filter(|_| !members.is_empty()).map(|room| RoomView {
        id: room.to_string(),
        members: members.iter().map(member).collect(),
        kv: hub.kv_of(room, entry).into_iter().collect(),
    });
    View {
        now,
        max_rooms,
        open_rooms,
        clients,
        room,
    }
}

/// A client record as a recording holds it.
pub(crate) fn recorded_client(info: &ClientInfo) -> recording::Client {
    let identity = info.identity.as_deref();
    recording::Client {
        id: info.id.to_string(),
        user_id: identity.map(|i| i.user_id.clone()),
        role: identity.and_then(|i| i.role.clone()),
        room_claim: identity.and_then(|i| i.room_claim.clone()),
        room: info.room.as_ref().map(|room| room.to_string()),
    }
}

fn client_info(id: ClientId, client: &recording::Client) -> ClientInfo {
    ClientInfo {
        id,
        identity: client.user_id.as_ref().map(|user_id| {
            Arc::new(Identity {
                user_id: user_id.clone(),
                role: client.role.clone(),
                room_claim: client.room_claim.clone(),
            })
        }),
        room: client.room.as_deref().and_then(RoomId::parse),
    }
}

fn member(peer: &Peer) -> Member {
    Member {
        client_id: peer.client_id.to_string(),
        user_id: peer.user_id.to_string(),
        metadata: serde_json::from_str(peer.metadata.get()).unwrap_or(Value::Null),
    }
}

/// A recorded member as a peer; metadata that is not an object (only a
/// hand-edited file has such) is `{}`.
fn peer(member: &Member) -> Option<Peer> {
    let metadata = match &member.metadata {
        Value::Object(_) => serde_json::value::to_raw_value(&member.metadata).ok()?,
        _ => RawValue::from_string("{}".to_owned()).ok()?,
    };
    Some(Peer {
        client_id: ClientId::parse(&member.client_id)?,
        user_id: member.user_id.as_str().into(),
        metadata: Arc::from(metadata),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata() -> Arc<RawValue> {
        Arc::from(RawValue::from_string("{}".to_owned()).unwrap())
    }

    /// Two authenticated clients, `a` in `r1` with a stored key, `b` in no
    /// room; `open_rooms` open of at most `max_rooms`.
    fn scratch(open_rooms: usize, max_rooms: usize) -> (Scratch, ClientId, ClientId, RoomId) {
        let (a, b) = (ClientId::from_u64(1), ClientId::from_u64(2));
        let client = |id: ClientId, room: Option<&str>| recording::Client {
            id: id.to_string(),
            user_id: Some(format!("user-{id}")),
            room: room.map(str::to_owned),
            ..recording::Client::default()
        };
        let view = View {
            now: 42,
            max_rooms,
            open_rooms,
            clients: vec![client(a, Some("r1")), client(b, None)],
            room: Some(RoomView {
                id: "r1".into(),
                members: vec![Member {
                    client_id: a.to_string(),
                    user_id: format!("user-{a}"),
                    metadata: json!({"name": "A"}),
                }],
                kv: [("k".to_owned(), "v".to_owned())].into(),
            }),
        };
        (
            Scratch::from_view(&view),
            a,
            b,
            RoomId::parse("r1").unwrap(),
        )
    }

    #[test]
    fn a_scratch_world_answers_from_its_view_and_keeps_its_writes() {
        let (mut scratch, a, b, r1) = scratch(1, 16);
        let entry: Arc<str> = "rooms".into();
        let mut world = World::Scratch(&mut scratch);
        assert_eq!(world.kv_get(&r1, &entry, "k").as_deref(), Some("v"));
        let (others, joined) = world.join(b, &r1, metadata()).unwrap();
        assert_eq!(others[0].client_id, a);
        assert_eq!(others[0].metadata.get(), r#"{"name":"A"}"#);
        assert_eq!(joined.user_id.as_ref(), format!("user-{b}"));
        assert_eq!(world.member_ids(&r1, Some(a)), [b]);
        assert_eq!(
            world.join(b, &r1, metadata()).err(),
            Some(JoinError::AlreadyInRoom)
        );
        world.kv_set(&r1, &entry, "k".into(), "w".into());
        assert_eq!(world.leave(a), Some(r1.clone()));
        assert_eq!(world.leave(b), Some(r1.clone()));
        assert!(world.members(&r1).is_empty());
        assert_eq!(
            world.kv_get(&r1, &entry, "k"),
            None,
            "storage ends with the room"
        );
        assert_eq!(scratch.now(), 42);
    }

    #[test]
    fn rooms_open_elsewhere_count_toward_the_limit() {
        let (mut scratch, _, b, r1) = scratch(2, 2);
        let mut world = World::Scratch(&mut scratch);
        let r2 = RoomId::parse("r2").unwrap();
        assert_eq!(
            world.join(b, &r2, metadata()).err(),
            Some(JoinError::TooManyRooms)
        );
        assert!(
            world.join(b, &r1, metadata()).is_ok(),
            "an open room takes more"
        );
    }

    /// A client of `hub` authenticated as `user`.
    fn register(hub: &Hub, ids: &crate::session::ClientIds, user: &str) -> ClientId {
        let (outbox, _inbox) = crate::net::queue(crate::net::QueueLimits {
            messages: 16,
            bytes: 1 << 16,
        });
        let id = ids.next();
        let identity = Identity {
            user_id: user.into(),
            role: None,
            room_claim: None,
        };
        hub.register(id, outbox, Some(Arc::new(identity)));
        id
    }

    /// The scratch world is held to the hub: each call is asked on a
    /// scratch world built from its view, then on the hub, and the two
    /// decide alike; the scratch call changes nothing on the hub.
    #[test]
    fn a_call_on_the_scratch_world_of_its_view_decides_as_on_the_hub_and_leaves_it_alone() {
        use crate::plugins::testing::load_builtin_on;
        use switchboard_recording::Input;

        let hub = Arc::new(Hub::new(16));
        let rooms = load_builtin_on(Arc::clone(&hub), "rooms", r#"{"capacity":2}"#).unwrap();
        let chat = load_builtin_on(Arc::clone(&hub), "chat", "{}").unwrap();
        let ids = crate::session::ClientIds::new();
        let [a, b, c] = ["alice", "bob", "carol"].map(|user| register(&hub, &ids, user));
        let r1 = RoomId::parse("r1").unwrap();
        hub.join(a, &r1, metadata()).unwrap();
        let steps = [
            (
                &rooms,
                b,
                "room:join",
                r#"{"roomId":"r1","metadata":{"n":1}}"#,
            ),
            (&rooms, c, "room:join", r#"{"roomId":"r1"}"#),
            (&chat, b, "chat:message", r#"{"text":"hi"}"#),
            (&rooms, b, "room:state", "{}"),
            (&rooms, a, "room:leave", "{}"),
            (&rooms, b, "room:leave", "{}"),
        ];
        for (plugin, client, event, data) in steps {
            let input = Input::Event {
                client: recorded_client(&hub.client_info(client).unwrap()),
                event: event.into(),
                data: RawValue::from_string(data.into()).unwrap(),
            };
            let members = hub.member_ids(&r1, None);
            let view = view(&hub, Some(&r1), &plugin.name, &[client], 5);
            let scratch = plugin.trace(&input, 5, Some(Scratch::from_view(&view)));
            assert_eq!(
                hub.member_ids(&r1, None),
                members,
                "{event}: the hub is untouched"
            );
            let live = plugin.trace(&input, 5, None);
            assert!(
                scratch.decision.same_as(&live.decision),
                "{event} of {client}:\non the hub: {}\nin scratch: {}",
                live.decision,
                scratch.decision
            );
        }
        assert!(
            hub.members(&r1).is_empty(),
            "the live calls emptied the room"
        );
    }

    #[test]
    fn the_view_of_the_hub_is_what_a_scratch_world_is_built_from() {
        let hub = Hub::new(16);
        let ids = crate::session::ClientIds::new();
        let a = ids.next();
        let (outbox, _inbox) = crate::net::queue(crate::net::QueueLimits {
            messages: 16,
            bytes: 1 << 16,
        });
        let identity = Arc::new(Identity {
            user_id: "alice".into(),
            role: Some("moderator".into()),
            room_claim: None,
        });
        hub.register(a, outbox, Some(identity));
        let r1 = RoomId::parse("r1").unwrap();
        hub.join(a, &r1, metadata()).unwrap();
        let entry: Arc<str> = "rooms".into();
        hub.kv_set(&r1, &entry, "k".into(), "v".into());
        hub.kv_set(&r1, &"other".into(), "k".into(), "not rooms'".into());
        let view = view(&hub, Some(&r1), "rooms", &[a], 7);
        assert_eq!((view.now, view.open_rooms, view.max_rooms), (7, 1, 16));
        assert_eq!(view.clients.len(), 1, "the caller is a member: listed once");
        assert_eq!(view.clients[0].role.as_deref(), Some("moderator"));
        let room = view.room.as_ref().unwrap();
        assert_eq!(room.kv, [("k".to_owned(), "v".to_owned())].into());
        let mut scratch = Scratch::from_view(&view);
        let world = World::Scratch(&mut scratch);
        assert_eq!(world.client_info(a).unwrap().room, Some(r1.clone()));
        assert_eq!(world.members(&r1)[0].user_id.as_ref(), "alice");
    }
}
