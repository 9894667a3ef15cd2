//! Rooms that close themselves a fixed time after they were created.
//!
//! Config: `{"ttl_ms": n}`, required, 1..=4294967295 (the host's timers
//! take a `u32`).
//!
//! The plugin sees `room:join` and must come before `rooms` in the chain. A
//! join that would create a room (the room has no members yet, and the
//! client is in no room) sets a timer for `ttl_ms`; the join itself always
//! passes on to `rooms`. When the timer fires, every member gets
//! `room:closed` `{"roomId", "reason": "ttl"}` and is then kicked (close
//! code 4009, reason "room expired"), which empties the room.
//!
//! The timer is set before `rooms` decides, because room storage cannot
//! record anything for a room that does not exist yet. So the plugin cannot
//! tell one life of a room id from the next:
//!
//! - a join that `rooms` then refuses leaves a timer behind; the host skips
//!   it if the room does not exist when it fires, but if someone creates
//!   the room in the meantime, that room is closed early;
//! - likewise, a room that empties and is created again within the TTL is
//!   closed when the first life's timer fires, early for the second life
//!   (whose own timer then finds no room, or a third life).

use serde::Deserialize;
use serde_json::json;
use switchboard_sdk::event::ROOM_JOIN;
use switchboard_sdk::{ClientInfo, Descriptor, EventDecl, Hook, Host, Outcome, Plugin};

const EXPIRE: &str = "expire";
const KICK_REASON: &str = "room expired";

pub struct RoomTtl {
    ttl_ms: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    ttl_ms: u32,
}

/// `room:join` data, as the host normalised it; only the target matters.
#[derive(Deserialize)]
struct Join {
    #[serde(rename = "roomId")]
    room_id: String,
}

impl Plugin for RoomTtl {
    fn describe() -> Descriptor {
        Descriptor {
            name: "room-ttl".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![EventDecl::new(ROOM_JOIN)],
            hooks: vec![Hook::Timer],
        }
    }

    fn new(config: &str) -> Result<Self, String> {
        match serde_json::from_str::<Config>(config) {
            Ok(Config { ttl_ms: 0 }) => Err("room-ttl config: `ttl_ms` must be at least 1".into()),
            Ok(Config { ttl_ms }) => Ok(RoomTtl { ttl_ms }),
            Err(e) => Err(format!("room-ttl config: {e}")),
        }
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if event == ROOM_JOIN && client.room.is_none() {
            // Malformed data is for `rooms` to answer.
            if let Ok(join) = serde_json::from_str::<Join>(data) {
                self.arm(host, &join.room_id);
            }
        }
        Outcome::Pass
    }

    fn on_timer(&self, host: &dyn Host, room: &str, tag: &str) {
        if tag == EXPIRE {
            close(host, room);
        }
    }
}

impl RoomTtl {
    /// Starts the room's clock if this join creates it.
    fn arm(&self, host: &dyn Host, room: &str) {
        if host.room_members(room).is_empty() {
            host.set_timer(room, self.ttl_ms, EXPIRE);
        }
    }
}

/// Tells every member why, then closes their connections; the host sends
/// the notice before the close because it queues both in this order.
fn close(host: &dyn Host, room: &str) {
    let members = host.room_members(room);
    let notice = json!({ "roomId": room, "reason": "ttl" });
    host.broadcast(room, "room:closed", &notice.to_string(), None);
    for member in members {
        host.kick(&member.client_id, KICK_REASON);
    }
}

switchboard_sdk::export_plugin!(RoomTtl);

#[cfg(test)]
mod tests;
