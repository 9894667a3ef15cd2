//! The default room policy: `room:join`, `room:leave` and `room:state`.
//!
//! Membership itself lives in the host; this plugin decides who may join
//! (one room at a time, the token's `room` claim, a capacity) and answers
//! with the room's view. The host sends `room:peer-joined` and
//! `room:peer-left` to the others itself.
//!
//! Config: `{"capacity": n}`, the most members a room may have (default 16).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use switchboard_sdk::event::{ROOM_JOIN, ROOM_JOINED, ROOM_LEAVE, ROOM_LEFT, ROOM_STATE};
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Peer, Plugin};

const DEFAULT_CAPACITY: usize = 16;

pub struct Rooms {
    capacity: usize,
}

#[derive(Deserialize)]
struct Config {
    capacity: Option<usize>,
}

/// `room:join` data, as the host normalised it; `metadata` is passed on as
/// the text it came as.
#[derive(Deserialize)]
struct Join<'a> {
    #[serde(rename = "roomId")]
    room_id: String,
    /// Any JSON value, `null` included; only an object is accepted.
    #[serde(borrow, default, deserialize_with = "present")]
    metadata: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The replies, written straight to JSON text: every join and leave of
/// every client builds one, so they skip the `serde_json::Value` tree.
#[derive(Serialize)]
struct Joined<'a> {
    #[serde(rename = "roomId")]
    room_id: &'a str,
    peers: &'a [Peer],
    #[serde(rename = "self")]
    me: &'a Peer,
}

#[derive(Serialize)]
struct RoomView<'a> {
    #[serde(rename = "roomId")]
    room_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<&'a [Peer]>,
}

fn reply(event: &str, data: &impl Serialize) -> Outcome {
    match serde_json::to_string(data) {
        Ok(data) => Outcome::Reply {
            event: event.to_owned(),
            data,
        },
        Err(e) => Outcome::reject(ErrorCode::Internal, format!("{event}: {e}")),
    }
}

impl Plugin for Rooms {
    fn describe() -> Descriptor {
        Descriptor {
            name: "rooms".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: [ROOM_JOIN, ROOM_LEAVE, ROOM_STATE]
                .map(EventDecl::new)
                .into(),
            hooks: vec![],
        }
    }

    fn new(config: &str) -> Result<Self, String> {
        let config: Config =
            serde_json::from_str(config).map_err(|e| format!("rooms config: {e}"))?;
        match config.capacity {
            Some(0) => Err("rooms config: `capacity` must be at least 1".into()),
            capacity => Ok(Rooms {
                capacity: capacity.unwrap_or(DEFAULT_CAPACITY),
            }),
        }
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
        match event {
            ROOM_JOIN => match serde_json::from_str::<Join>(data) {
                Ok(join) if join.metadata.is_none_or(|m| m.get().starts_with('{')) => {
                    self.join(host, client, join)
                }
                Ok(_) => Outcome::reject(
                    ErrorCode::InvalidMessage,
                    "room:join: `metadata` must be an object",
                ),
                Err(e) => Outcome::reject(ErrorCode::InvalidMessage, format!("room:join: {e}")),
            },
            ROOM_LEAVE => leave(host, client),
            ROOM_STATE => state(host, client),
            _ => Outcome::Pass,
        }
    }
}

impl Rooms {
    fn join(&self, host: &dyn Host, client: &ClientInfo, join: Join) -> Outcome {
        let room = join.room_id;
        if client.room.is_some() {
            return Outcome::reject(
                ErrorCode::AlreadyInRoom,
                "already in a room; leave it first",
            );
        }
        if client
            .room_claim
            .as_ref()
            .is_some_and(|claim| *claim != room)
        {
            return Outcome::reject(ErrorCode::Forbidden, "the token does not allow this room");
        }
        if host.room_members(&room).len() >= self.capacity {
            return Outcome::reject(ErrorCode::RoomFull, "the room is full");
        }
        let metadata = join.metadata.map_or("{}", RawValue::get);
        match host.join_room(&client.id, &room, metadata) {
            Ok(peers) => {
                let me = client.as_peer(metadata);
                let joined = Joined {
                    room_id: &room,
                    peers: &peers,
                    me: &me,
                };
                reply(ROOM_JOINED, &joined)
            }
            Err(code) => Outcome::reject(code, "could not join the room"),
        }
    }
}

fn leave(host: &dyn Host, client: &ClientInfo) -> Outcome {
    if client.room.is_none() {
        return not_in_room();
    }
    match host.leave_room(&client.id) {
        Some(room) => reply(
            ROOM_LEFT,
            &RoomView {
                room_id: &room,
                peers: None,
            },
        ),
        None => not_in_room(),
    }
}

fn state(host: &dyn Host, client: &ClientInfo) -> Outcome {
    let Some(room) = &client.room else {
        return not_in_room();
    };
    let mut peers = host.room_members(room);
    peers.retain(|peer| peer.client_id != client.id);
    let state = RoomView {
        room_id: room,
        peers: Some(&peers),
    };
    reply(ROOM_STATE, &state)
}

fn not_in_room() -> Outcome {
    Outcome::reject(ErrorCode::NotInRoom, "not in a room")
}

switchboard_sdk::export_plugin!(Rooms);

#[cfg(test)]
mod tests;
