//! What one plugin call decided, comparable and printable: its outcome and
//! everything it asked of the host on the way, in order.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One call's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Ruling,
    /// What the call queued (sends, broadcasts, kicks, timers) and the
    /// changes it made to rooms (joins, leaves, storage), in the order it
    /// asked, as it asked.
    pub effects: Vec<Step>,
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ruling {
    /// Not mine: the next plugin decides (any hook that decides).
    Pass,
    Reply {
        event: String,
        data: Value,
    },
    /// `on-event`'s relay; `to` is `None` when the plugin named no client
    /// id at all.
    Relay {
        to: Option<String>,
    },
    /// `on-relay`'s deliver.
    Deliver,
    Reject {
        code: String,
        message: String,
    },
    Handled,
    /// `on-auth` accepted the token as this identity.
    Accept {
        user_id: String,
        role: Option<String>,
        room_claim: Option<String>,
    },
    /// `on-auth` refused the token.
    Refuse {
        reason: String,
    },
    /// A hook that returns nothing (connect, disconnect, timer) returned.
    Done,
    /// The call trapped, ran out of time or memory, or broke the contract.
    Fault {
        reason: String,
    },
}

/// One thing a call asked of the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    Send {
        to: String,
        event: String,
        data: Value,
    },
    /// `to`: the members it went to, chosen when it was asked.
    Broadcast {
        room: String,
        event: String,
        data: Value,
        except: Option<String>,
        to: Vec<String>,
    },
    Kick {
        client: String,
        reason: String,
    },
    Timer {
        room: String,
        delay_ms: u32,
        tag: String,
    },
    /// `refused`: the error code `join-room` returned, if it did.
    JoinRoom {
        client: String,
        room: String,
        metadata: Value,
        refused: Option<String>,
    },
    /// `left`: the room it left, if it was in one.
    LeaveRoom {
        client: String,
        left: Option<String>,
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
}

impl Decision {
    /// Whether two runs decided alike: the same outcome and the same
    /// steps. Two faults are alike whatever their reasons (which name
    /// times and addresses).
    pub fn same_as(&self, other: &Decision) -> bool {
        match (&self.outcome, &other.outcome) {
            (Ruling::Fault { .. }, Ruling::Fault { .. }) => true,
            _ => self == other,
        }
    }

    /// A faulted call's decision.
    pub fn fault(reason: impl Into<String>, effects: Vec<Step>) -> Decision {
        Decision {
            outcome: Ruling::Fault {
                reason: reason.into(),
            },
            effects,
        }
    }
}

/// `reply room:joined {...}; then kv-set r1 "k" = "v", send ...`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.outcome)?;
        for (n, step) in self.effects.iter().enumerate() {
            f.write_str(if n == 0 { "; then " } else { ", " })?;
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ruling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ruling::Pass => f.write_str("pass"),
            Ruling::Reply { event, data } => write!(f, "reply {event} {data}"),
            Ruling::Relay { to: Some(to) } => write!(f, "relay to {to}"),
            Ruling::Relay { to: None } => f.write_str("relay to no client"),
            Ruling::Deliver => f.write_str("deliver"),
            Ruling::Reject { code, message } => write!(f, "reject {code} {message:?}"),
            Ruling::Handled => f.write_str("handled"),
            Ruling::Accept {
                user_id,
                role,
                room_claim,
            } => {
                write!(f, "accept {user_id:?}")?;
                if let Some(role) = role {
                    write!(f, " role {role:?}")?;
                }
                if let Some(room) = room_claim {
                    write!(f, " room claim {room:?}")?;
                }
                Ok(())
            }
            Ruling::Refuse { reason } => write!(f, "refuse {reason:?}"),
            Ruling::Done => f.write_str("done"),
            Ruling::Fault { reason } => write!(f, "fault ({reason})"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send { to, event, data } => write!(f, "send {event} {data} to {to}"),
            Step::Broadcast {
                room,
                event,
                data,
                to,
                ..
            } => write!(
                f,
                "broadcast {event} {data} in {room} to [{}]",
                to.join(", ")
            ),
            Step::Kick { client, reason } => write!(f, "kick {client} {reason:?}"),
            Step::Timer {
                room,
                delay_ms,
                tag,
            } => write!(f, "timer {tag:?} in {room} after {delay_ms} ms"),
            Step::JoinRoom {
                client,
                room,
                refused,
                ..
            } => match refused {
                None => write!(f, "join {client} to {room}"),
                Some(code) => write!(f, "join {client} to {room} (refused: {code})"),
            },
            Step::LeaveRoom { client, left } => match left {
                Some(room) => write!(f, "leave {client} from {room}"),
                None => write!(f, "leave {client} (in no room)"),
            },
            Step::KvSet { room, key, value } => write!(f, "kv-set {room} {key:?} = {value:?}"),
            Step::KvDelete { room, key } => write!(f, "kv-delete {room} {key:?}"),
        }
    }
}
