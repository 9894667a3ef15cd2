//! The frames the membership table's changes send to a room's other
//! members. Plugins' `join-room` and `leave-room` and a disconnect all
//! announce a change with these, so every path writes the same bytes.

use serde::Serialize;

use super::hub::Peer;
use crate::envelope::{self, Frame};
use crate::ids::{ClientId, RoomId};
use crate::vocab::event;

/// `room:peer-joined` for the other members.
pub(crate) fn peer_joined(room: &RoomId, peer: &Peer) -> Frame {
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(rename = "roomId")]
        room_id: &'a str,
        peer: &'a Peer,
    }
    envelope::frame(
        event::ROOM_PEER_JOINED,
        None,
        &Data {
            room_id: room.as_str(),
            peer,
        },
    )
}

/// `room:peer-left` for the other members; `reason` is `left` or
/// `disconnected`.
pub(crate) fn peer_left(room: &RoomId, id: ClientId, reason: &str) -> Frame {
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(rename = "roomId")]
        room_id: &'a str,
        #[serde(rename = "clientId")]
        client_id: String,
        reason: &'a str,
    }
    let data = Data {
        room_id: room.as_str(),
        client_id: id.to_string(),
        reason,
    };
    envelope::frame(event::ROOM_PEER_LEFT, None, &data)
}
