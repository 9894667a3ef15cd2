//! The lines of a recording file, and reading one back.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{Decision, FORMAT_VERSION, REDACTED};

/// One line of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Line {
    Header(Header),
    Call(Box<Call>),
    End(End),
}

/// What was recorded, and with which plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// Unix milliseconds.
    pub started_at: u64,
    pub rooms: Vec<String>,
    /// The chain live when the recording started, in order.
    pub chain: Vec<Entry>,
}

/// A chain entry as it ran: enough to start the same version again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The chain's name for it, which its storage is keyed by.
    pub name: String,
    /// Its own version string (`describe`).
    pub version: String,
    /// SHA-256 of the component, hex.
    pub hash: String,
    /// The JSON text its `init` got.
    pub config: String,
    /// The names of the environment variables it may read; their values
    /// (secrets, often) are not recorded.
    pub env: Vec<String>,
}

/// One plugin call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    /// 1 for the file's first call, and on.
    pub seq: u64,
    pub room: String,
    /// The chain entry called.
    pub entry: String,
    /// The version that was called (a canary's differs from the header's).
    pub hash: String,
    pub input: Input,
    pub view: View,
    pub decision: Decision,
}

/// The last line, written when the recording is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Unix milliseconds.
    pub ended_at: u64,
    /// Calls written.
    pub calls: u64,
    /// Calls made on recorded rooms that are not in the file: the writer
    /// fell behind and its queue was full.
    pub dropped: u64,
}

/// What the plugin was asked: one export of the WIT's `guest` interface
/// and its arguments, externally tagged by the hook (`{"event": {...}}`):
/// an internal tag would have serde buffer the data, which a `RawValue`
/// cannot come through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    Event {
        client: Client,
        event: String,
        /// The JSON text the plugin got, exactly.
        data: Box<RawValue>,
    },
    Relay {
        /// `sdp:offer`, `sdp:answer` or `ice:candidate`.
        event: String,
        sender: String,
        target: Option<String>,
        same_room: bool,
        /// What `relay-data` returned.
        data: Box<RawValue>,
    },
    Auth {
        client: Client,
        /// Always [`REDACTED`] in a file.
        token: String,
        room_id: Option<String>,
    },
    Connect {
        client: Client,
    },
    Disconnect {
        client: Client,
    },
    Timer {
        room: String,
        tag: String,
    },
}

impl Input {
    /// Whether a credential was cut out of it, so that another run of it is
    /// not the call that was made.
    pub fn is_redacted(&self) -> bool {
        matches!(self, Input::Auth { token, .. } if token == REDACTED)
    }

    /// This input with its credentials replaced by [`REDACTED`].
    pub fn redacted(mut self) -> Input {
        if let Input::Auth { token, .. } = &mut self {
            *token = REDACTED.to_owned();
        }
        self
    }
}

/// The call, in a few words: `chat:message from 00ab…`.
impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Event { client, event, .. } => write!(f, "{event} from {}", client.id),
            Input::Relay {
                event,
                sender,
                target,
                ..
            } => {
                let target = target.as_deref().unwrap_or("(no client)");
                write!(f, "{event} from {sender} to {target}")
            }
            Input::Auth { client, .. } => write!(f, "auth of {}", client.id),
            Input::Connect { client } => write!(f, "connect of {}", client.id),
            Input::Disconnect { client } => write!(f, "disconnect of {}", client.id),
            Input::Timer { room, tag } => write!(f, "timer {tag:?} of room {room}"),
        }
    }
}

/// A connection as a plugin sees it (the WIT's `client-info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub room_claim: Option<String>,
    #[serde(default)]
    pub room: Option<String>,
}

/// What the call could see of the server just before it ran: enough to
/// answer its reads (`room-members`, `lookup-client`, `kv-get`, `now`) and
/// to decide its writes (`join-room` and the room limit) as the server
/// did. Rooms other than the call's are not in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Unix milliseconds; what `now` returns throughout the call.
    pub now: u64,
    /// `limits.max_rooms`.
    pub max_rooms: usize,
    /// Rooms open on the server, the call's included.
    pub open_rooms: usize,
    /// The caller, the room's members, a relay's target.
    pub clients: Vec<Client>,
    /// The call's room; `None` when it was not open.
    pub room: Option<RoomView>,
}

/// One room, with the calling entry's storage in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    pub id: String,
    /// Oldest first.
    pub members: Vec<Member>,
    pub kv: BTreeMap<String, String>,
}

/// A room member (PROTOCOL.md's `Peer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub client_id: String,
    pub user_id: String,
    pub metadata: Value,
}

/// A recording file, read whole.
#[derive(Debug, Clone)]
pub struct Recording {
    pub header: Header,
    pub calls: Vec<Call>,
    /// `None` when the file ends without one (the server stopped while
    /// recording, or it is still being written).
    pub end: Option<End>,
}

/// Why a file is not a recording this reader can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError(String);

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

impl Recording {
    pub fn read(path: impl AsRef<Path>) -> Result<Recording, ReadError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .map_err(|e| ReadError(format!("reading {}: {e}", path.display())))?;
        Recording::from_reader(std::io::BufReader::new(file))
            .map_err(|ReadError(e)| ReadError(format!("{}: {e}", path.display())))
    }

    pub fn from_reader(reader: impl BufRead) -> Result<Recording, ReadError> {
        let mut lines = reader.lines().enumerate();
        let header = match lines.next() {
            Some((_, Ok(text))) => match serde_json::from_str(&text) {
                Ok(Line::Header(header)) => header,
                _ => {
                    return Err(ReadError(
                        "not a Switchboard recording: its first line is not a header".into(),
                    ));
                }
            },
            Some((_, Err(e))) => return Err(ReadError(format!("line 1: {e}"))),
            None => return Err(ReadError("empty file: not a Switchboard recording".into())),
        };
        if header.format != FORMAT_VERSION {
            return Err(ReadError(format!(
                "recording format {} (this reader reads format {FORMAT_VERSION})",
                header.format
            )));
        }
        let mut recording = Recording {
            header,
            calls: Vec::new(),
            end: None,
        };
        for (at, text) in lines {
            let number = at + 1;
            let text = text.map_err(|e| ReadError(format!("line {number}: {e}")))?;
            if recording.end.is_some() {
                return Err(ReadError(format!("line {number}: a line after the end")));
            }
            match serde_json::from_str(&text) {
                Ok(Line::Call(call)) => recording.calls.push(*call),
                Ok(Line::End(end)) => recording.end = Some(end),
                Ok(Line::Header(_)) => {
                    return Err(ReadError(format!("line {number}: a second header")));
                }
                Err(e) => return Err(ReadError(format!("line {number}: {e}"))),
            }
        }
        Ok(recording)
    }

    /// The header's entry of that name.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.header.chain.iter().find(|entry| entry.name == name)
    }
}
