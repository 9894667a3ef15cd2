//! The HTTP side: accepting TCP connections, answering everything that is
//! not a WebSocket upgrade on `/ws`, and handing upgraded sockets to
//! [`connection::run`].

use std::cell::Cell;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1::Parts;
use hyper::service::Service;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::connection::{self, Context};
use super::demo::Demo;
use super::read_ahead::ReadAhead;

/// What the HTTP side needs, shared by every connection.
pub(crate) struct Server {
    /// What each connection task gets.
    pub(crate) connection: Arc<Context>,
    pub(crate) ws_config: WebSocketConfig,
    /// Empty: any origin.
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_connections: usize,
    /// Time a TCP connection has to send a complete request head.
    pub(crate) handshake_timeout: Duration,
    /// WebSocket connections, so shutdown can wait for them to close.
    pub(crate) connections: TaskTracker,
    /// `serve --demo`: the call page and its tokens, beside `/ws`.
    pub(crate) demo: Option<Demo>,
}

/// Every HTTP answer's body: empty but for the demo's.
pub(super) type Body = Full<Bytes>;

/// tungstenite buffers, per connection. The read buffer is allocated up
/// front and kept for the connection's life, so it is most of what an idle
/// connection costs: its defaults (128 KiB) would cost gigabytes at tens of
/// thousands of clients. 1 KiB holds a few ICE candidates; tungstenite
/// reads no more than that at a time, and the socket under it
/// ([`ReadAhead`]) takes a burst from the kernel at once. The write buffer
/// grows only as frames are fed: up to [`WRITE_BUFFER_BYTES`] of them wait
/// for the flush that ends a batch, so a batch is one system call.
pub(crate) fn ws_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(max_message_bytes.saturating_mul(4).max(1 << 20))
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// Outbound bytes fed to tungstenite before it writes them without waiting
/// for a flush.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// The kernel queue of connections not yet accepted. tokio's `bind` asks
/// for 1024; a crowd connecting at once overflowed it, and every SYN the
/// kernel dropped waited a second to be sent again.
const BACKLOG: u32 = 4096;

/// Listens on `addr` with a [`BACKLOG`] of 4096.
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

impl Server {
    /// Accepts connections until shutdown; then the listener is dropped, so
    /// new connections are refused.
    pub(crate) async fn accept(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = tokio::select! {
                _ = self.connection.shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, typically; keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(Arc::clone(&self).serve(stream));
        }
    }

    /// One TCP connection: HTTP until a request is upgraded, then the
    /// WebSocket, on the same task. hyper hands the socket back once it has
    /// written the 101 (`without_shutdown`), so a connection costs one task
    /// and reads its socket directly, not through hyper's boxed `Upgraded`.
    async fn serve(self: Arc<Self>, stream: TcpStream) {
        let parts = match self.http(stream).await {
            Ok(parts) => parts,
            Err(e) => {
                tracing::debug!("http connection: {e}");
                return;
            }
        };
        // hyper also returns here after any other answer to an upgrade
        // request, and when a plain connection ends: the socket closes.
        let Http { server, upgraded } = parts.service;
        let Some(_tracked) = upgraded.into_inner() else {
            return;
        };
        // What the client sent after its request, copied out of hyper's
        // read buffer (8 KiB), which is dropped here: kept, or turned into
        // a `Vec` (which reuses it), it would stay this connection's for
        // its life, where tungstenite reads through 1 KiB.
        let unread = parts.read_buf.to_vec();
        drop(parts.read_buf);
        let ws = WebSocketStream::from_partially_read(
            ReadAhead::new(parts.io.into_inner()),
            unread,
            Role::Server,
            Some(server.ws_config),
        )
        .await;
        connection::run(ws, Arc::clone(&server.connection)).await;
    }

    /// hyper serving one connection until it ends or hands the socket back.
    /// Boxed, and made here rather than in `serve`: hyper's state is freed
    /// at the upgrade instead of sizing the task every connection keeps for
    /// its life.
    fn http(self: Arc<Self>, stream: TcpStream) -> Pin<Box<impl Future<Output = HttpEnd>>> {
        let handshake_timeout = self.handshake_timeout;
        let http = Http {
            server: self,
            upgraded: Cell::new(None),
        };
        Box::pin(
            hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout)
                .serve_connection(TokioIo::new(stream), http)
                .without_shutdown(),
        )
    }

    /// The answer to one request. An accepted upgrade is counted among the
    /// connections from here on, by the token left in `upgraded`.
    fn handle(
        &self,
        request: &Request<Incoming>,
        upgraded: &Cell<Option<TaskTrackerToken>>,
    ) -> Response<Body> {
        let path = request.uri().path();
        if path != "/ws" {
            let demo = self.demo.as_ref();
            return demo
                .and_then(|demo| demo.respond(request.method(), path))
                .unwrap_or_else(|| status(StatusCode::NOT_FOUND));
        }
        if request.method() != Method::GET {
            return method_not_allowed();
        }
        let Some(key) = websocket_key(request) else {
            let mut response = status(StatusCode::UPGRADE_REQUIRED);
            response
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            return response;
        };
        if !self.origin_allowed(request) {
            return status(StatusCode::FORBIDDEN);
        }
        if self.connections.len() >= self.max_connections {
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        if let Some(cluster) = &self.connection.cluster
            && !cluster.accepting()
        {
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        if request
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            let mut response = status(StatusCode::BAD_REQUEST);
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return response;
        }
        let accept = derive_accept_key(key.as_bytes());
        upgraded.set(Some(self.connections.token()));
        let mut response = status(StatusCode::SWITCHING_PROTOCOLS);
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
        );
        response
    }

    fn origin_allowed(&self, request: &Request<Incoming>) -> bool {
        let Some(origin) = request.headers().get(header::ORIGIN) else {
            // Non-browser clients send none.
            return true;
        };
        self.allowed_origins.is_empty()
            || self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin.as_bytes())
    }
}

/// How hyper's side of a connection ends: the socket, the bytes read past
/// the last request, and the service, which knows whether it was upgraded.
type HttpEnd = hyper::Result<Parts<TokioIo<TcpStream>, Http>>;

/// hyper's service for one TCP connection.
struct Http {
    server: Arc<Server>,
    /// Set when a request was answered 101: the connection continues as
    /// a WebSocket once hyper hands the socket back.
    upgraded: Cell<Option<TaskTrackerToken>>,
}

impl Service<Request<Incoming>> for Http {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        ready(Ok(self.server.handle(&request, &self.upgraded)))
    }
}

/// The `Sec-WebSocket-Key` of a well-formed upgrade request.
fn websocket_key(request: &Request<Incoming>) -> Option<String> {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = code;
    response
}

pub(super) fn method_not_allowed() -> Response<Body> {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}
