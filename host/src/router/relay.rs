//! Delivering a relayed event (PROTOCOL.md, Signaling relay): the target
//! gets it with `to` replaced by `from`; a target that is not connected is
//! `PEER_NOT_FOUND` to the sender.

use serde_json::Value;

use super::Router;
use super::reply::Cause;
use crate::envelope::{self, ErrorCode};
use crate::ids::ClientId;
use crate::net::Outbound;
use crate::schema::Normalized;

impl Router {
    pub(super) fn relay(
        &self,
        from: ClientId,
        cause: &Cause,
        target: Option<ClientId>,
        data: Normalized,
    ) {
        let Some(target) = target else {
            return self.error(from, cause, ErrorCode::PeerNotFound, "no such peer");
        };
        let frame = match data {
            Normalized::Relay(relay) => relay.frame(from),
            // A custom event a plugin chose to relay.
            Normalized::Object(mut object) => {
                if let Some(fields) = object.as_object_mut() {
                    fields.remove("to");
                    fields.insert("from".into(), Value::String(from.to_string()));
                }
                envelope::frame_json(cause.event, None, &object.to_string())
            }
        };
        if !self.hub.send(target, Outbound::Frame(frame)) {
            self.error(from, cause, ErrorCode::PeerNotFound, "no such peer");
        }
    }
}
