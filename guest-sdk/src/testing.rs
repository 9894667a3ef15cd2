//! An in-memory [`Host`] for native unit tests of plugins.
//!
//! [`TestHost`] keeps clients, rooms with ordered membership, storage and
//! timers, and records everything the plugin (or the host on its behalf)
//! sends, so a test calls the plugin's methods directly and asserts on what
//! happened. Like the real host, `join_room` and `leave_room` themselves send
//! `room:peer-joined` and `room:peer-left` to the other members.
//!
//! It answers as the real host does: the same errors in the same order,
//! `limits.max_rooms` ([`TestHost::set_max_rooms`]), and it drops what the
//! host drops (a send to or a kick of a client that is not connected, a
//! timer for an invalid room id, storage for a room that does not exist).
//! What makes the host fail the plugin's whole call (an invalid event name,
//! data or metadata that is not the JSON text of an object) panics, which
//! fails the test. A send or broadcast is recorded at once, for the members
//! the room has at that moment of the call; the host delivers it once the
//! plugin returns, to those same members. One thing differs: ids. Any
//! string names the client added with it, where the host's ids are 16
//! lowercase hex digits. An id that names no client is answered as the
//! host answers it: `join_room` is `PEER_NOT_FOUND` for one that is not a
//! well-formed client id at all, `NOT_AUTHENTICATED` for one that is.
//!
//! ```
//! use serde_json::json;
//! use switchboard_sdk::Host;
//! use switchboard_sdk::testing::TestHost;
//!
//! let host = TestHost::new();
//! host.add_client("c1", "alice");
//! host.add_client("c2", "bob");
//! host.join_room("c1", "standup", "{}").unwrap();
//! let peers = host.join_room("c2", "standup", r#"{"name":"Bob"}"#).unwrap();
//!
//! assert_eq!(peers[0].client_id, "c1");
//! assert_eq!(host.client("c2").room.as_deref(), Some("standup"));
//! assert_eq!(
//!     host.sent_to("c1"),
//!     vec![(
//!         "room:peer-joined".to_owned(),
//!         json!({
//!             "roomId": "standup",
//!             "peer": {"clientId": "c2", "userId": "bob", "metadata": {"name": "Bob"}},
//!         }),
//!     )]
//! );
//! assert!(host.sent_to("c2").is_empty());
//! ```

mod replay;

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchboard_recording::Step;
use switchboard_vocab::ids::{ClientId, EventName, RoomId};

pub use replay::{replay, replay_entry};
pub use switchboard_recording::{Decision, Difference, ReadError, Report, Ruling};

use crate::types::json_object;
use crate::{
    ClientInfo, ErrorCode, Host, Identity, LogLevel, Outcome, Peer, ProtocolError, Relay,
    RelayEvent, RelayOutcome, event,
};

/// One message queued for a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub to: String,
    pub event: String,
    pub data: Value,
}

/// One [`Host::set_timer`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub room: String,
    pub delay_ms: u32,
    pub tag: String,
}

/// An in-memory host; see the [module docs](self).
///
/// Its clock reads 0 until [`TestHost::set_now`], and it holds any number
/// of rooms until [`TestHost::set_max_rooms`]. Storage of a room ends with
/// the room, and a `kv_set` for a room that does not exist is dropped.
#[derive(Debug, Default)]
pub struct TestHost {
    state: RefCell<State>,
}

#[derive(Debug, Default)]
struct State {
    clients: BTreeMap<String, ClientInfo>,
    /// Members of each room, oldest first; a room exists while it has any.
    rooms: BTreeMap<String, Vec<Peer>>,
    kv: BTreeMap<(String, String), String>,
    sent: Vec<Sent>,
    timers: Vec<Timer>,
    kicks: Vec<(String, String)>,
    logs: Vec<(LogLevel, String)>,
    now: u64,
    /// `None`: unlimited.
    max_rooms: Option<usize>,
    /// Rooms open besides those in `rooms`, toward `max_rooms`: a replay's
    /// view names only the call's room.
    other_rooms: usize,
    relay_data: String,
    /// During a replayed call, every step it takes, as the host traces it.
    journal: Option<Vec<Step>>,
}

