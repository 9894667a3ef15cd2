//! Cluster mode's entries into the router: messages another node's client
//! sent to a room this node owns, and messages whose room had to be
//! claimed first ([`Verdict::Claim`]).

use std::sync::Arc;

use super::reply::Cause;
use super::{Router, Verdict};
use crate::envelope::{Envelope, ErrorCode};
use crate::ids::ClientId;
use crate::state::{Identity, NodeId};

impl Router {
    /// A message from `client`, connected to `edge`, for a room this node
    /// owns (or one it is joining). The edge has made every check up to
    /// routing; the client is a proxy here for as long as it is in one of
    /// this node's rooms.
    pub(crate) fn forwarded(
        &self,
        client: ClientId,
        edge: &NodeId,
        identity: Arc<Identity>,
        text: &str,
    ) -> Verdict {
        self.hub.register_proxy(client, edge, identity);
        let verdict = self.reroute(client, text);
        if !matches!(verdict, Verdict::Claim(_)) {
            self.hub.drop_proxy_if_roomless(client);
        }
        verdict
    }

    /// Routes a message again once its room has an owner.
    pub(crate) fn reroute(&self, client: ClientId, text: &str) -> Verdict {
        // The edge parsed it already: this cannot fail.
        let Ok(envelope) = Envelope::parse(text) else {
            return Verdict::Open;
        };
        let cause = Cause {
            id: envelope.id.as_ref(),
            event: &envelope.event,
        };
        let live = self.registry.live();
        let span = tracing::debug_span!(
            "message",
            client = %client,
            room = tracing::field::Empty,
            event = %envelope.event,
            id = ?envelope.id,
        );
        let _span = span.enter();
        self.route(live.chains(), client, &cause, envelope.data, text)
    }

    /// Answers a message whose room could not be placed.
    pub(crate) fn refuse(&self, client: ClientId, text: &str, code: ErrorCode, message: &str) {
        if let Ok(envelope) = Envelope::parse(text) {
            self.send_error(
                client,
                code,
                message,
                envelope.id.as_ref(),
                Some(&envelope.event),
            );
        }
        self.hub.drop_proxy_if_roomless(client);
    }
}
