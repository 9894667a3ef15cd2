//! `auth:request` (PROTOCOL.md, Auth): the auth hooks of the chain decide,
//! the third failure on one connection closes it (4003), and a later
//! success refreshes the claims only for the same user.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::reply::Cause;
use super::{Conn, Router, Verdict};
use crate::envelope::ErrorCode;
use crate::ids::RoomId;
use crate::plugins::{AuthOutcome, Called, Chain};
use crate::record::input;
use crate::schema::AuthRequest;
use crate::state::Identity;
use crate::vocab::{CloseCode, event};

/// Failed auth attempts after which a connection is closed (4003).
const MAX_AUTH_FAILURES: u32 = 3;

impl Router {
    pub(super) fn authenticate(
        &self,
        chain: &Chain,
        conn: &mut Conn,
        cause: &Cause,
        data: &Map<String, Value>,
    ) -> Verdict {
        let auth_plugins: Vec<_> = chain.with_hook(|p| p.descriptor.hooks.auth).collect();
        if auth_plugins.is_empty() {
            let message = "no plugin handles authentication";
            self.error(conn.id, cause, ErrorCode::UnknownEvent, message);
            return Verdict::Open;
        }
        let request = match AuthRequest::parse(data) {
            Ok(request) => request,
            Err(message) => {
                self.error(conn.id, cause, ErrorCode::InvalidMessage, &message);
                return Verdict::Open;
            }
        };
        let Some(info) = self.hub.client_info(conn.id) else {
            return Verdict::Open;
        };
        // Recorded with the client's room, or the room it asks to be
        // allowed into.
        let room = info.room.clone();
        let room = room.or_else(|| request.room_id.as_deref().and_then(RoomId::parse));
        let tap = self.tap(room.as_ref());
        let (token, room_id) = (&request.token, request.room_id.as_deref());
        let mut effects = Vec::new();
        let mut decision = AuthOutcome::Pass;
        for plugin in auth_plugins {
            let input = || input::auth(&info, token, room_id);
            let live = || plugin.on_auth(&info, token, room_id);
            match self.call(tap.as_ref(), plugin, input, live) {
                Ok(Called {
                    value: AuthOutcome::Pass,
                    effects: e,
                }) => effects.extend(e),
                Ok(Called { value, effects: e }) => {
                    effects.extend(e);
                    decision = value;
                    break;
                }
                Err(fault) => {
                    self.plugin_error(conn.id, cause, &fault);
                    return Verdict::Open;
                }
            }
        }
        let verdict = match decision {
            AuthOutcome::Accept(identity) => self.accept_identity(conn, cause, identity),
            AuthOutcome::Reject(reason) => self.auth_failed(conn, cause, &reason),
            AuthOutcome::Pass => self.auth_failed(conn, cause, "no auth plugin accepted the token"),
        };
        self.apply(effects);
        verdict
    }

    fn accept_identity(&self, conn: &mut Conn, cause: &Cause, identity: Identity) -> Verdict {
        if let Some(current) = &conn.identity
            && conn.authenticated
            && current.user_id != identity.user_id
        {
            let reason = "the token is for another user than this connection's";
            return self.auth_failed(conn, cause, reason);
        }
        let data = json!({ "success": true, "userId": identity.user_id });
        let identity = Arc::new(identity);
        self.hub.set_identity(conn.id, Arc::clone(&identity));
        if let Some(link) = &self.link {
            link.authenticated(conn.id, &identity);
        }
        conn.identity = Some(identity);
        conn.authenticated = true;
        self.reply(conn.id, cause, event::AUTH_RESPONSE, &data);
        Verdict::Open
    }

    fn auth_failed(&self, conn: &mut Conn, cause: &Cause, reason: &str) -> Verdict {
        conn.auth_failures += 1;
        self.metrics.errors.inc(ErrorCode::AuthFailed.as_str());
        let data = json!({ "success": false, "error": { "code": ErrorCode::AuthFailed, "message": reason } });
        self.reply(conn.id, cause, event::AUTH_RESPONSE, &data);
        tracing::info!(client = %conn.id, failures = conn.auth_failures, "auth failed: {reason}");
        if conn.auth_failures >= MAX_AUTH_FAILURES {
            return Verdict::Close(CloseCode::AuthFailures, "too many failed auth attempts");
        }
        Verdict::Open
    }
}
