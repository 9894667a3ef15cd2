//! A test plugin for hot swap. Built three times from this one source:
//! without features it is version 1.0.0 and stamps messages `"a"`; with
//! the `v2` feature it is 2.0.0 and stamps them `"b"`; with `flaky` it is
//! 3.0.0, stamps them `"c"` and traps on every message whose `seq` is a
//! multiple of 20 (a version failing 5% of its calls, for error
//! budgets). Nothing else differs, so a test that swaps one for another
//! sees exactly which version handled each message, and that the room's
//! counter, kept in host storage, runs on across the swap.
//!
//! `stamp:msg` `{"to": clientId, "seq": int >= 0}` from a room member goes
//! to `to`, another member of the same room, as `stamp:msg`
//! `{"from", "seq", "version": "a" | "b", "count"}`, where `count` is how
//! many `stamp:msg` the room has carried, this one included. The sender
//! gets nothing back. Errors: `NOT_IN_ROOM`, then `PEER_NOT_FOUND` (`to` is
//! unknown, the sender itself, or in another room).

use serde::Deserialize;
use serde_json::json;
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

const EVENT: &str = "stamp:msg";
const COUNT_KEY: &str = "count";

const VERSION: &str = if cfg!(feature = "flaky") {
    "3.0.0"
} else if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};
/// What the receiver sees as `version`.
const MARK: &str = if cfg!(feature = "flaky") {
    "c"
} else if cfg!(feature = "v2") {
    "b"
} else {
    "a"
};

pub struct Stamp;

#[derive(Deserialize)]
struct Msg {
    to: String,
    seq: u64,
}

impl Plugin for Stamp {
    fn describe() -> Descriptor {
        let schema = json!({
            "type": "object",
            "properties": {
                "to": { "type": "string", "minLength": 1 },
                "seq": { "type": "integer", "minimum": 0 },
            },
            "required": ["to", "seq"],
        });
        Descriptor {
            name: "stamp".into(),
            version: VERSION.into(),
            events: vec![EventDecl {
                name: EVENT.into(),
                schema: Some(schema.to_string()),
            }],
            hooks: vec![],
        }
    }

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Stamp)
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if event != EVENT {
            return Outcome::Pass;
        }
        match serde_json::from_str::<Msg>(data) {
            // Before anything is stored: the count runs on without it.
            Ok(msg) if cfg!(feature = "flaky") && msg.seq % 20 == 0 => {
                panic!("stamp 3.0.0 fails on seq {}", msg.seq)
            }
            Ok(msg) => deliver(host, client, msg),
            Err(e) => Outcome::reject(ErrorCode::InvalidMessage, format!("{EVENT}: {e}")),
        }
    }
}

fn deliver(host: &dyn Host, sender: &ClientInfo, msg: Msg) -> Outcome {
    let Some(room) = &sender.room else {
        return Outcome::reject(ErrorCode::NotInRoom, "not in a room");
    };
    let target_room = match host.client_info(&msg.to) {
        Some(target) if msg.to != sender.id => target.room,
        _ => None,
    };
    if target_room.as_ref() != Some(room) {
        return Outcome::reject(ErrorCode::PeerNotFound, "no such peer in your room");
    }
    let count = bump_count(host, room);
    let stamped = json!({ "from": sender.id, "seq": msg.seq, "version": MARK, "count": count });
    host.send(&msg.to, EVENT, &stamped.to_string());
    Outcome::Handled
}

/// Counts one more message in the room's storage and returns the new count.
fn bump_count(host: &dyn Host, room: &str) -> u64 {
    // Only this plugin writes the key, so anything unreadable means absent.
    let count = host
        .kv_get(room, COUNT_KEY)
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    host.kv_set(room, COUNT_KEY, &count.to_string());
    count
}

switchboard_sdk::export_plugin!(Stamp);

#[cfg(test)]
mod tests;
