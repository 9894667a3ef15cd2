//! One WebSocket connection's task: it owns the socket, reads frames in
//! order, hands text to the router, writes the client's outbound queue,
//! runs the heartbeat and the auth timeout, and closes.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::{Instant, interval_at, sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::envelope::{self, Frame};
use crate::hub::Outbound;
use crate::ids::{ClientId, ClientIds, CorrelationId};
use crate::metrics::Metrics;
use crate::outbox::{self, Inbox, Overflow, QueueLimits};
use crate::rate_limit::{Admit, RateLimit};
use crate::router::{CLOSE_AUTH_FAILURES, CLOSE_KICKED, CLOSE_RATE_ABUSE, Conn, Router, Verdict};
use crate::session::{Claim, Released, Suspension};

pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_AUTH_TIMEOUT: u16 = 4001;
/// The session was resumed by a newer connection.
pub const CLOSE_TAKEN_OVER: u16 = 4000;

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
    /// How long a session outlives an unexpected disconnect.
    pub resume_grace: Duration,
}

/// How a connection ended.
enum End {
    /// We close with this code, after writing what is queued.
    Close(u16, String),
    /// The client closed or the socket failed; `clean` for a close frame
    /// with 1000 or 1001.
    Gone { clean: bool, why: &'static str },
    /// No pong since the last ping: dropped without a close handshake.
    Dead,
    /// Not reading fast enough: dropped without a close handshake.
    SlowConsumer(&'static str),
    /// Another connection resumed this session: closed with 4000.
    TakenOver,
}

impl End {
    /// An unexpected disconnect from the client's side.
    fn gone(why: &'static str) -> End {
        End::Gone { clean: false, why }
    }
}

pub async fn run(
    mut ws: Socket,
    router: Arc<Router>,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) {
    let id = settings.ids.next();
    let (token, takeover) = router.sessions.open(id);
    let connected = envelope::frame(
        "connected",
        None,
        &json!({
            "clientId": id.to_string(),
            "protocol": 1,
            "heartbeatMs": settings.heartbeat.as_millis() as u64,
            "resumeToken": token.as_str(),
        }),
    );
    if ws.send(Message::Text(connected)).await.is_err() {
        router.sessions.forget(id);
        return;
    }
    let (outbox, queue) = outbox::queue(settings.queue);
    let mut live = Live {
        conn: router.connect(id, outbox),
        signals: Signals {
            takeover,
            overflow: queue.overflow(),
        },
        queue,
    };
    let metrics = &router.metrics;
    metrics.connections_total.fetch_add(1, Relaxed);
    metrics.connections_current.fetch_add(1, Relaxed);
    tracing::debug!(client = %id, "connected");

    let end = serve(&mut ws, &router, &settings, &shutdown, &mut live).await;
    let Live {
        conn, mut queue, ..
    } = live;
    // A clean close is most connections' end: at high churn a line for each
    // cost the server 5 to 8 % of its time. The other ends say something
    // went wrong.
    match end {
        End::Gone { clean: true, .. } => {
            tracing::debug!(client = %conn.id, how = end.describe(), "disconnected");
        }
        _ => tracing::info!(client = %conn.id, how = end.describe(), "disconnected"),
    }
    let closing = match &end {
        End::Close(code, reason) => {
            flush_queue(&mut ws, &mut queue, metrics).await;
            send_close(&mut ws, *code, reason).await
        }
        End::Gone { .. } | End::Dead | End::SlowConsumer(_) | End::TakenOver => false,
    };
    // The room learns at once; the client's answer to our close frame is
    // only waited for afterwards.
    let keep = end.is_unexpected() && conn.authenticated;
    match router.sessions.release(conn.id, queue, keep) {
        Released::Ended => router.disconnect(conn.id),
        Released::Suspended(suspension) => {
            let period = settings.resume_grace;
            tokio::spawn(grace_period(
                Arc::clone(&router),
                conn.id,
                suspension,
                period,
            ));
        }
        Released::HandedOver => {}
    }
    let closing = match end {
        End::TakenOver => send_close(&mut ws, CLOSE_TAKEN_OVER, "session resumed elsewhere").await,
        _ => closing,
    };
    if closing {
        linger(&mut ws).await;
    }
    metrics.connections_current.fetch_sub(1, Relaxed);
    metrics.connections_closed.inc(end.reason());
}

/// A live session: the connection's protocol state and the queue it
/// writes. A resume swaps in the resumed session's.
struct Live {
    conn: Conn,
    queue: Inbox,
    signals: Signals,
}

/// What ends a connection's writing early, apart from the socket: a field
/// of its own so a write can watch it while borrowing the queue.
struct Signals {
    /// Fires when another connection resumes this session.
    takeover: Arc<Notify>,
    overflow: Overflow,
}

/// Keeps a suspended session until it is resumed, its grace period
/// passes, its queue overflows, or it is kicked; all but a resume end it.
async fn grace_period(router: Arc<Router>, id: ClientId, ends: Suspension, period: Duration) {
    tokio::select! {
        _ = ends.grace.cancelled() => {}
        _ = sleep(period) => {}
        _ = ends.overflow.wait() => {}
        _ = router.shutdown.cancelled() => {}
    }
    if router.sessions.expire(id, ends.generation) {
        tracing::info!(client = %id, "session ended unresumed");
        router.disconnect(id);
    }
}

impl End {
    /// Whether the client's session is kept for a resume: PROTOCOL.md's
    /// unexpected disconnects. Closes the server decides and slow
    /// consumers (whose queue already lost a message) end it at once.
    fn is_unexpected(&self) -> bool {
        matches!(self, End::Gone { clean: false, .. } | End::Dead)
    }

    /// The `reason` label of the closed-connections metric.
    fn reason(&self) -> &'static str {
        match self {
            End::Close(CLOSE_GOING_AWAY, _) => "shutdown",
            End::Close(CLOSE_TOO_BIG, _) => "too_big",
            End::Close(CLOSE_PROTOCOL_ERROR | CLOSE_INVALID_DATA, _) => "protocol_error",
            End::Close(CLOSE_AUTH_TIMEOUT, _) => "auth_timeout",
            End::Close(CLOSE_AUTH_FAILURES, _) => "auth_failures",
            End::Close(CLOSE_KICKED, _) => "kicked",
            End::Close(CLOSE_RATE_ABUSE, _) => "rate_abuse",
            End::Close(..) => "closed_by_server",
            End::Gone { .. } => "closed_by_client",
            End::Dead => "heartbeat_timeout",
            End::SlowConsumer(_) => "slow_consumer",
            End::TakenOver => "resumed_elsewhere",
        }
    }

    fn describe(&self) -> String {
        match self {
            End::Close(code, reason) => format!("closed by server: {code} {reason}"),
            End::Gone { why, .. } | End::SlowConsumer(why) => (*why).to_owned(),
            End::Dead => "no pong to the last ping".to_owned(),
            End::TakenOver => "session resumed by another connection".to_owned(),
        }
    }
}

async fn serve(
    ws: &mut Socket,
    router: &Arc<Router>,
    settings: &Settings,
    shutdown: &CancellationToken,
    live: &mut Live,
) -> End {
    let start = Instant::now();
    let mut heartbeat = interval_at(start + settings.heartbeat, settings.heartbeat);
    let mut awaiting_pong = false;
    let (per_sec, burst) = settings.rate;
    let mut limit = RateLimit::new(per_sec, burst, start);
    let auth_deadline = sleep(settings.auth_timeout);
    // Every connection watches the one shutdown token: a future made once
    // stays registered with it, where one made per wake-up would register
    // and unregister under the token's lock, which all workers share.
    let shutdown = shutdown.cancelled();
    tokio::pin!(auth_deadline, shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return End::Close(CLOSE_GOING_AWAY, "server shutting down".into()),
            _ = live.signals.takeover.notified() => return End::TakenOver,
            _ = live.signals.overflow.wait() => return End::SlowConsumer("outbound queue full"),
            out = live.queue.recv() => match out {
                Some(Outbound::Frame(frame)) => {
                    let write = write_batch(ws, frame, &mut live.queue, &router.metrics);
                    match Box::pin(bounded(write, &live.signals, settings.heartbeat)).await {
                        Ok(None) => {}
                        Ok(Some((code, reason))) => return End::Close(code, reason),
                        Err(end) => return end,
                    }
                }
                Some(Outbound::Close(code, reason)) => return End::Close(code, reason),
                None => return End::gone("unregistered"),
            },
            message = ws.next() => {
                let message = match message {
                    None => return End::gone("socket ended"),
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                        return End::Close(CLOSE_TOO_BIG, "message too big".into());
                    }
                    Some(Err(WsError::Utf8(_))) => {
                        return End::Close(CLOSE_INVALID_DATA, "invalid UTF-8".into());
                    }
                    Some(Err(WsError::Protocol(e))) if e != ProtocolError::ResetWithoutClosingHandshake => {
                        return End::Close(CLOSE_PROTOCOL_ERROR, "WebSocket protocol error".into());
                    }
                    Some(Err(_)) => return End::gone("socket error"),
                    Some(Ok(message)) => message,
                };
                if matches!(message, Message::Text(_) | Message::Binary(_)) {
                    live.conn.messages += 1;
                    match limit.admit(Instant::now()) {
                        Admit::Yes => {}
                        Admit::Limited => {
                            router.rate_limited(live.conn.id);
                            continue;
                        }
                        Admit::Abuse => return End::Close(CLOSE_RATE_ABUSE, "rate limit abuse".into()),
                    }
                }
                match message {
                    Message::Text(text) => match router.handle_text(&mut live.conn, text.as_str()) {
                        Verdict::Open => {}
                        Verdict::Close(code, reason) => return End::Close(code, reason.into()),
                        Verdict::Resume { token, cause } => {
                            let resumed = resume(ws, router, settings, live, &token, cause.as_ref());
                            if let Err(end) = Box::pin(resumed).await {
                                return end;
                            }
                        }
                    },
                    Message::Binary(_) => router.binary_frame(live.conn.id),
                    Message::Pong(_) => awaiting_pong = false,
                    // tungstenite answers pings itself.
                    Message::Ping(_) | Message::Frame(_) => {}
                    Message::Close(frame) => {
                        // tungstenite has queued the answering close frame.
                        let _ = Box::pin(bounded(ws.flush(), &live.signals, CLOSE_LINGER)).await;
                        let clean = frame.is_some_and(|f| matches!(u16::from(f.code), 1000 | 1001));
                        return End::Gone { clean, why: "client closed" };
                    }
                }
            }
            _ = heartbeat.tick() => {
                if awaiting_pong {
                    return End::Dead;
                }
                awaiting_pong = true;
                let ping = ws.send(Message::Ping(Default::default()));
                if let Err(end) = Box::pin(bounded(ping, &live.signals, settings.heartbeat)).await {
                    return end;
                }
            }
            _ = &mut auth_deadline, if !live.conn.authenticated => {
                return End::Close(CLOSE_AUTH_TIMEOUT, "not authenticated in time".into());
            }
        }
    }
}

