//! An in-memory [`Host`] for native unit tests of plugins.
//!
//! [`TestHost`] keeps clients, rooms with ordered membership, storage and
//! timers, and records everything the plugin (or the host on its behalf)
//! sends, so a test calls the plugin's methods directly and asserts on what
//! happened. Like the real host, `join_room` and `leave_room` themselves send
//! `room:peer-joined` and `room:peer-left` to the other members.
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

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{
    ClientInfo, ErrorCode, Host, Identity, LogLevel, Outcome, Peer, ProtocolError, Relay,
    RelayEvent, RelayOutcome,
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
/// Its clock reads 0 until [`TestHost::set_now`]. Storage of a room ends
/// with the room, and a `kv_set` for a room that does not exist is dropped.
/// Data sent that is not the JSON text of an object fails the test.
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
    relay_data: String,
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
    /// Any `to` counts as a client id here.
    pub fn relay(&self, from: &str, event: RelayEvent, to: &str, data: &str) -> Relay {
        let mut state = self.state.borrow_mut();
        state.relay_data = data.to_owned();
        let room = |id: &str| state.clients.get(id).and_then(|c| c.room.clone());
        let same_room = room(from).is_some() && room(from) == room(to);
        Relay {
            event,
            sender: from.to_owned(),
            target: Some(to.to_owned()),
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
    fn client_mut(&mut self, id: &str) -> &mut ClientInfo {
        self.clients
            .get_mut(id)
            .unwrap_or_else(|| panic!("TestHost: unknown client {id:?}"))
    }

    fn send(&mut self, to: &str, event: &str, data: &str) {
        let data: Value = match serde_json::from_str(data) {
            Ok(value @ Value::Object(_)) => value,
            _ => panic!("TestHost: {event} for {to} has data that is not a JSON object: {data}"),
        };
        self.sent.push(Sent {
            to: to.to_owned(),
            event: event.to_owned(),
            data,
        });
    }

    /// Queues a message for every member of `room` but `except`; a room
    /// that does not exist has no one to tell.
    fn broadcast(&mut self, room: &str, event: &str, data: &str, except: Option<&str>) {
        let members: Vec<String> = self
            .rooms
            .get(room)
            .into_iter()
            .flatten()
            .map(|peer| peer.client_id.clone())
            .filter(|member| Some(member.as_str()) != except)
            .collect();
        for member in members {
            self.send(&member, event, data);
        }
    }
}

impl Host for TestHost {
    fn send(&self, client: &str, event: &str, data: &str) {
        self.state.borrow_mut().send(client, event, data);
    }

    fn broadcast(&self, room: &str, event: &str, data: &str, except: Option<&str>) {
        self.state.borrow_mut().broadcast(room, event, data, except);
    }

    fn join_room(&self, client: &str, room: &str, metadata: &str) -> Result<Vec<Peer>, ErrorCode> {
        let mut state = self.state.borrow_mut();
        let info = state
            .clients
            .get_mut(client)
            .ok_or(ErrorCode::PeerNotFound)?;
        if info.room.is_some() {
            return Err(ErrorCode::AlreadyInRoom);
        }
        info.room = Some(room.to_owned());
        let peer = info.as_peer(metadata);

        let others = state.rooms.get(room).cloned().unwrap_or_default();
        let notice = json!({"roomId": room, "peer": peer.to_json()});
        state.broadcast(room, "room:peer-joined", &notice.to_string(), None);
        state.rooms.entry(room.to_owned()).or_default().push(peer);
        Ok(others)
    }

    fn leave_room(&self, client: &str) -> Option<String> {
        let mut state = self.state.borrow_mut();
        let room = state.clients.get_mut(client)?.room.take()?;
        let members = state.rooms.get_mut(&room)?;
        members.retain(|peer| peer.client_id != client);
        if members.is_empty() {
            state.rooms.remove(&room);
            state.kv.retain(|(kv_room, _), _| *kv_room != room);
        }
        let notice = json!({"roomId": room, "clientId": client, "reason": "left"});
        state.broadcast(&room, "room:peer-left", &notice.to_string(), None);
        Some(room)
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
        if state.rooms.contains_key(room) {
            state
                .kv
                .insert((room.to_owned(), key.to_owned()), value.to_owned());
        }
    }

    fn kv_delete(&self, room: &str, key: &str) {
        let key = (room.to_owned(), key.to_owned());
        self.state.borrow_mut().kv.remove(&key);
    }

    fn set_timer(&self, room: &str, delay_ms: u32, tag: &str) {
        self.state.borrow_mut().timers.push(Timer {
            room: room.to_owned(),
            delay_ms,
            tag: tag.to_owned(),
        });
    }

    fn kick(&self, client: &str, reason: &str) {
        let kick = (client.to_owned(), reason.to_owned());
        self.state.borrow_mut().kicks.push(kick);
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
    fn join_of_an_unknown_client_is_peer_not_found() {
        let host = TestHost::new();
        assert_eq!(
            host.join_room("ghost", "r", "{}"),
            Err(ErrorCode::PeerNotFound)
        );
    }

    #[test]
    fn leave_tells_the_others_with_reason_left() {
        let host = two_in_a_room();
        assert_eq!(host.leave_room("c2"), Some("r".to_owned()));
        assert_eq!(
            host.sent_to("c1").last(),
            Some(&(
                "room:peer-left".to_owned(),
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
    fn records_timers_kicks_logs_and_time() {
        let host = TestHost::new();
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