impl TestHost {
    pub fn new() -> TestHost {
        TestHost::default()
    }

    /// A host with these clients, each authenticated with its id as user
    /// id and joined to its room (if any), in the order given.
    pub fn with_members(members: &[(&str, Option<&str>)]) -> TestHost {
        let host = TestHost::new();
        for (id, room) in members {
            host.add_client(id, id);
            if let Some(room) = room {
                host.join_room(id, room, "{}")
                    .expect("a fresh client joins");
            }
        }
        host
    }

    /// A connected client that has not authenticated yet.
    pub fn connect(&self, id: &str) -> ClientInfo {
        let client = ClientInfo {
            id: id.to_owned(),
            user_id: None,
            role: None,
            room_claim: None,
            room: None,
        };
        self.state
            .borrow_mut()
            .clients
            .insert(id.to_owned(), client.clone());
        client
    }

    /// A connected client authenticated as `user_id`, with no role and no
    /// room claim.
    pub fn add_client(&self, id: &str, user_id: &str) -> ClientInfo {
        self.connect(id);
        self.authenticate(
            id,
            Identity {
                user_id: user_id.to_owned(),
                role: None,
                room_claim: None,
            },
        )
    }

    /// Gives a known client an identity, as a successful auth does.
    pub fn authenticate(&self, id: &str, identity: Identity) -> ClientInfo {
        let mut state = self.state.borrow_mut();
        let client = state.client_mut(id);
        client.user_id = Some(identity.user_id);
        client.role = identity.role;
        client.room_claim = identity.room_claim;
        client.clone()
    }

    /// What the host knows about a client now, as a plugin call gets it.
    ///
    /// # Panics
    /// If the client is unknown.
    pub fn client(&self, id: &str) -> ClientInfo {
        self.state.borrow_mut().client_mut(id).clone()
    }

    /// A relay event from `from` to `to`, as the real host would describe
    /// it to [`Plugin::on_relay`](crate::Plugin::on_relay); `data` (the
    /// JSON text of its data) is then what [`Host::relay_data`] returns.
    /// Its `target` is `to` if `to` could be a client id (see the [module
    /// docs](self)), else `None`.
    pub fn relay(&self, from: &str, event: RelayEvent, to: &str, data: &str) -> Relay {
        let mut state = self.state.borrow_mut();
        state.relay_data = data.to_owned();
        let room = |id: &str| state.clients.get(id).and_then(|c| c.room.clone());
        let same_room = room(from).is_some() && room(from) == room(to);
        Relay {
            event,
            sender: from.to_owned(),
            target: state.could_be_client(to).then(|| to.to_owned()),
            same_room,
        }
    }

    /// Everything queued for one client, oldest first.
    pub fn sent_to(&self, client: &str) -> Vec<(String, Value)> {
        self.state
            .borrow()
            .sent
            .iter()
            .filter(|sent| sent.to == client)
            .map(|sent| (sent.event.clone(), sent.data.clone()))
            .collect()
    }

    /// Everything queued for anyone, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.state.borrow().sent.clone()
    }

    pub fn timers(&self) -> Vec<Timer> {
        self.state.borrow().timers.clone()
    }

    /// Every kick as `(client, reason)`.
    pub fn kicks(&self) -> Vec<(String, String)> {
        self.state.borrow().kicks.clone()
    }

    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.state.borrow().logs.clone()
    }

    /// Sets the clock that [`Host::now`] reads, in unix milliseconds.
    pub fn set_now(&self, unix_ms: u64) {
        self.state.borrow_mut().now = unix_ms;
    }

    /// Sets the host's `limits.max_rooms`: a join that would open one more
    /// room than this is `ROOM_FULL`.
    pub fn set_max_rooms(&self, max_rooms: usize) {
        self.state.borrow_mut().max_rooms = Some(max_rooms);
    }
}

