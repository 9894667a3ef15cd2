//! One connection, one task: it drives the socket both ways. Each wake
//! handles every frame already buffered, then moves what is queued for the
//! client into tungstenite's write buffer and flushes once, so a burst
//! costs one read and one write system call, not one per message.

use std::sync::Arc;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::{Instant, interval_at};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Bytes, Error, Message};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};

use crate::hub::Outbox;
use crate::wire::{self, Envelope, RelayIn, RelayOut};
use crate::{HEARTBEAT, Server, jwt, ws_config};

type Socket = WebSocketStream<TcpStream>;

/// Buffered inbound frames handled per wake before the task looks at its
/// queue and timers again.
const READ_BATCH: usize = 256;
/// Queued outbound frames written per flush.
const WRITE_BATCH: usize = 256;

pub async fn run(server: Arc<Server>, stream: TcpStream) {
    let Ok(mut ws) = accept_hdr_async_with_config(stream, only_ws_path, Some(ws_config())).await
    else {
        return;
    };
    let (outbox, mut queue) = mpsc::unbounded_channel();
    let mut session = Session::new(server, outbox);
    let _ = serve(&mut ws, &mut session, &mut queue).await;
    session.disconnect();
}

/// Runs until the socket ends or fails.
async fn serve(
    ws: &mut Socket,
    session: &mut Session,
    queue: &mut UnboundedReceiver<Message>,
) -> Result<(), Error> {
    let mut heartbeat = interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tokio::select! {
            biased;
            message = ws.next() => {
                // tungstenite answers a close frame on the read after it,
                // which then ends the stream.
                let Some(message) = message else { return Ok(()) };
                session.receive(message?);
                for _ in 1..READ_BATCH {
                    match ws.next().now_or_never() {
                        Some(Some(message)) => session.receive(message?),
                        Some(None) => return Ok(()),
                        None => break,
                    }
                }
            }
            Some(first) = queue.recv() => {
                ws.feed(first).await?;
                for _ in 1..WRITE_BATCH {
                    let Ok(message) = queue.try_recv() else { break };
                    ws.feed(message).await?;
                }
                ws.flush().await?;
            }
            _ = heartbeat.tick() => ws.send(Message::Ping(Bytes::new())).await?,
        }
    }
}

/// `GET /ws` (any query) upgrades; every other path is 404. The signature
/// is tungstenite's callback type, so the large error stays.
#[allow(clippy::result_large_err)]
fn only_ws_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == "/ws" {
        return Ok(response);
    }
    let mut refusal = ErrorResponse::new(None);
    *refusal.status_mut() = StatusCode::NOT_FOUND;
    Err(refusal)
}

struct Session {
    server: Arc<Server>,
    outbox: Outbox,
    id: u64,
    client_id: String,
    user: Option<String>,
    room: Option<Arc<str>>,
}

impl Session {
    fn new(server: Arc<Server>, outbox: Outbox) -> Self {
        let id = server.next_id();
        let client_id = wire::client_id(id);
        server.hub.register(id, outbox.clone());
        let session = Session {
            server,
            outbox,
            id,
            client_id,
            user: None,
            room: None,
        };
        // No resume here, so the token is never accepted; it only keeps
        // `connected` the shape clients expect.
        session.reply(wire::frame(
            "connected",
            None,
            json!({
                "clientId": session.client_id,
                "protocol": 1,
                "heartbeatMs": HEARTBEAT.as_millis() as u64,
                "resumeToken": format!("r{id}"),
            }),
        ));
        session
    }

    fn reply(&self, message: Message) {
        // The writer is gone only when the socket is; the reader sees that.
        let _ = self.outbox.send(message);
    }

    fn receive(&mut self, message: Message) {
        match message {
            Message::Text(text) => self.handle(&text),
            Message::Binary(_) => self.reply(wire::error(None, None, "INVALID_MESSAGE")),
            _ => {}
        }
    }

