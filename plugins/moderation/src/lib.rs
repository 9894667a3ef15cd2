//! Room moderation: lock a room against new joins, unlock it, kick a member.
//!
//! | client sends | data | reply (same `id`) | others in the room get |
//! |---|---|---|---|
//! | `room:lock` | `{}` | `room:locked` `{"roomId"}` | `room:locked` `{"roomId"}` |
//! | `room:unlock` | `{}` | `room:unlocked` `{"roomId"}` | `room:unlocked` `{"roomId"}` |
//! | `room:kick` | `{"clientId": string(1..)}` | `room:kicked` `{"roomId", "clientId"}` | — (the host tells them when the kicked connection is gone) |
//!
//! Errors, in this order: `NOT_IN_ROOM` (the sender is in no room),
//! `FORBIDDEN` (the sender's token has no `role: "moderator"`),
//! `PEER_NOT_FOUND` (the kick target is the sender, unknown, or not in the
//! sender's room). A kicked connection is closed by the host with 4009 and
//! the reason "kicked by a moderator".
//!
//! The plugin also sees `room:join`, and must come before `rooms` in the
//! chain: a join of a locked room is `FORBIDDEN` "room is locked"; every
//! other join passes on to `rooms`. A client already in a room passes too,
//! so that `rooms` answers `ALREADY_IN_ROOM`, which PROTOCOL.md ranks before
//! `FORBIDDEN`.
//!
//! The lock lives in the room's host storage, so it survives instance
//! recycling and hot swaps, and it ends with the room: once the last member
//! has left, the room id is open again. Locking a locked room (or unlocking
//! an open one) is answered as if it were not.

use serde::Deserialize;
use serde_json::json;
use switchboard_sdk::event::ROOM_JOIN;
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

const LOCK: &str = "room:lock";
const UNLOCK: &str = "room:unlock";
const KICK: &str = "room:kick";

const MODERATOR_ROLE: &str = "moderator";
const KICK_REASON: &str = "kicked by a moderator";

/// The room storage key whose presence means "locked".
const LOCKED_KEY: &str = "locked";

pub struct Moderation;

/// `room:join` data, as the host normalised it; only the target matters.
#[derive(Deserialize)]
struct Join {
    #[serde(rename = "roomId")]
    room_id: String,
}

#[derive(Deserialize)]
struct Kick {
    #[serde(rename = "clientId")]
    client_id: String,
}

/// What a moderator asked for.
enum Action {
    Lock,
    Unlock,
    Kick(String),
}

impl Plugin for Moderation {
    fn describe() -> Descriptor {
        Descriptor {
            name: "moderation".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![
                EventDecl::new(ROOM_JOIN),
                custom(LOCK, json!({ "type": "object" })),
                custom(UNLOCK, json!({ "type": "object" })),
                custom(
                    KICK,
                    json!({
                        "type": "object",
                        "properties": { "clientId": { "type": "string", "minLength": 1 } },
                        "required": ["clientId"],
                    }),
                ),
            ],
            hooks: vec![],
        }
    }

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Moderation)
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
        let action = match event {
            ROOM_JOIN => return guard_join(host, client, data),
            LOCK => Action::Lock,
            UNLOCK => Action::Unlock,
            KICK => match serde_json::from_str::<Kick>(data) {
                Ok(kick) => Action::Kick(kick.client_id),
                Err(e) => {
                    return Outcome::reject(ErrorCode::InvalidMessage, format!("{KICK}: {e}"));
                }
            },
            _ => return Outcome::Pass,
        };
        match moderated_room(client) {
            Ok(room) => act(host, client, room, action),
            Err(refusal) => refusal,
        }
    }
}

fn custom(name: &str, schema: serde_json::Value) -> EventDecl {
    EventDecl {
        name: name.into(),
        schema: Some(schema.to_string()),
    }
}

/// Refuses a join of a locked room; leaves every other answer to `rooms`.
fn guard_join(host: &dyn Host, client: &ClientInfo, data: &str) -> Outcome {
    if client.room.is_some() {
        return Outcome::Pass;
    }
    match serde_json::from_str::<Join>(data) {
        Ok(join) if is_locked(host, &join.room_id) => {
            Outcome::reject(ErrorCode::Forbidden, "room is locked")
        }
        // Malformed data too is for `rooms` to answer.
        _ => Outcome::Pass,
    }
}

/// The sender's room, if the sender may moderate it.
fn moderated_room(client: &ClientInfo) -> Result<&str, Outcome> {
    let Some(room) = client.room.as_deref() else {
        return Err(Outcome::reject(ErrorCode::NotInRoom, "not in a room"));
    };
    if client.role.as_deref() != Some(MODERATOR_ROLE) {
        return Err(Outcome::reject(
            ErrorCode::Forbidden,
            "only a moderator may do this",
        ));
    }
    Ok(room)
}

fn act(host: &dyn Host, moderator: &ClientInfo, room: &str, action: Action) -> Outcome {
    match action {
        Action::Lock => {
            host.kv_set(room, LOCKED_KEY, "true");
            announce(host, moderator, room, "room:locked")
        }
        Action::Unlock => {
            host.kv_delete(room, LOCKED_KEY);
            announce(host, moderator, room, "room:unlocked")
        }
        Action::Kick(target) => kick(host, moderator, room, &target),
    }
}

/// Tells the others in the room, and answers the moderator the same way.
fn announce(host: &dyn Host, moderator: &ClientInfo, room: &str, event: &str) -> Outcome {
    let data = json!({ "roomId": room });
    host.broadcast(room, event, &data.to_string(), Some(&moderator.id));
    Outcome::reply(event, &data)
}

fn kick(host: &dyn Host, moderator: &ClientInfo, room: &str, target: &str) -> Outcome {
    let target_room = match host.client_info(target) {
        Some(info) if target != moderator.id => info.room,
        _ => None,
    };
    if target_room.as_deref() != Some(room) {
        return Outcome::reject(ErrorCode::PeerNotFound, "no such peer in your room");
    }
    host.kick(target, KICK_REASON);
    Outcome::reply(
        "room:kicked",
        &json!({ "roomId": room, "clientId": target }),
    )
}

fn is_locked(host: &dyn Host, room: &str) -> bool {
    host.kv_get(room, LOCKED_KEY).is_some()
}

switchboard_sdk::export_plugin!(Moderation);

#[cfg(test)]
mod tests;