/// Takes over the session `token` names (PROTOCOL.md, Session resume):
/// this connection becomes that client, answers `session:resumed`, and
/// then writes the queue the session kept, in order.
async fn resume(
    ws: &mut Socket,
    router: &Router,
    settings: &Settings,
    live: &mut Live,
    token: &str,
    cause: Option<&CorrelationId>,
) -> Result<(), End> {
    let own = live.conn.id;
    let (id, queue) = match router.sessions.claim(token, own) {
        Some(Claim::Ready(id, queue)) => (id, queue),
        Some(Claim::Wait(id, handover)) => match handover.await {
            Ok(queue) => (id, queue),
            Err(_) => {
                router.resume_failed(own, cause, "the session ended");
                return Ok(());
            }
        },
        None => {
            router.resume_failed(own, cause, "unknown, used or expired resume token");
            return Ok(());
        }
    };
    queue.set_message_limit(settings.queue.messages);
    let replayed = queue.depth();
    let (token, takeover) = router.sessions.open(id);
    // This connection's own client id ends here, unseen by any room.
    router.sessions.forget(own);
    router.disconnect(own);
    router.adopt(&mut live.conn, id);
    live.signals = Signals {
        takeover,
        overflow: queue.overflow(),
    };
    live.queue = queue;
    tracing::info!(client = %id, replaced = %own, replayed, "session resumed");
    let frame = router.resumed(id, &token, replayed, cause);
    router.metrics.messages_out.inc("session:resumed");
    bounded(
        ws.send(Message::Text(frame)),
        &live.signals,
        settings.heartbeat,
    )
    .await
}

/// Runs a write to the socket unless the client stops keeping up (its
/// queue overflows while the write waits, or the socket takes nothing for
/// `patience`: it is dropped) or another connection resumes its session.
///
/// Callers box it: its state (a timer, the frame being fed) then exists
/// only while a write is under way, not in every idle connection's task.
async fn bounded<T>(
    write: impl Future<Output = Result<T, WsError>>,
    signals: &Signals,
    patience: Duration,
) -> Result<T, End> {
    let mut write = pin!(write);
    // Most writes finish at once, the socket's buffer having room: they
    // need no timer, and arming one reads the clock and takes the timer
    // wheel's lock, which every worker shares.
    if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        return result.map_err(|_| End::gone("write failed"));
    }
    tokio::select! {
        result = write => result.map_err(|_| End::gone("write failed")),
        _ = signals.takeover.notified() => Err(End::TakenOver),
        _ = signals.overflow.wait() => Err(End::SlowConsumer("outbound queue full")),
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