/// The event and data of a reply, for assertions.
///
/// # Panics
/// If the outcome is not a reply whose data is JSON.
pub fn reply(outcome: Outcome) -> (String, Value) {
    match outcome {
        Outcome::Reply { event, data } => {
            let data = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("{event} reply data is not JSON ({e}): {data}"));
            (event, data)
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The error code of a rejection ([`Outcome`] or [`RelayOutcome`]), for
/// assertions.
///
/// # Panics
/// If the outcome is not a rejection.
pub fn rejection(outcome: impl Into<Rejected>) -> ErrorCode {
    match outcome.into() {
        Rejected(Ok(code)) => code,
        Rejected(Err(other)) => panic!("expected a rejection, got {other}"),
    }
}

/// An outcome read by [`rejection`]: its code, or what it was instead.
pub struct Rejected(Result<ErrorCode, String>);

impl From<Outcome> for Rejected {
    fn from(outcome: Outcome) -> Rejected {
        Rejected(match outcome {
            Outcome::Reject(ProtocolError { code, .. }) => Ok(code),
            other => Err(format!("{other:?}")),
        })
    }
}

impl From<RelayOutcome> for Rejected {
    fn from(outcome: RelayOutcome) -> Rejected {
        Rejected(match outcome {
            RelayOutcome::Reject(ProtocolError { code, .. }) => Ok(code),
            other => Err(format!("{other:?}")),
        })
    }
}

impl State {
    /// Writes a step down during a replayed call; `step` runs only then.
    fn journal(&mut self, step: impl FnOnce() -> Step) {
        if let Some(journal) = &mut self.journal {
            journal.push(step());
        }
    }

    /// The members of `room` but `except`, oldest first: whom a broadcast
    /// reaches.
    fn recipients(&self, room: &str, except: Option<&str>) -> Vec<String> {
        self.rooms
            .get(room)
            .into_iter()
            .flatten()
            .map(|peer| peer.client_id.clone())
            .filter(|member| Some(member.as_str()) != except)
            .collect()
    }

    fn client_mut(&mut self, id: &str) -> &mut ClientInfo {
        self.clients
            .get_mut(id)
            .unwrap_or_else(|| panic!("TestHost: unknown client {id:?}"))
    }

    /// Whether the host could take `id` for a client id: one of the
    /// clients here, or a well-formed id that names no one.
    fn could_be_client(&self, id: &str) -> bool {
        self.clients.contains_key(id) || ClientId::parse(id).is_some()
    }

    /// Queues a message for a client; the host drops one for a client that
    /// is not connected.
    fn send(&mut self, to: &str, event: &str, data: &Value) {
        if self.clients.contains_key(to) {
            self.sent.push(Sent {
                to: to.to_owned(),
                event: event.to_owned(),
                data: data.clone(),
            });
        }
    }

    /// Queues a message for every member of `room` but `except`; a room
    /// that does not exist has no one to tell.
    fn broadcast(&mut self, room: &str, event: &str, data: &Value, except: Option<&str>) {
        for member in self.recipients(room, except) {
            self.send(&member, event, data);
        }
    }

    /// Takes a client out of its room and tells the others; returns the
    /// room.
    fn leave(&mut self, client: &str) -> Option<String> {
        let room = self.clients.get_mut(client)?.room.take()?;
        let members = self.rooms.get_mut(&room)?;
        members.retain(|peer| peer.client_id != client);
        if members.is_empty() {
            self.rooms.remove(&room);
            self.kv.retain(|(kv_room, _), _| *kv_room != room);
        }
        let notice = json!({"roomId": room, "clientId": client, "reason": "left"});
        self.broadcast(&room, event::ROOM_PEER_LEFT, &notice, None);
        Some(room)
    }

    /// Adds a client to a room, after the checks the host makes, in its
    /// order; returns the other members and the new one.
    fn join(
        &mut self,
        client: &str,
        room: &str,
        metadata: &str,
    ) -> Result<(Vec<Peer>, Peer), ErrorCode> {
        if !self.could_be_client(client) {
            return Err(ErrorCode::PeerNotFound);
        }
        if RoomId::parse(room).is_none() {
            return Err(ErrorCode::InvalidMessage);
        }
        let metadata = object("join_room", "metadata", metadata).get();
        let opens_a_room = !self.rooms.contains_key(room);
        let open = self.rooms.len() + self.other_rooms;
        let rooms_full = self.max_rooms.is_some_and(|max| open >= max);
        let info = self
            .clients
            .get_mut(client)
            .ok_or(ErrorCode::NotAuthenticated)?;
        if info.room.is_some() {
            return Err(ErrorCode::AlreadyInRoom);
        }
        if opens_a_room && rooms_full {
            return Err(ErrorCode::RoomFull);
        }
        let user_id = info.user_id.clone().ok_or(ErrorCode::NotAuthenticated)?;
        info.room = Some(room.to_owned());
        let peer = Peer {
            client_id: client.to_owned(),
            user_id,
            metadata: metadata.to_owned(),
        };
        let members = self.rooms.entry(room.to_owned()).or_default();
        let others = members.clone();
        members.push(peer.clone());
        Ok((others, peer))
    }
}

/// `text`, which a plugin passed to `call` as `what`, if it is the JSON text
/// of an object: the host fails a call that passes anything else, so here
/// it fails the test.
fn object<'a>(call: &str, what: &str, text: &'a str) -> &'a RawValue {
    json_object(text).unwrap_or_else(|| {
        panic!("TestHost: {call} was passed {what} that is not a JSON object: {text}")
    })
}