    fn handle(&mut self, text: &str) {
        let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
            self.reply(wire::error(None, None, "INVALID_MESSAGE"));
            return;
        };
        let event = envelope.event.as_ref();
        let id = envelope.id.as_deref();
        let outcome = match event {
            "ping" => self.pong(id),
            "auth:request" => self.auth(id, envelope.data),
            _ if self.user.is_none() => Err("NOT_AUTHENTICATED"),
            "room:join" => self.join(id, envelope.data),
            "room:leave" => self.leave(id),
            "sdp:offer" | "sdp:answer" | "ice:candidate" => self.relay(event, envelope.data),
            _ => Err("UNKNOWN_EVENT"),
        };
        if let Err(code) = outcome {
            self.reply(wire::error(id, Some(event), code));
        }
    }

    fn pong(&self, id: Option<&str>) -> Outcome {
        let data = json!({ "serverTime": wire::unix_millis() });
        self.reply(wire::frame("pong", id, data));
        Ok(())
    }

    fn auth(&mut self, id: Option<&str>, data: Option<&RawData>) -> Outcome {
        let request: wire::AuthRequest = wire::data(data).ok_or("INVALID_MESSAGE")?;
        let data = match jwt::verify(&self.server.secret, &request.token) {
            Some(user) => {
                let data = json!({ "success": true, "userId": user });
                self.user = Some(user);
                data
            }
            None => json!({
                "success": false,
                "error": { "code": "AUTH_FAILED", "message": "invalid token" },
            }),
        };
        self.reply(wire::frame("auth:response", id, data));
        Ok(())
    }

    fn join(&mut self, id: Option<&str>, data: Option<&RawData>) -> Outcome {
        let join: wire::Join = wire::data(data).ok_or("INVALID_MESSAGE")?;
        if self.room.is_some() {
            return Err("ALREADY_IN_ROOM");
        }
        let user = self.user.as_deref().unwrap_or_default();
        let me = wire::peer(&self.client_id, user, join.metadata);
        let room: Arc<str> = Arc::from(join.room_id);
        let joined = self.server.hub.join(self.id, Arc::clone(&room), me.clone());
        let data = json!({ "roomId": &*room, "peers": joined.peers, "self": me });
        self.reply(wire::frame("room:joined", id, data));
        let notice = wire::frame(
            "room:peer-joined",
            None,
            json!({ "roomId": &*room, "peer": me }),
        );
        broadcast(&joined.others, &notice);
        self.room = Some(room);
        Ok(())
    }

    fn leave(&mut self, id: Option<&str>) -> Outcome {
        let room = self.room.take().ok_or("NOT_IN_ROOM")?;
        let others = self.server.hub.leave(self.id);
        self.reply(wire::frame("room:left", id, json!({ "roomId": &*room })));
        broadcast(&others, &self.peer_left(&room, "left"));
        Ok(())
    }

    fn relay(&self, event: &str, data: Option<&RawData>) -> Outcome {
        let relay: RelayIn = wire::data(data).ok_or("INVALID_MESSAGE")?;
        let room = self.room.as_deref().ok_or("NOT_IN_ROOM")?;
        let target = wire::parse_client_id(&relay.to)
            .filter(|to| *to != self.id)
            .and_then(|to| self.server.hub.target(room, to))
            .ok_or("PEER_NOT_FOUND")?;
        let out = RelayOut {
            from: &self.client_id,
            sdp: relay.sdp,
            candidate: relay.candidate,
        };
        let _ = target.send(wire::frame(event, None, out));
        Ok(())
    }

    fn peer_left(&self, room: &str, reason: &str) -> Message {
        let data = json!({ "roomId": room, "clientId": self.client_id, "reason": reason });
        wire::frame("room:peer-left", None, data)
    }

    /// No resume in the baseline: every disconnect leaves at once.
    fn disconnect(self) {
        let others = self.server.hub.unregister(self.id);
        if let Some(room) = &self.room {
            broadcast(&others, &self.peer_left(room, "disconnected"));
        }
    }
}

type RawData = serde_json::value::RawValue;
type Outcome = Result<(), &'static str>;

fn broadcast(outboxes: &[Outbox], message: &Message) {
    for outbox in outboxes {
        // A closed outbox is a peer disconnecting; its own task cleans up.
        let _ = outbox.send(message.clone());
    }
}
