//! `{{name}}:echo`: a member of a room sends `{"text"}` and gets it back as
//! the reply `{{name}}:echo` `{"text", "room"}`; outside a room it is
//! `NOT_IN_ROOM`. Replace it with your own policy.

use serde::Deserialize;
use serde_json::json;
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

pub const EVENT: &str = "{{name}}:echo";

pub struct Echo;

/// The part of the event's data this plugin defines; the host checked it
/// against the schema, but unknown fields may be there too.
#[derive(Deserialize)]
struct Message {
    text: String,
}

impl Plugin for Echo {
    fn describe() -> Descriptor {
        Descriptor {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            // A custom event comes with the JSON Schema the host checks
            // `data` against before any plugin runs.
            events: vec![EventDecl {
                name: EVENT.into(),
                schema: Some(
                    json!({
                        "type": "object",
                        "properties": { "text": { "type": "string", "minLength": 1, "maxLength": 500 } },
                        "required": ["text"],
                    })
                    .to_string(),
                ),
            }],
            hooks: vec![],
        }
    }

    /// One instance from the JSON text of its config table; an `Err`
    /// refuses it. Keep state that must outlive a call in room storage
    /// (`host.kv_set`), not here.
    fn new(_config: &str) -> Result<Self, String> {
        Ok(Echo)
    }

    fn on_event(&self, _host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if event != EVENT {
            return Outcome::Pass;
        }
        let Some(room) = &client.room else {
            return Outcome::reject(ErrorCode::NotInRoom, "not in a room");
        };
        match serde_json::from_str::<Message>(data) {
            Ok(Message { text }) => Outcome::reply(EVENT, &json!({ "text": text, "room": room })),
            Err(e) => Outcome::reject(ErrorCode::InvalidMessage, e.to_string()),
        }
    }
}

switchboard_sdk::export_plugin!(Echo);

#[cfg(test)]
mod tests;
