//! One WebSocket connection's task: it owns the socket, reads frames in
//! order, hands text to the router, writes the client's outbound queue,
//! runs the heartbeat and the auth timeout, and closes.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::time::{Instant, interval_at, sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::envelope::{self, Frame};
use crate::hub::Outbound;
use crate::ids::ClientIds;
use crate::metrics::Metrics;
use crate::outbox::{self, Inbox, Overflow, QueueLimits};
use crate::rate_limit::{Admit, RateLimit};
use crate::router::{CLOSE_AUTH_FAILURES, CLOSE_KICKED, CLOSE_RATE_ABUSE, Conn, Router, Verdict};

pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_AUTH_TIMEOUT: u16 = 4001;

/// Outbound frames written before one flush.
const WRITE_BATCH: usize = 64;
/// How long to wait for the client's answer to our close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Settings every connection shares.
pub struct Settings {
    pub heartbeat: Duration,
    pub auth_timeout: Duration,
    /// Messages per second and burst of each connection's token bucket.
    pub rate: (f64, f64),
    pub queue: QueueLimits,
    pub ids: ClientIds,
}

/// How a connection ended.
enum End {
    /// We close with this code, after writing what is queued.
    Close(u16, String),
    /// The client closed (any code) or the socket failed.
    Gone(&'static str),
    /// No pong since the last ping: dropped without a close handshake.
    Dead,
    /// Not reading fast enough: dropped without a close handshake.
    SlowConsumer(&'static str),
}

pub async fn run(
    mut ws: Socket,
    router: Arc<Router>,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) {
    let id = settings.ids.next();
    let connected = envelope::frame(
        "connected",
        None,
        &json!({
            "clientId": id.to_string(),
            "protocol": 1,
            "heartbeatMs": settings.heartbeat.as_millis() as u64,
            "resumeToken": resume_token(),
        }),
    );
    if ws.send(Message::Text(connected)).await.is_err() {
        return;
    }
    let (outbox, mut queue) = outbox::queue(settings.queue);
    let mut conn = router.connect(id, outbox);
    let metrics = &router.metrics;
    metrics.connections_total.fetch_add(1, Relaxed);
    metrics.connections_current.fetch_add(1, Relaxed);
    tracing::debug!(client = %id, "connected");

    let end = serve(
        &mut ws, &router, &settings, &shutdown, &mut conn, &mut queue,
    )
    .await;
    tracing::info!(client = %id, how = end.describe(), "disconnected");
    let closing = match &end {
        End::Close(code, reason) => {
            flush_queue(&mut ws, &mut queue, metrics).await;
            send_close(&mut ws, *code, reason).await
        }
        End::Gone(_) | End::Dead | End::SlowConsumer(_) => false,
    };
    // The room learns at once; the client's answer to our close frame is
    // only waited for afterwards.
    router.disconnect(&conn);
    if closing {
        linger(&mut ws).await;
    }
    metrics.connections_current.fetch_sub(1, Relaxed);
    metrics.connections_closed.inc(end.reason());
}

impl End {
    /// The `reason` label of the closed-connections metric.
    fn reason(&self) -> &'static str {
        match self {
            End::Close(CLOSE_GOING_AWAY, _) => "shutdown",
            End::Close(CLOSE_TOO_BIG, _) => "too_big",
            End::Close(CLOSE_AUTH_TIMEOUT, _) => "auth_timeout",
            End::Close(CLOSE_AUTH_FAILURES, _) => "auth_failures",
            End::Close(CLOSE_KICKED, _) => "kicked",
            End::Close(CLOSE_RATE_ABUSE, _) => "rate_abuse",
            End::Close(..) => "closed_by_server",
            End::Gone(_) => "closed_by_client",
            End::Dead => "heartbeat_timeout",
            End::SlowConsumer(_) => "slow_consumer",
        }
    }

    fn describe(&self) -> String {
        match self {
            End::Close(code, reason) => format!("closed by server: {code} {reason}"),
            End::Gone(why) | End::SlowConsumer(why) => (*why).to_owned(),
            End::Dead => "no pong to the last ping".to_owned(),
        }
    }
}

async fn serve(
    ws: &mut Socket,
    router: &Arc<Router>,
    settings: &Settings,
    shutdown: &CancellationToken,
    conn: &mut Conn,
    queue: &mut Inbox,
) -> End {
    let start = Instant::now();
    let mut heartbeat = interval_at(start + settings.heartbeat, settings.heartbeat);
    let mut awaiting_pong = false;
    let (per_sec, burst) = settings.rate;
    let mut limit = RateLimit::new(per_sec, burst, start);
    let auth_deadline = sleep(settings.auth_timeout);
    tokio::pin!(auth_deadline);
    let overflow = queue.overflow();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return End::Close(CLOSE_GOING_AWAY, "server shutting down".into()),
            _ = overflow.wait() => return End::SlowConsumer("outbound queue full"),
            out = queue.recv() => match out {
                Some(Outbound::Frame(frame)) => {
                    let write = write_batch(ws, frame, queue, &router.metrics);
                    match Box::pin(bounded(write, &overflow, settings.heartbeat)).await {
                        Ok(None) => {}
                        Ok(Some((code, reason))) => return End::Close(code, reason),
                        Err(end) => return end,
                    }
                }
                Some(Outbound::Close(code, reason)) => return End::Close(code, reason),
                None => return End::Gone("unregistered"),
            },
            message = ws.next() => {
                let message = match message {
                    None => return End::Gone("socket ended"),
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                        return End::Close(CLOSE_TOO_BIG, "message too big".into());
                    }
                    Some(Err(_)) => return End::Gone("socket error"),
                    Some(Ok(message)) => message,
                };
                if matches!(message, Message::Text(_) | Message::Binary(_)) {
                    match limit.admit(Instant::now()) {
                        Admit::Yes => {}
                        Admit::Limited => {
                            router.rate_limited(conn.id);
                            continue;
                        }
                        Admit::Abuse => return End::Close(CLOSE_RATE_ABUSE, "rate limit abuse".into()),
                    }
                }
                match message {
                    Message::Text(text) => {
                        if let Verdict::Close(code, reason) = router.handle_text(conn, text.as_str()) {
                            return End::Close(code, reason.into());
                        }
                    }
                    Message::Binary(_) => router.binary_frame(conn.id),
                    Message::Pong(_) => awaiting_pong = false,
                    // tungstenite answers pings and close frames itself.
                    Message::Ping(_) | Message::Frame(_) => {}
                    Message::Close(_) => return End::Gone("client closed"),
                }
            }
            _ = heartbeat.tick() => {
                if awaiting_pong {
                    return End::Dead;
                }
                awaiting_pong = true;
                let ping = ws.send(Message::Ping(Default::default()));
                if let Err(end) = Box::pin(bounded(ping, &overflow, settings.heartbeat)).await {
                    return end;
                }
            }
            _ = &mut auth_deadline, if !conn.authenticated => {
                return End::Close(CLOSE_AUTH_TIMEOUT, "not authenticated in time".into());
            }
        }
    }
}

