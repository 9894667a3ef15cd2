//! A WebSocket client that speaks the envelope of PROTOCOL.md.
//!
//! Every receive has a timeout ([`RECV_TIMEOUT`] unless said otherwise).
//! WebSocket pings from the server are answered by tungstenite while the
//! client is reading; a client that is not being read answers nothing.
//!
//! The `expect_*` methods check the wire shape as well as the content:
//! every message is an object with `event` and `data` (an object) and
//! nothing else but an optional `id`. Server-initiated messages
//! ([`Client::expect_event`]) must have no `id` at all; replies
//! ([`Client::expect_reply`]) must carry the request's.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::Server;
use crate::token::{token, token_with_role};

/// How long any single receive waits before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// `clientId` from `connected`.
    pub client_id: String,
    /// The whole `data` of `connected`.
    pub connected: Value,
}

impl Client {
    /// Connects to `/ws` and reads `connected`.
    pub async fn connect(server: &Server) -> Client {
        Client::connect_path(server, "/ws").await
    }

    /// Connects to `path_and_query` (e.g. `/ws?x=1`) and reads `connected`.
    pub async fn connect_path(server: &Server, path_and_query: &str) -> Client {
        Client::connect_addr_path(server.addr(), path_and_query).await
    }

    /// Connects to `/ws` on `addr` and reads `connected`: for tasks that
    /// do not hold the [`Server`].
    pub async fn connect_addr(addr: SocketAddr) -> Client {
        Client::connect_addr_path(addr, "/ws").await
    }

