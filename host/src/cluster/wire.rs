//! What nodes say to each other on their channels: batches of [`Message`]
//! as one JSON array per `PUBLISH`. Frames travel as raw JSON (they are
//! JSON already), so forwarding one costs a copy, not an escape.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::envelope::Frame;
use crate::ids::{ClientId, RoomId};
use crate::state::Identity;
use crate::vocab::CloseCode;

use super::NodeId;

/// One thing one node asks of another. Externally tagged: an internally
/// tagged enum buffers its fields, which a `RawValue` cannot survive.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Message {
    /// Edge to owner: handle this message from a client of the edge.
    Event {
        #[serde(with = "client_id")]
        client: ClientId,
        edge: NodeId,
        identity: Member,
        text: String,
    },
    /// Edge to owner: the client's session has ended.
    Gone {
        #[serde(with = "client_id")]
        client: ClientId,
    },
    /// Owner to edge: write this frame to the client.
    Frame {
        #[serde(with = "client_id")]
        to: ClientId,
        frame: Box<RawValue>,
    },
    /// Owner to edge: close the client's connection (a kick).
    Close {
        #[serde(with = "client_id")]
        to: ClientId,
        code: u16,
        reason: String,
    },
    /// Owner to edge: the client is in `room` on `owner`, or in no room
    /// there any more (`None`): its next messages are the edge's own.
    Placed {
        #[serde(with = "client_id")]
        client: ClientId,
        #[serde(with = "room_id::optional")]
        room: Option<RoomId>,
        owner: NodeId,
    },
    /// New edge to the node that issued a resume token: hand the session
    /// over (answered with `Handover`).
    Resume {
        token: String,
        /// The resuming connection's own id.
        #[serde(with = "client_id")]
        claimant: ClientId,
        edge: NodeId,
        request: u64,
    },
    /// The answer to `Resume`: the session, or `None` if the token is
    /// unknown, used or expired.
    Handover {
        request: u64,
        session: Option<Handed>,
    },
    /// Old edge to a room's owner: the client is connected to `edge` now.
    Rehome {
        #[serde(with = "client_id")]
        client: ClientId,
        edge: NodeId,
    },
    /// To an edge: the room its client is in or joining is `owner`'s now
    /// (a takeover, or a join that reached a node that no longer owned
    /// the room).
    Moved {
        #[serde(with = "client_id")]
        client: ClientId,
        owner: NodeId,
        /// The room, when the client is a member already (a takeover).
        #[serde(with = "room_id::optional")]
        room: Option<RoomId>,
    },
    /// To the node that writes the recording `id`: a call this node made,
    /// for its file (a `switchboard-recording` call line).
    Recorded { id: u64, call: Box<RawValue> },
}

/// A pending plugin timer in its room's mirror.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TimerRecord {
    pub(crate) plugin: String,
    pub(crate) tag: String,
    /// When it is due, in Unix milliseconds.
    pub(crate) due: u64,
}

/// A session moving to the node where it was resumed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Handed {
    #[serde(with = "client_id")]
    pub(crate) client: ClientId,
    pub(crate) identity: Option<Member>,
    #[serde(with = "room_id::optional")]
    pub(crate) room: Option<RoomId>,
    /// Who owns `room`.
    pub(crate) owner: Option<NodeId>,
    /// What was queued for the client, in order.
    pub(crate) frames: Vec<Box<RawValue>>,
}

/// What the owner needs of a client to run plugins for it, and what a
/// room's member list in Redis keeps of each member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Member {
    #[serde(rename = "userId")]
    pub(crate) user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<String>,
    #[serde(rename = "roomClaim", default, skip_serializing_if = "Option::is_none")]
    pub(crate) room_claim: Option<String>,
}

impl From<&Identity> for Member {
    fn from(identity: &Identity) -> Member {
        Member {
            user_id: identity.user_id.clone(),
            role: identity.role.clone(),
            room_claim: identity.room_claim.clone(),
        }
    }
}

impl From<Member> for Identity {
    fn from(member: Member) -> Identity {
        Identity {
            user_id: member.user_id,
            role: member.role,
            room_claim: member.room_claim,
        }
    }
}

/// A room member as kept in `room:{id}:members` for a takeover: the
/// owner's join order, the edge it is connected to, who it is, and the
/// metadata its peers saw.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Seat {
    pub(crate) seq: u64,
    pub(crate) node: NodeId,
    #[serde(flatten)]
    pub(crate) member: Member,
    pub(crate) metadata: Box<RawValue>,
}

/// A room's members from its mirror (`HGETALL` of its members key), in
/// join order; a seat that does not parse is skipped.
pub(crate) fn seats(mirror: HashMap<u64, String>) -> Vec<(ClientId, Seat)> {
    let mut seats: Vec<(ClientId, Seat)> = mirror
        .into_iter()
        .filter_map(|(id, seat)| Some((ClientId::from_u64(id), serde_json::from_str(&seat).ok()?)))
        .collect();
    seats.sort_by_key(|(_, seat)| seat.seq);
    seats
}

/// A frame as it travels: frames are JSON text the host wrote itself.
pub(crate) fn raw_frame(frame: &Frame) -> Option<Box<RawValue>> {
    RawValue::from_string(frame.as_str().to_owned()).ok()
}

/// A travelled frame, to queue.
pub(crate) fn frame_of(raw: Box<RawValue>) -> Frame {
    Frame::from(String::from(Box::<str>::from(raw)))
}

impl Message {
    /// A frame for `to`.
    pub(crate) fn frame(to: ClientId, frame: &Frame) -> Option<Message> {
        Some(Message::Frame {
            to,
            frame: raw_frame(frame)?,
        })
    }

    pub(crate) fn close(to: ClientId, code: CloseCode, reason: String) -> Message {
        Message::Close {
            to,
            code: code.as_u16(),
            reason,
        }
    }
}

/// Appends `message` to a batch being built as a JSON array.
pub(crate) fn push(batch: &mut Vec<u8>, message: &Message) {
    batch.push(if batch.is_empty() { b'[' } else { b',' });
    // Serializing these types into a Vec cannot fail: every map key is a
    // string and every value serializable.
    let _ = serde_json::to_writer(&mut *batch, message);
}

/// Closes a batch built by [`push`].
pub(crate) fn finish(batch: &mut Vec<u8>) {
    batch.push(b']');
}

pub(crate) fn decode(payload: &[u8]) -> serde_json::Result<Vec<Message>> {
    serde_json::from_slice(payload)
}

/// Client ids as their number: nodes need no hex.
mod client_id {
    use super::ClientId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(id: &ClientId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(id.to_u64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ClientId, D::Error> {
        u64::deserialize(d).map(ClientId::from_u64)
    }
}

/// Room ids, checked again on the way in like any other input.
pub(crate) mod room_id {
    use super::RoomId;
    use serde::{Deserialize, Deserializer, de::Error};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RoomId, D::Error> {
        let text = String::deserialize(d)?;
        RoomId::parse(&text).ok_or_else(|| D::Error::custom("invalid room id"))
    }

    pub(crate) mod optional {
        use super::RoomId;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            room: &Option<RoomId>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match room {
                Some(room) => s.serialize_some(room.as_str()),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<RoomId>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] RoomId);
            Option::<Wrapped>::deserialize(d).map(|room| room.map(|Wrapped(room)| room))
        }
    }
}