/// What a plugin asked to send, as recorded; like the host, an invalid
/// event name fails the call, and so the test.
fn message(call: &str, event: &str, data: &str) -> Value {
    if EventName::parse(event).is_none() {
        panic!("TestHost: {call} was passed an invalid event name {event:?}");
    }
    let data = object(call, "data", data);
    serde_json::from_str(data.get()).expect("an object is a JSON value")
}

impl Host for TestHost {
    fn send(&self, client: &str, event: &str, data: &str) {
        let data = message("send", event, data);
        let mut state = self.state.borrow_mut();
        state.journal(|| Step::Send {
            to: client.to_owned(),
            event: event.to_owned(),
            data: data.clone(),
        });
        state.send(client, event, &data);
    }

    fn broadcast(&self, room: &str, event: &str, data: &str, except: Option<&str>) {
        let data = message("broadcast", event, data);
        let mut state = self.state.borrow_mut();
        let to = state.recipients(room, except);
        state.journal(|| Step::Broadcast {
            room: room.to_owned(),
            event: event.to_owned(),
            data: data.clone(),
            except: except.map(str::to_owned),
            to,
        });
        state.broadcast(room, event, &data, except);
    }

    /// Checks in the host's order: `PEER_NOT_FOUND` for an id that cannot
    /// be a client's, `INVALID_MESSAGE` for an invalid room id, then (the
    /// metadata being an object) `NOT_AUTHENTICATED` for a client that is
    /// not connected, `ALREADY_IN_ROOM`, `ROOM_FULL` beyond the
    /// [max rooms](TestHost::set_max_rooms), and `NOT_AUTHENTICATED` for a
    /// client without a user id.
    fn join_room(&self, client: &str, room: &str, metadata: &str) -> Result<Vec<Peer>, ErrorCode> {
        let mut state = self.state.borrow_mut();
        let joined = state.join(client, room, metadata);
        state.journal(|| Step::JoinRoom {
            client: client.to_owned(),
            room: room.to_owned(),
            metadata: serde_json::from_str(metadata).unwrap_or(Value::Null),
            refused: joined.as_ref().err().map(|code| code.as_str().to_owned()),
        });
        let (others, peer) = joined?;
        let notice = json!({"roomId": room, "peer": peer});
        state.broadcast(room, event::ROOM_PEER_JOINED, &notice, Some(client));
        Ok(others)
    }

    fn leave_room(&self, client: &str) -> Option<String> {
        let mut state = self.state.borrow_mut();
        let left = state.leave(client);
        state.journal(|| Step::LeaveRoom {
            client: client.to_owned(),
            left: left.clone(),
        });
        left
    }

    fn room_members(&self, room: &str) -> Vec<Peer> {
        self.state
            .borrow()
            .rooms
            .get(room)
            .cloned()
            .unwrap_or_default()
    }

    fn client_info(&self, client: &str) -> Option<ClientInfo> {
        self.state.borrow().clients.get(client).cloned()
    }

