//! Replies and errors to the connection a message came from. Every `error`
//! message goes out through [`Router::send_error`], so each is counted.

use serde::Serialize;

use super::Router;
use crate::envelope::{self, ErrorCode};
use crate::ids::{ClientId, CorrelationId, EventName};
use crate::net::Outbound;
use crate::plugins::PluginFault;

/// The message being handled, for replies and logs.
pub(super) struct Cause<'a> {
    pub(super) id: Option<&'a CorrelationId>,
    pub(super) event: &'a EventName,
}

impl Router {
    /// Answers a message over the rate limit (step 2 of the order of
    /// checks): it is not parsed, so the error has no `id` or `event`.
    pub(crate) fn rate_limited(&self, id: ClientId) {
        self.metrics.messages_in.inc("rate_limited");
        let message = "too many messages; slow down";
        self.send_error(id, ErrorCode::RateLimited, message, None, None);
    }

    /// Answers a binary frame (step 3 of the order of checks).
    pub(crate) fn binary_frame(&self, id: ClientId) {
        self.metrics.messages_in.inc("binary");
        let message = "binary frames are not supported; send JSON text";
        self.send_error(id, ErrorCode::InvalidMessage, message, None, None);
    }

    pub(super) fn reply(
        &self,
        id: ClientId,
        cause: &Cause,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) {
        let frame = envelope::frame(event, cause.id, data);
        self.hub.send(id, Outbound::Frame(frame));
    }

    pub(super) fn error(&self, id: ClientId, cause: &Cause, code: ErrorCode, message: &str) {
        self.send_error(id, code, message, cause.id, Some(cause.event));
    }

    pub(super) fn send_error(
        &self,
        to: ClientId,
        code: ErrorCode,
        message: &str,
        id: Option<&CorrelationId>,
        event: Option<&EventName>,
    ) {
        self.metrics.errors.inc(code.as_str());
        let frame = envelope::error_frame(code, message, id, event);
        self.hub.send(to, Outbound::Frame(frame));
    }

    pub(super) fn plugin_error(&self, id: ClientId, cause: &Cause, fault: &PluginFault) {
        tracing::warn!(client = %id, event = %cause.event, id = ?cause.id, "{fault}");
        let message = format!("plugin `{}` failed to handle this message", fault.plugin);
        self.error(id, cause, ErrorCode::PluginError, &message);
    }
}
