//! `session:resume` as the router sees it (PROTOCOL.md, Session resume):
//! the check that it is well-formed and first, the answers, and making a
//! connection the client whose session it resumed. Claiming the session
//! and moving its queue is the connection task's (`net::connection`).

use serde_json::{Map, Value, json};

use super::reply::Cause;
use super::{Conn, Router, Verdict};
use crate::envelope::{self, ErrorCode, Frame};
use crate::ids::{ClientId, CorrelationId, EventName, RoomId};
use crate::schema;
use crate::session::ResumeToken;
use crate::vocab::event;

impl Router {
    /// Checks a `session:resume`; the connection does the rest.
    pub(super) fn check_resume(
        &self,
        conn: &Conn,
        cause: &Cause,
        data: &Map<String, Value>,
    ) -> Verdict {
        let token = match schema::resume_token(data) {
            Ok(token) => token,
            Err(message) => {
                self.error(conn.id, cause, ErrorCode::InvalidMessage, &message);
                return Verdict::Open;
            }
        };
        if conn.messages > 1 {
            // The token stays valid: a late attempt does not use it up.
            let message = "`session:resume` must be the connection's first message";
            self.error(conn.id, cause, ErrorCode::ResumeFailed, message);
            return Verdict::Open;
        }
        Verdict::Resume {
            token: token.to_owned(),
            cause: cause.id.cloned(),
        }
    }

    pub(crate) fn resume_failed(&self, to: ClientId, id: Option<&CorrelationId>, message: &str) {
        let event = EventName::parse(event::SESSION_RESUME);
        self.send_error(to, ErrorCode::ResumeFailed, message, id, event.as_ref());
    }

    /// `session:resumed` for the connection that resumed `id`.
    pub(crate) fn resumed(
        &self,
        id: ClientId,
        token: &ResumeToken,
        replayed: usize,
        cause: Option<&CorrelationId>,
    ) -> Frame {
        let room = self.hub.client_info(id).and_then(|info| info.room);
        let data = json!({
            "clientId": id.to_string(),
            "roomId": room.as_ref().map(RoomId::as_str),
            "replayed": replayed,
            "resumeToken": token.as_str(),
        });
        envelope::frame(event::SESSION_RESUMED, cause, &data)
    }

    /// Makes `conn` the client `id`, whose session it resumed (and which
    /// has its new token): it is authenticated as that session was.
    pub(crate) fn adopt(&self, conn: &mut Conn, id: ClientId) {
        let identity = self.hub.client_info(id).and_then(|info| info.identity);
        self.enter_directory(id);
        conn.id = id;
        conn.authenticated = identity.is_some();
        conn.identity = identity;
    }
}
