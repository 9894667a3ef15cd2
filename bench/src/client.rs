//! Connecting clients the way PROTOCOL.md expects: upgrade, `connected`,
//! `auth:request` with a freshly minted HS256 token, `room:join`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

pub type Ws = WebSocketStream<TcpStream>;

/// How long one handshake step may take before it counts as an error.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Source addresses cycle over 127.0.0-15.1-254: about 4,000 of them, so
/// neither ephemeral ports nor TIME_WAIT slots run out during churn.
const SOURCE_HOSTS: u32 = 254;
const SOURCE_SUBNETS: u32 = 16;

pub struct Connector {
    url: String,
    server: SocketAddr,
    spread_sources: bool,
    next_source: AtomicU32,
    secret: Vec<u8>,
}

impl Connector {
    pub async fn new(url: &str, secret: &[u8]) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("parsing {url}"))?;
        if uri.scheme_str() != Some("ws") {
            bail!("{url}: only ws:// URLs are supported");
        }
        let host = uri.host().with_context(|| format!("{url} has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let server = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {host}:{port}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        // 127.0.0.0/8 is all loopback on Linux; elsewhere the OS picks.
        let spread_sources = matches!(server.ip(), IpAddr::V4(ip) if ip.is_loopback());
        Ok(Connector {
            url: url.to_owned(),
            server,
            spread_sources,
            next_source: AtomicU32::new(0),
            secret: secret.to_vec(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn next_source(&self) -> Ipv4Addr {
        let n = self.next_source.fetch_add(1, Ordering::Relaxed);
        let subnet = (n / SOURCE_HOSTS % SOURCE_SUBNETS) as u8;
        let host = (n % SOURCE_HOSTS + 1) as u8;
        Ipv4Addr::new(127, 0, subnet, host)
    }

    /// A WebSocket to the server, from the next loopback source address.
    pub async fn connect(&self) -> anyhow::Result<Ws> {
        let socket = match self.server {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .context("creating a socket")?;
        if self.spread_sources {
            let source = SocketAddr::new(self.next_source().into(), 0);
            socket
                .bind(source)
                .with_context(|| format!("binding {source}"))?;
        }
        let stream = socket
            .connect(self.server)
            .await
            .with_context(|| format!("connecting to {}", self.server))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (ws, _) = client_async_with_config(self.url.as_str(), stream, Some(ws_config()))
            .await
            .context("WebSocket upgrade")?;
        Ok(ws)
    }

    /// Connects, authenticates as `user` and joins `room`.
    pub async fn join(&self, user: &str, room: &str) -> anyhow::Result<Joined> {
        let token = self.token(user);
        let step = async {
            let mut ws = self.connect().await?;
            let connected = expect(&mut ws, "connected").await?;
            let client_id = connected["data"]["clientId"]
                .as_str()
                .context("`connected` without a clientId")?
                .to_owned();
            let auth = json!({ "event": "auth:request", "data": { "token": token } });
            send(&mut ws, &auth).await?;
            let response = expect(&mut ws, "auth:response").await?;
            if response["data"]["success"] != true {
                bail!("auth failed: {}", response["data"]);
            }
            let join = json!({ "event": "room:join", "data": { "roomId": room } });
            send(&mut ws, &join).await?;
            expect(&mut ws, "room:joined").await?;
            Ok(Joined { ws, client_id })
        };
        tokio::time::timeout(STEP_TIMEOUT * 3, step)
            .await
            .context("connect, auth and join timed out")?
    }

    /// An HS256 token for `user`, valid for an hour.
    pub fn token(&self, user: &str) -> String {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 3600;
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(json!({ "sub": user, "exp": exp }).to_string());
        let signing_input = format!("{header}.{body}");
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }
}

/// Small read buffers: the generator may hold tens of thousands of
/// clients. The write buffer grows only when used: a relay window fed
/// before one flush goes out in one write, as a busy client's would, and
/// the generator does not pay a system call per message.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
}

pub struct Joined {
    pub ws: Ws,
    pub client_id: String,
}

pub async fn send(ws: &mut Ws, message: &Value) -> anyhow::Result<()> {
    let text = Utf8Bytes::from(message.to_string());
    tokio::time::timeout(STEP_TIMEOUT, ws.send(Message::Text(text)))
        .await
        .context("send timed out")?
        .context("send failed")
}

/// Reads until `event` arrives, skipping notifications; a server `error`
/// or the end of the connection is an error.
pub async fn expect(ws: &mut Ws, event: &str) -> anyhow::Result<Value> {
    loop {
        let message = tokio::time::timeout(STEP_TIMEOUT, ws.next())
            .await
            .with_context(|| format!("no `{event}` in time"))?
            .with_context(|| format!("closed while waiting for `{event}`"))?
            .with_context(|| format!("reading `{event}`"))?;
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).context("server sent invalid JSON")?;
        if value["event"] == event {
            return Ok(value);
        }
        if value["event"] == "error" {
            bail!("server error waiting for `{event}`: {}", value["data"]);
        }
    }
}

/// A clean close (1000, so the server ends the session at once rather than
/// keeping it for resume), then reading until the server's close reply.
pub async fn close(mut ws: Ws) -> anyhow::Result<()> {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: Utf8Bytes::default(),
    };
    let handshake = async {
        ws.close(Some(frame)).await.context("sending close")?;
        while let Some(message) = ws.next().await {
            if message.is_err() {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(STEP_TIMEOUT, handshake)
        .await
        .context("close timed out")?
}

/// Network errors counted, not raised: one failed client must not end a
/// run, but the report must show it.
#[derive(Default)]
pub struct Errors {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Errors {
    pub fn record(&self, error: &anyhow::Error) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| format!("{error:#}"));
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `errors` and `first_error` in a report's JSON.
    pub fn add_to(&self, json: &mut serde_json::Value) {
        json["errors"] = self.count().into();
        json["first_error"] = self.first().into();
    }
}
