//! A test plugin that makes the host calls a script names and answers with
//! what each returned, so that one scenario runs against the real host
//! (the end-to-end test `host_parity`) and against `TestHost` alike, and
//! the two can be compared.
//!
//! `script:run` `{"steps": [step, ...]}` makes each step's call in order
//! and answers `script:result` `{"results": [...]}`, one JSON value per
//! step:
//!
//! | `call` | other fields | result |
//! |---|---|---|
//! | `join_room` | `client`, `room`, `metadata`? (JSON text, default `{}`) | `{"ok": [Peer]}` or `{"err": CODE}` |
//! | `leave_room` | `client` | the room left, or `null` |
//! | `room_members` | `room` | `[Peer]` |
//! | `client_info` | `client` | `{"id", "userId", "role", "roomClaim", "room"}` or `null` |
//! | `kv_get` | `room`, `key` | the value or `null` |
//! | `kv_set` | `room`, `key`, `value` | `null` |
//! | `kv_delete` | `room`, `key` | `null` |
//! | `send` | `client`, `event`, `data` (JSON text) | `null` |
//! | `broadcast` | `room`, `event`, `data` (JSON text), `except`? | `null` |
//! | `set_timer` | `room`, `delay_ms`, `tag` | `null` |
//! | `kick` | `client`, `reason` | `null` |
//!
//! Arguments go to the host as they are, invalid ones included: that is
//! what the script is for. A timer it set fires as `script:timer`
//! `{"room"}` sent to the client its tag names.

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Hook, Host, Outcome, Plugin};

pub const RUN: &str = "script:run";
pub const RESULT: &str = "script:result";
pub const TIMER: &str = "script:timer";

pub struct Script;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(tag = "call", rename_all = "snake_case", deny_unknown_fields)]
enum Step {
    JoinRoom {
        client: String,
        room: String,
        #[serde(default = "empty_object")]
        metadata: String,
    },
    LeaveRoom {
        client: String,
    },
    RoomMembers {
        room: String,
    },
    ClientInfo {
        client: String,
    },
    KvGet {
        room: String,
        key: String,
    },
    KvSet {
        room: String,
        key: String,
        value: String,
    },
    KvDelete {
        room: String,
        key: String,
    },
    Send {
        client: String,
        event: String,
        data: String,
    },
    Broadcast {
        room: String,
        event: String,
        data: String,
        except: Option<String>,
    },
    SetTimer {
        room: String,
        delay_ms: u32,
        tag: String,
    },
    Kick {
        client: String,
        reason: String,
    },
}

fn empty_object() -> String {
    "{}".to_owned()
}

impl Plugin for Script {
    fn describe() -> Descriptor {
        let schema = json!({
            "type": "object",
            "properties": { "steps": { "type": "array", "items": { "type": "object" } } },
            "required": ["steps"],
        });
        Descriptor {
            name: "script".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![EventDecl {
                name: RUN.into(),
                schema: Some(schema.to_string()),
            }],
            hooks: vec![Hook::Timer],
        }
    }

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Script)
    }

    fn on_event(&self, host: &dyn Host, _client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if event != RUN {
            return Outcome::Pass;
        }
        match serde_json::from_str::<Run>(data) {
            Ok(run) => {
                let results: Vec<Value> = run.steps.into_iter().map(|s| s.run(host)).collect();
                Outcome::reply(RESULT, &json!({ "results": results }))
            }
            Err(e) => Outcome::reject(ErrorCode::InvalidMessage, format!("{RUN}: {e}")),
        }
    }

    fn on_timer(&self, host: &dyn Host, room: &str, tag: &str) {
        host.send(tag, TIMER, &json!({ "room": room }).to_string());
    }
}

impl Step {
    fn run(self, host: &dyn Host) -> Value {
        match self {
            Step::JoinRoom {
                client,
                room,
                metadata,
            } => match host.join_room(&client, &room, &metadata) {
                Ok(peers) => json!({ "ok": peers }),
                Err(code) => json!({ "err": code }),
            },
            Step::LeaveRoom { client } => json!(host.leave_room(&client)),
            Step::RoomMembers { room } => json!(host.room_members(&room)),
            Step::ClientInfo { client } => host.client_info(&client).map_or(Value::Null, |c| {
                json!({
                    "id": c.id,
                    "userId": c.user_id,
                    "role": c.role,
                    "roomClaim": c.room_claim,
                    "room": c.room,
                })
            }),
            Step::KvGet { room, key } => json!(host.kv_get(&room, &key)),
            Step::KvSet { room, key, value } => {
                host.kv_set(&room, &key, &value);
                Value::Null
            }
            Step::KvDelete { room, key } => {
                host.kv_delete(&room, &key);
                Value::Null
            }
            Step::Send {
                client,
                event,
                data,
            } => {
                host.send(&client, &event, &data);
                Value::Null
            }
            Step::Broadcast {
                room,
                event,
                data,
                except,
            } => {
                host.broadcast(&room, &event, &data, except.as_deref());
                Value::Null
            }
            Step::SetTimer {
                room,
                delay_ms,
                tag,
            } => {
                host.set_timer(&room, delay_ms, &tag);
                Value::Null
            }
            Step::Kick { client, reason } => {
                host.kick(&client, &reason);
                Value::Null
            }
        }
    }
}

switchboard_sdk::export_plugin!(Script);

#[cfg(test)]
mod tests {
    use switchboard_sdk::testing::{TestHost, reply};

    use super::*;

    fn run(host: &TestHost, steps: Value) -> Value {
        let data = json!({ "steps": steps }).to_string();
        let (event, data) = reply(Script.on_event(host, &host.client("c1"), RUN, &data));
        assert_eq!(event, RESULT);
        data["results"].clone()
    }

    #[test]
    fn each_step_answers_with_what_its_call_returned() {
        let host = TestHost::new();
        host.add_client("c1", "alice");
        let results = run(
            &host,
            json!([
                { "call": "join_room", "client": "c1", "room": "r", "metadata": r#"{"n":1}"# },
                { "call": "join_room", "client": "c1", "room": "s" },
                { "call": "kv_set", "room": "r", "key": "k", "value": "v" },
                { "call": "kv_get", "room": "r", "key": "k" },
                { "call": "room_members", "room": "r" },
                { "call": "client_info", "client": "nobody" },
                { "call": "leave_room", "client": "c1" },
            ]),
        );
        let alice = json!({ "clientId": "c1", "userId": "alice", "metadata": { "n": 1 } });
        assert_eq!(
            results,
            json!([{ "ok": [] }, { "err": "ALREADY_IN_ROOM" }, null, "v", [alice], null, "r"])
        );
    }

    #[test]
    fn a_timer_tells_the_client_its_tag_names() {
        let host = TestHost::with_members(&[("c1", Some("r"))]);
        run(
            &host,
            json!([{ "call": "set_timer", "room": "r", "delay_ms": 5, "tag": "c1" }]),
        );
        let timer = &host.timers()[0];
        Script.on_timer(&host, &timer.room, &timer.tag);
        assert_eq!(
            host.sent_to("c1"),
            [(TIMER.to_owned(), json!({ "room": "r" }))]
        );
    }

    #[test]
    fn other_events_pass() {
        let host = TestHost::with_members(&[("c1", None)]);
        let outcome = Script.on_event(&host, &host.client("c1"), "script:other", "{}");
        assert_eq!(outcome, Outcome::Pass);
    }
}
