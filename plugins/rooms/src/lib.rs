//! The default room policy: `room:join`, `room:leave` and `room:state`.
//!
//! Membership itself lives in the host; this plugin decides who may join
//! (one room at a time, the token's `room` claim, a capacity) and answers
//! with the room's view. The host sends `room:peer-joined` and
//! `room:peer-left` to the others itself.
//!
//! Config: `{"capacity": n}`, the most members a room may have (default 16).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Peer, Plugin};

const DEFAULT_CAPACITY: usize = 16;

pub struct Rooms {
    capacity: usize,
}

#[derive(Deserialize)]
struct Config {
    capacity: Option<usize>,
}

/// `room:join` data, as the host normalised it.
#[derive(Deserialize)]
struct Join {
    #[serde(rename = "roomId")]
    room_id: String,
    #[serde(default)]
    metadata: Map<String, Value>,
}

impl Plugin for Rooms {
    fn describe() -> Descriptor {
        Descriptor {
            name: "rooms".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: ["room:join", "room:leave", "room:state"]
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
            "room:join" => match serde_json::from_str(data) {
                Ok(join) => self.join(host, client, join),
                Err(e) => Outcome::reject(ErrorCode::InvalidMessage, format!("room:join: {e}")),
            },
            "room:leave" => leave(host, client),
            "room:state" => state(host, client),
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
        let metadata = Value::Object(join.metadata).to_string();
        match host.join_room(&client.id, &room, &metadata) {
            Ok(peers) => Outcome::reply(
                "room:joined",
                &json!({
                    "roomId": room,
                    "peers": peers_json(&peers),
                    "self": client.as_peer(&metadata).to_json(),
                }),
            ),
            Err(code) => Outcome::reject(code, "could not join the room"),
        }
    }
}

fn leave(host: &dyn Host, client: &ClientInfo) -> Outcome {
    if client.room.is_none() {
        return not_in_room();
    }
    match host.leave_room(&client.id) {
        Some(room) => Outcome::reply("room:left", &json!({ "roomId": room })),
        None => not_in_room(),
    }
}

fn state(host: &dyn Host, client: &ClientInfo) -> Outcome {
    let Some(room) = &client.room else {
        return not_in_room();
    };
    let mut peers = host.room_members(room);
    peers.retain(|peer| peer.client_id != client.id);
    Outcome::reply(
        "room:state",
        &json!({ "roomId": room, "peers": peers_json(&peers) }),
    )
}

fn not_in_room() -> Outcome {
    Outcome::reject(ErrorCode::NotInRoom, "not in a room")
}

fn peers_json(peers: &[Peer]) -> Vec<Value> {
    peers.iter().map(Peer::to_json).collect()
}

switchboard_sdk::export_plugin!(Rooms);

#[cfg(test)]
mod tests;