    async fn connect_addr_path(addr: SocketAddr, path_and_query: &str) -> Client {
        let url = format!("ws://{addr}{path_and_query}");
        let (ws, _response) = timeout(RECV_TIMEOUT, connect_async(&url))
            .await
            .unwrap_or_else(|_| panic!("WebSocket handshake with {url} timed out"))
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url} failed: {e}"));
        Client::read_connected(ws).await
    }

    /// Connects to `/ws` and reads `connected`, or returns the HTTP status
    /// the server answered the upgrade request with instead of 101. Any
    /// other handshake failure fails the test.
    pub async fn try_connect(server: &Server) -> Result<Client, u16> {
        let url = server.url();
        match timeout(RECV_TIMEOUT, connect_async(&url))
            .await
            .unwrap_or_else(|_| panic!("WebSocket handshake with {url} timed out"))
        {
            Ok((ws, _response)) => Ok(Client::read_connected(ws).await),
            Err(WsError::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("WebSocket handshake with {url} failed: {e}"),
        }
    }

    async fn read_connected(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        let mut client = Client {
            ws,
            client_id: String::new(),
            connected: Value::Null,
        };
        let connected = client.expect_event("connected").await;
        client.client_id = connected["clientId"]
            .as_str()
            .unwrap_or_else(|| panic!("connected without a string clientId: {connected}"))
            .to_owned();
        client.connected = connected;
        client
    }

    /// Connects and authenticates as `user` with a valid token for any room.
    pub async fn authed(server: &Server, user: &str) -> Client {
        Client::authed_addr(server.addr(), user).await
    }

    /// [`Client::authed`] by the server's address.
    pub async fn authed_addr(addr: SocketAddr, user: &str) -> Client {
        Client::authed_with(addr, user, &token(user)).await
    }

    /// Connects and authenticates as `user` with a token whose role claim
    /// is `role`.
    pub async fn authed_as(server: &Server, user: &str, role: &str) -> Client {
        Client::authed_as_addr(server.addr(), user, role).await
    }

    /// [`Client::authed_as`] by the server's address.
    pub async fn authed_as_addr(addr: SocketAddr, user: &str, role: &str) -> Client {
        Client::authed_with(addr, user, &token_with_role(user, role)).await
    }

    /// Connects and authenticates as `user` with `token`, which must be
    /// accepted.
    async fn authed_with(addr: SocketAddr, user: &str, token: &str) -> Client {
        let mut client = Client::connect_addr(addr).await;
        let response = client.auth(json!({ "token": token })).await;
        assert_eq!(response, json!({ "success": true, "userId": user }));
        client
    }

    /// Connects, authenticates as `user` and joins `room`.
    pub async fn joined(server: &Server, user: &str, room: &str) -> Client {
        let mut client = Client::authed(server, user).await;
        client.join(room).await;
        client
    }

    /// Connects and, as its first message, asks to resume the session
    /// `token` names; returns the client and the whole answer
    /// (`session:resumed` or an error).
    pub async fn resuming(server: &Server, token: &str) -> (Client, Value) {
        let mut client = Client::connect(server).await;
        client
            .send_json(json!({ "event": "session:resume", "id": "resume", "data": { "resumeToken": token } }))
            .await;
        let answer = client.recv().await;
        if answer["event"] == "session:resumed" {
            client.client_id = answer["data"]["clientId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
        (client, answer)
    }

    /// The `resumeToken` of `connected`.
    pub fn resume_token(&self) -> String {
        self.connected["resumeToken"]
            .as_str()
            .expect("connected carries a string resumeToken")
            .to_owned()
    }

    /// Sends `auth:request` with `data` and returns the `auth:response` data.
    pub async fn auth(&mut self, data: Value) -> Value {
        self.send_json(json!({ "event": "auth:request", "id": "auth", "data": data }))
            .await;
        self.expect_reply("auth:response", "auth").await
    }

    /// Sends `room:join` for `room` and returns the `room:joined` data.
    pub async fn join(&mut self, room: &str) -> Value {
        self.send_json(json!({ "event": "room:join", "id": "join", "data": { "roomId": room } }))
            .await;
        self.expect_reply("room:joined", "join").await
    }

    pub async fn send_json(&mut self, message: Value) {
        self.send(Message::text(message.to_string())).await;
    }

    pub async fn send_text(&mut self, raw: impl Into<String>) {
        self.send(Message::text(raw.into())).await;
    }

    pub async fn send_binary(&mut self, bytes: impl Into<Bytes>) {
        self.send(Message::binary(bytes)).await;
    }

    /// Sends a WebSocket ping control frame (not a data message).
    pub async fn send_ws_ping(&mut self, payload: impl Into<Bytes>) {
        self.send(Message::Ping(payload.into())).await;
    }

    /// Sends an unsolicited WebSocket pong control frame.
    pub async fn send_ws_pong(&mut self, payload: impl Into<Bytes>) {
        self.send(Message::Pong(payload.into())).await;
    }

    /// Sends one text message split into one frame per part.
    pub async fn send_fragmented_text(&mut self, parts: &[&str]) {
        assert!(
            parts.len() >= 2,
            "a fragmented message has at least two frames"
        );
        for (i, part) in parts.iter().enumerate() {
            let opcode = if i == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            let is_final = i == parts.len() - 1;
            let frame = Frame::message(part.as_bytes().to_vec(), opcode, is_final);
            self.send(Message::Frame(frame)).await;
        }
    }

    async fn send(&mut self, message: Message) {
        timeout(RECV_TIMEOUT, self.ws.send(message))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    /// Closes cleanly with `code` and waits (at most [`RECV_TIMEOUT`]) for
    /// the server to finish the close handshake.
    pub async fn close(mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        self.ws.close(Some(frame)).await.expect("send close frame");
        let _ = timeout(RECV_TIMEOUT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Goes without a close frame: the socket is shut (FIN), as when a
    /// client's process dies.
    pub fn vanish(self) {
        drop(self);
    }

    /// Goes with a TCP reset, as when a client's network fails: the server
    /// sees an error, not an end of stream.
    pub fn reset(self) {
        if let MaybeTlsStream::Plain(stream) = self.ws.get_ref() {
            // A zero linger resets at once on drop; the deprecation is
            // about lingers that block the dropping thread.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
        }
    }

    /// The next data message, parsed as JSON, waiting at most [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> Value {
        self.recv_within(RECV_TIMEOUT).await
    }

    /// The next data message, parsed as JSON, waiting at most `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let next = timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no message within {limit:?}"));
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("server sent non-JSON text {text:?}: {e}"));
                    check_envelope(&value);
                    return value;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(bytes))) => panic!("server sent a binary frame: {bytes:?}"),
                Some(Ok(Message::Close(frame))) => {
                    panic!("connection closed ({frame:?}) while waiting for a message")
                }
                Some(Err(e)) => panic!("connection failed while waiting for a message: {e}"),
                None => panic!("connection ended while waiting for a message"),
            }
        }
    }

    /// The next thing that happens on the connection, waiting as long as
    /// it takes (wrap it in a timeout). Cancel-safe: dropping the future
    /// loses no message, so it can sit in a `select!` next to sends.
    pub async fn next_incoming(&mut self) -> Incoming {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("server sent non-JSON text {text:?}: {e}"));
                    check_envelope(&value);
                    return Incoming::Message(value);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(bytes))) => {
                    return Incoming::Failed(format!("server sent a binary frame: {bytes:?}"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Incoming::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Err(e)) => return Incoming::Failed(e.to_string()),
                None => return Incoming::Failed("connection ended".into()),
            }
        }
    }

    /// Expects a server-initiated `event` (no `id` key); returns its `data`.
    pub async fn expect_event(&mut self, event: &str) -> Value {
        self.expect_event_within(event, RECV_TIMEOUT).await
    }

    /// [`Client::expect_event`] waiting at most `limit`.
    pub async fn expect_event_within(&mut self, event: &str, limit: Duration) -> Value {
        let message = self.recv_within(limit).await;
        assert_eq!(message["event"], event, "expected `{event}`, got {message}");
        assert!(
            message.get("id").is_none(),
            "`{event}` must have no `id` here, got {message}"
        );
        message["data"].clone()
    }

    /// Expects `event` carrying `"id": id`; returns its `data`.
    pub async fn expect_reply(&mut self, event: &str, id: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["event"], event, "expected `{event}`, got {message}");
        assert_eq!(message["id"], id, "`{event}` with the wrong id: {message}");
        message["data"].clone()
    }

    /// Expects an `error` whose `data` is exactly `{code, message, event?}`:
    /// `id` is the top-level id it must carry (`None`: no `id` key), and
    /// `event` the event it must name (`None`: no `event` in `data`).
    /// Returns the `data`.
    pub async fn expect_error(
        &mut self,
        code: &str,
        id: Option<&str>,
        event: Option<&str>,
    ) -> Value {
        let message = self.recv().await;
        assert_eq!(
            message["event"], "error",
            "expected a {code} error, got {message}"
        );
        match id {
            Some(id) => assert_eq!(message["id"], id, "error with the wrong id: {message}"),
            None => assert!(
                message.get("id").is_none(),
                "error must have no id: {message}"
            ),
        }
        let data = &message["data"];
        assert_eq!(data["code"], code, "wrong error code: {message}");
        assert!(
            data["message"].is_string(),
            "error without a message: {message}"
        );
        match event {
            Some(event) => assert_eq!(
                data["event"], event,
                "error naming the wrong event: {message}"
            ),
            None => assert!(
                data.get("event").is_none(),
                "error must not name an event: {message}"
            ),
        }
        let expected_len = 2 + usize::from(event.is_some());
        assert_eq!(
            data.as_object().map(|o| o.len()),
            Some(expected_len),
            "extra fields in error: {message}"
        );
        data.clone()
    }

    /// Reads until a close frame arrives (data messages are skipped) and
    /// asserts its code; then lets the close handshake finish.
    pub async fn expect_close(&mut self, code: u16) {
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let next = timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("no close frame (expected {code}) within {RECV_TIMEOUT:?}")
                });
            match next {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), code, "wrong close code: {frame:?}");
                    break;
                }
                Some(Ok(Message::Close(None))) => {
                    panic!("close frame without a code, expected {code}")
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    panic!("connection failed before a close frame (expected {code}): {e}")
                }
                None => panic!("connection ended without a close frame (expected {code})"),
            }
        }
        // Reading on sends tungstenite's close reply and waits for the end.
        let _ = timeout(RECV_TIMEOUT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Reads until the connection ends in any way (close frame, EOF or
    /// error), skipping data messages; fails after `limit`.
    pub async fn expect_disconnected_within(&mut self, limit: Duration) {
        let ended = timeout(limit, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "connection still open after {limit:?}");
    }

    /// Asserts that no data message (and no close) arrives within `window`.
    pub async fn expect_silence(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let Ok(next) = timeout_at(deadline, self.ws.next()).await else {
                return;
            };
            match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Text(text))) => panic!("expected silence, got {text}"),
                Some(Ok(other)) => panic!("expected silence, got {other:?}"),
                Some(Err(e)) => panic!("expected silence, connection failed: {e}"),
                None => panic!("expected silence, connection ended"),
            }
        }
    }

    /// Asserts that the connection is open and answering: a `ping` gets its `pong`.
    pub async fn assert_open(&mut self) {
        self.send_json(json!({ "event": "ping", "id": "still-open" }))
            .await;
        self.expect_reply("pong", "still-open").await;
    }
}

/// What [`Client::next_incoming`] saw.
#[derive(Debug)]
pub enum Incoming {
    /// A data message, parsed and shape-checked.
    Message(Value),
    /// A close frame, with its code if it had one.
    Closed(Option<u16>),
    /// Anything else that ends or breaks the connection.
    Failed(String),
}

/// Every message in both directions: an object with `event` (string) and
/// `data` (object), and nothing else but an optional string `id`.
fn check_envelope(message: &Value) {
    let object = message
        .as_object()
        .unwrap_or_else(|| panic!("message is not a JSON object: {message}"));
    for key in object.keys() {
        assert!(
            ["event", "data", "id"].contains(&key.as_str()),
            "unexpected top-level field `{key}` in {message}"
        );
    }
    assert!(
        message["event"].is_string(),
        "message without a string `event`: {message}"
    );
    assert!(
        message["data"].is_object(),
        "message without an object `data`: {message}"
    );
    if let Some(id) = object.get("id") {
        assert!(id.is_string(), "non-string `id` in {message}");
    }
}