    fn kv_get(&self, room: &str, key: &str) -> Option<String> {
        let key = (room.to_owned(), key.to_owned());
        self.state.borrow().kv.get(&key).cloned()
    }

    fn kv_set(&self, room: &str, key: &str, value: &str) {
        let mut state = self.state.borrow_mut();
        state.journal(|| Step::KvSet {
            room: room.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        });
        if state.rooms.contains_key(room) {
            state
                .kv
                .insert((room.to_owned(), key.to_owned()), value.to_owned());
        }
    }

    fn kv_delete(&self, room: &str, key: &str) {
        let mut state = self.state.borrow_mut();
        state.journal(|| Step::KvDelete {
            room: room.to_owned(),
            key: key.to_owned(),
        });
        state.kv.remove(&(room.to_owned(), key.to_owned()));
    }

    /// Recorded unless `room` is not a valid room id, which the host
    /// ignores; a timer for a room that does not exist is recorded, and
    /// the host would skip it when it fires.
    fn set_timer(&self, room: &str, delay_ms: u32, tag: &str) {
        let mut state = self.state.borrow_mut();
        state.journal(|| Step::Timer {
            room: room.to_owned(),
            delay_ms,
            tag: tag.to_owned(),
        });
        if RoomId::parse(room).is_some() {
            state.timers.push(Timer {
                room: room.to_owned(),
                delay_ms,
                tag: tag.to_owned(),
            });
        }
    }

