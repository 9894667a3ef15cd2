//! The example custom event: `chat:message`.
//!
//! A member of a room sends `chat:message` `{"text": string(1..2000)}`; the
//! other members get `chat:message` `{"from": <sender's client id>, "text"}`
//! and the sender gets nothing back. Outside a room it is `NOT_IN_ROOM`.
//!
//! The host validates `data` against the declared schema but does not drop
//! unknown fields of custom events, so only `text` is ever forwarded.
//!
//! Config: `{"max_chars": n}`, 1..=2000 (default 2000). It can only lower
//! the schema's limit, because the schema is declared before any config is
//! read. A longer text is `INVALID_MESSAGE` "text longer than n
//! characters"; characters are Unicode scalar values, as everywhere in the
//! protocol. Like a schema failure, it is checked before room membership.

use serde::Deserialize;
use serde_json::json;
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

const EVENT: &str = "chat:message";

/// The `maxLength` of `text` in the declared schema.
const SCHEMA_MAX_CHARS: usize = 2000;

pub struct Chat {
    max_chars: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    max_chars: Option<usize>,
}

/// The part of `chat:message` data this plugin defines.
#[derive(Deserialize)]
struct Message {
    text: String,
}

impl Plugin for Chat {
    fn describe() -> Descriptor {
        Descriptor {
            name: "chat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![EventDecl {
                name: EVENT.into(),
                schema: Some(schema()),
            }],
            hooks: vec![],
        }
    }

    fn new(config: &str) -> Result<Self, String> {
        let config: Config =
            serde_json::from_str(config).map_err(|e| format!("chat config: {e}"))?;
        match config.max_chars {
            Some(n @ 1..=SCHEMA_MAX_CHARS) => Ok(Chat { max_chars: n }),
            None => Ok(Chat {
                max_chars: SCHEMA_MAX_CHARS,
            }),
            Some(n) => Err(format!(
                "chat config: `max_chars` must be between 1 and {SCHEMA_MAX_CHARS}, not {n}"
            )),
        }
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if event != EVENT {
            return Outcome::Pass;
        }
        match self.text(data) {
            Ok(text) => post(host, client, text),
            Err(message) => Outcome::reject(ErrorCode::InvalidMessage, message),
        }
    }
}

impl Chat {
    fn text(&self, data: &str) -> Result<String, String> {
        let message: Message = serde_json::from_str(data).map_err(|e| format!("{EVENT}: {e}"))?;
        if message.text.chars().count() > self.max_chars {
            return Err(format!("text longer than {} characters", self.max_chars));
        }
        Ok(message.text)
    }
}

fn post(host: &dyn Host, sender: &ClientInfo, text: String) -> Outcome {
    let Some(room) = &sender.room else {
        return Outcome::reject(ErrorCode::NotInRoom, "not in a room");
    };
    let data = json!({ "from": sender.id, "text": text });
    host.broadcast(room, EVENT, &data.to_string(), Some(&sender.id));
    Outcome::Handled
}

fn schema() -> String {
    json!({
        "type": "object",
        "properties": {
            "text": { "type": "string", "minLength": 1, "maxLength": SCHEMA_MAX_CHARS },
        },
        "required": ["text"],
    })
    .to_string()
}

switchboard_sdk::export_plugin!(Chat);

#[cfg(test)]
mod tests;
