//! The HTTP side: accepting TCP connections, answering everything that is
//! not a WebSocket upgrade on `/ws`, and handing upgraded sockets to
//! [`connection::run`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::task::TaskTracker;

use super::connection::{self, Context};
use super::demo::Demo;

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
/// thousands of clients. 1 KiB holds a few ICE candidates per read; an SDP
/// takes a few more reads. The write buffer grows only as frames are fed:
/// up to [`WRITE_BUFFER_BYTES`] of them wait for the flush that ends a
/// batch, so a batch is one system call.
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
            let server = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(|request| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, Infallible>(server.handle(request)) }
                });
                let http = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(server.handshake_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                if let Err(e) = http.await {
                    tracing::debug!("http connection: {e}");
                }
            });
        }
    }

    fn handle(self: &Arc<Self>, mut request: Request<Incoming>) -> Response<Body> {
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
        let Some(key) = websocket_key(&request) else {
            let mut response = status(StatusCode::UPGRADE_REQUIRED);
            response
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            return response;
        };
        if !self.origin_allowed(&request) {
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
        let upgrade = hyper::upgrade::on(&mut request);
        let server = Arc::clone(self);
        self.connections.spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let ws =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(server.ws_config))
                            .await;
                    connection::run(ws, Arc::clone(&server.connection)).await;
                }
                Err(e) => tracing::debug!("upgrade failed: {e}"),
            }
        });
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