/// Runs a write to the socket unless the client stops keeping up: its
/// queue overflows while the write waits, or the socket takes nothing for
/// `patience`. Either way it is dropped as an unexpected disconnect.
///
/// Callers box it: its state (a timer, the frame being fed) then exists
/// only while a write is under way, not in every idle connection's task.
async fn bounded<T>(
    write: impl Future<Output = Result<T, WsError>>,
    overflow: &Overflow,
    patience: Duration,
) -> Result<T, End> {
    tokio::select! {
        result = write => result.map_err(|_| End::Gone("write failed")),
        _ = overflow.wait() => Err(End::SlowConsumer("outbound queue full")),
        _ = sleep(patience) => Err(End::SlowConsumer("socket stalled")),
    }
}

/// Writes `first` and whatever else is already queued, then flushes once.
/// Returns a close request found in the queue.
async fn write_batch(
    ws: &mut Socket,
    first: Frame,
    queue: &mut Inbox,
    metrics: &Metrics,
) -> Result<Option<(u16, String)>, WsError> {
    write(ws, first, metrics).await?;
    let mut close = None;
    for _ in 1..WRITE_BATCH {
        match queue.try_recv() {
            Some(Outbound::Frame(frame)) => write(ws, frame, metrics).await?,
            Some(Outbound::Close(code, reason)) => {
                close = Some((code, reason));
                break;
            }
            None => break,
        }
    }
    ws.flush().await?;
    Ok(close)
}

/// Writes every frame still queued, so a reply sent just before a close
/// (the third `AUTH_FAILED`, say) reaches the client first.
async fn flush_queue(ws: &mut Socket, queue: &mut Inbox, metrics: &Metrics) {
    while let Some(out) = queue.try_recv() {
        if let Outbound::Frame(frame) = out
            && write(ws, frame, metrics).await.is_err()
        {
            return;
        }
    }
    let _ = ws.flush().await;
}

/// Queues one frame on the socket (written at the next flush).
async fn write(ws: &mut Socket, frame: Frame, metrics: &Metrics) -> Result<(), WsError> {
    metrics.messages_out.inc(envelope::frame_event(&frame));
    ws.feed(Message::Text(frame)).await
}

/// Sends a close frame; false if the socket is already gone.
async fn send_close(ws: &mut Socket, code: u16, reason: &str) -> bool {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason),
    };
    ws.send(Message::Close(Some(frame))).await.is_ok()
}

/// Gives the client a moment to answer our close frame; a silent one is
/// dropped.
async fn linger(ws: &mut Socket) {
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}

/// Sessions are not resumable yet; the token is still unguessable so
/// clients can store it as PROTOCOL.md says.
fn resume_token() -> String {
    use base64::Engine;
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