    fn kick(&self, client: &str, reason: &str) {
        let mut state = self.state.borrow_mut();
        state.journal(|| Step::Kick {
            client: client.to_owned(),
            reason: reason.to_owned(),
        });
        if state.clients.contains_key(client) {
            state.kicks.push((client.to_owned(), reason.to_owned()));
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        let entry = (level, message.to_owned());
        self.state.borrow_mut().logs.push(entry);
    }

    fn now(&self) -> u64 {
        self.state.borrow().now
    }

    fn relay_data(&self) -> String {
        self.state.borrow().relay_data.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_in_a_room() -> TestHost {
        let host = TestHost::new();
        host.add_client("c1", "alice");
        host.add_client("c2", "bob");
        host.join_room("c1", "r", "{}").unwrap();
        host.join_room("c2", "r", "{}").unwrap();
        host
    }

    #[test]
    fn join_returns_the_others_oldest_first() {
        let host = two_in_a_room();
        host.add_client("c3", "carol");
        let peers = host.join_room("c3", "r", "{}").unwrap();
        let ids: Vec<_> = peers.iter().map(|p| p.client_id.as_str()).collect();
        assert_eq!(ids, ["c1", "c2"]);
        assert_eq!(host.room_members("r").len(), 3);
    }

    #[test]
    fn join_while_in_a_room_fails_and_changes_nothing() {
        let host = two_in_a_room();
        assert_eq!(
            host.join_room("c1", "other", "{}"),
            Err(ErrorCode::AlreadyInRoom)
        );
        assert!(host.room_members("other").is_empty());
        assert_eq!(host.client("c1").room.as_deref(), Some("r"));
    }

    #[test]
    fn join_of_a_client_that_is_not_authenticated_is_refused_as_on_the_host() {
        let host = TestHost::new();
        host.connect("c1");
        let join = |client| host.join_room(client, "r", "{}");
        assert_eq!(join("c1"), Err(ErrorCode::NotAuthenticated));
        assert_eq!(join("0123456789abcdef"), Err(ErrorCode::NotAuthenticated));
        assert_eq!(join("ghost"), Err(ErrorCode::PeerNotFound));
        assert!(host.room_members("r").is_empty());
    }

    #[test]
    fn an_invalid_room_id_is_invalid_message_before_anything_else() {
        let host = two_in_a_room();
        for room in [String::new(), "é".repeat(129)] {
            assert_eq!(
                host.join_room("c1", &room, "{}"),
                Err(ErrorCode::InvalidMessage)
            );
        }
        assert_eq!(
            host.join_room("c1", &"é".repeat(128), "{}"),
            Err(ErrorCode::AlreadyInRoom),
            "128 characters is a valid room id"
        );
    }

    #[test]
    fn a_join_that_would_open_a_room_beyond_the_limit_is_room_full() {
        let host = TestHost::new();
        host.set_max_rooms(1);
        for id in ["c1", "c2", "c3"] {
            host.add_client(id, id);
        }
        host.join_room("c1", "r", "{}").unwrap();
        assert_eq!(host.join_room("c2", "s", "{}"), Err(ErrorCode::RoomFull));
        host.join_room("c2", "r", "{}").unwrap();
        host.connect("c4");
        assert_eq!(
            host.join_room("c4", "s", "{}"),
            Err(ErrorCode::RoomFull),
            "the limit is checked before the identity"
        );
    }

    #[test]
    #[should_panic(expected = "metadata that is not a JSON object")]
    fn joining_with_metadata_that_is_not_an_object_fails_the_test() {
        let host = TestHost::new();
        host.add_client("c1", "alice");
        let _ = host.join_room("c1", "r", "[]");
    }

    #[test]
    fn leave_tells_the_others_with_reason_left() {
        let host = two_in_a_room();
        assert_eq!(host.leave_room("c2"), Some("r".to_owned()));
        assert_eq!(
            host.sent_to("c1").last(),
            Some(&(
                event::ROOM_PEER_LEFT.to_owned(),
                json!({"roomId": "r", "clientId": "c2", "reason": "left"})
            ))
        );
        assert!(host.sent_to("c2").is_empty());
        assert_eq!(host.client("c2").room, None);
        assert_eq!(host.leave_room("c2"), None);
    }

    #[test]
    fn storage_ends_with_the_room() {
        let host = two_in_a_room();
        host.kv_set("r", "k", "v");
        host.kv_set("nowhere", "k", "v");
        assert_eq!(host.kv_get("r", "k").as_deref(), Some("v"));
        assert_eq!(host.kv_get("nowhere", "k"), None);

        host.leave_room("c1");
        assert_eq!(host.kv_get("r", "k").as_deref(), Some("v"));
        host.leave_room("c2");
        assert_eq!(host.kv_get("r", "k"), None);
    }

    #[test]
    fn broadcast_skips_the_excepted_member() {
        let host = two_in_a_room();
        host.broadcast("r", "chat:message", r#"{"text":"hi"}"#, Some("c1"));
        assert_eq!(host.sent().len(), 2, "one peer-joined and one chat message");
        assert_eq!(
            host.sent_to("c2"),
            vec![("chat:message".to_owned(), json!({"text": "hi"}))]
        );
    }

    #[test]
    #[should_panic(expected = "not a JSON object")]
    fn sending_data_that_is_not_an_object_fails_the_test() {
        let host = TestHost::new();
        host.send("c1", "x", "[]");
    }

    #[test]
    #[should_panic(expected = "invalid event name")]
    fn broadcasting_an_invalid_event_name_fails_the_test_even_to_no_one() {
        let host = TestHost::new();
        host.broadcast("nowhere", "Chat", "{}", None);
    }

    #[test]
    fn what_the_host_drops_is_dropped() {
        let host = two_in_a_room();
        let heard = host.sent().len();
        host.send("ghost", "x", "{}");
        host.kick("ghost", "spam");
        host.set_timer("", 500, "tick");
        host.set_timer(&"r".repeat(129), 500, "tick");
        assert_eq!(host.sent().len(), heard);
        assert!(host.kicks().is_empty());
        assert!(host.timers().is_empty());
    }

    #[test]
    fn records_timers_kicks_logs_and_time() {
        let host = TestHost::new();
        host.add_client("c1", "alice");
        host.set_timer("r", 500, "tick");
        host.kick("c1", "spam");
        host.log(LogLevel::Warn, "careful");
        host.set_now(42);
        assert_eq!(
            host.timers(),
            [Timer {
                room: "r".into(),
                delay_ms: 500,
                tag: "tick".into()
            }]
        );
        assert_eq!(host.kicks(), [("c1".to_owned(), "spam".to_owned())]);
        assert_eq!(host.logs(), [(LogLevel::Warn, "careful".to_owned())]);
        assert_eq!(host.now(), 42);
    }
}
