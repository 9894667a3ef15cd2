//! One WebSocket connection's task: it owns the socket, reads frames in
//! order, hands text to the router, writes the client's outbound queue,
//! runs the heartbeat and the auth timeout, and closes.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Serialize;
use tokio::time::{Instant, interval_at, sleep};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_util::sync::CancellationToken;

use super::outbox::{self, Inbox, Outbound, QueueLimits};
use super::rate_limit::{Admit, RateLimit};
use super::write::{
    CLOSE_LINGER, Signals, Socket, Stopped, bounded, flush_queue, linger, send_close, write_batch,
};
use crate::cluster::Cluster;
use crate::envelope;
use crate::ids::{ClientId, CorrelationId};
use crate::metrics::Metrics;
use crate::router::{Conn, Router, Verdict};
use crate::session::{Claim, ClientIds, Released, Sessions, Suspension};
use crate::vocab::{CloseCode, event};

/// Settings every connection shares.
pub(crate) struct Settings {
    pub(crate) heartbeat: Duration,
    pub(crate) auth_timeout: Duration,
    /// Messages per second and burst of each connection's token bucket.
    pub(crate) rate: (f64, f64),
    pub(crate) queue: QueueLimits,
    pub(crate) ids: ClientIds,
    /// How long a session outlives an unexpected disconnect.
    pub(crate) resume_grace: Duration,
}

/// What every connection task holds: the router it hands text to, the
/// session table its session lives in, the counters, and the settings.
pub(crate) struct Context {
    pub(crate) router: Arc<Router>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) settings: Settings,
    /// Cluster mode: where rooms get their owners.
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// Ends every connection (1001) and every grace period.
    pub(crate) shutdown: CancellationToken,
}

/// How a connection ended.
enum End {
    /// We close with this code, after writing what is queued.
    Close(CloseCode, String),
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

impl From<Stopped> for End {
    fn from(stopped: Stopped) -> End {
        match stopped {
            Stopped::Failed => End::gone("write failed"),
            Stopped::TakenOver => End::TakenOver,
            Stopped::SlowConsumer(why) => End::SlowConsumer(why),
        }
    }
}

pub(crate) async fn run(mut ws: Socket, cx: Arc<Context>) {
    let id = cx.settings.ids.next();
    let (token, takeover) = cx.sessions.open(id);
    let connected = Connected {
        client_id: &id.to_hex(),
        heartbeat_ms: cx.settings.heartbeat.as_millis() as u64,
        protocol: 1,
        resume_token: token.as_str(),
    };
    let connected = envelope::frame(event::CONNECTED, None, &connected);
    if ws.send(Message::Text(connected)).await.is_err() {
        cx.sessions.forget(id);
        return;
    }
    let (outbox, queue) = outbox::queue(cx.settings.queue);
    let mut live = Live {
        conn: cx.router.connect(id, outbox),
        signals: Signals {
            takeover,
            overflow: queue.overflow(),
        },
        queue,
    };
    let metrics = &cx.metrics;
    metrics.connections_total.fetch_add(1, Relaxed);
    metrics.connections_current.fetch_add(1, Relaxed);
    tracing::debug!(client = %id, "connected");

    let end = serve(&mut ws, &cx, &mut live).await;
    let Live {
        conn, mut queue, ..
    } = live;
    // A clean close is most connections' end: at high churn a line for each
    // cost the server 5 to 8 % of its time. The other ends say something
    // went wrong.
    match end {
        End::Gone { clean: true, .. } => {
            tracing::debug!(client = %conn.id(), how = end.describe(), "disconnected");
        }
        _ => tracing::info!(client = %conn.id(), how = end.describe(), "disconnected"),
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
    let keep = end.is_unexpected() && conn.is_authenticated();
    match cx.sessions.release(conn.id(), queue, keep) {
        Released::Ended => cx.router.disconnect(conn.id()),
        Released::Suspended(suspension) => {
            tokio::spawn(grace_period(Arc::clone(&cx), conn.id(), suspension));
        }
        Released::HandedOver => {}
    }
    let closing = match end {
        End::TakenOver => {
            send_close(&mut ws, CloseCode::TakenOver, "session resumed elsewhere").await
        }
        _ => closing,
    };
    if closing {
        linger(&mut ws).await;
    }
    metrics.connections_current.fetch_sub(1, Relaxed);
    metrics.connections_closed.inc(end.reason());
}

/// `connected`'s data, written straight from borrowed fields: built as a
/// `json!` map (a `String` per key, a `BTreeMap`) it cost a churn cycle
/// 5,000 more instructions. Its keys are in the order that map wrote them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Connected<'a> {
    client_id: &'a str,
    heartbeat_ms: u64,
    protocol: u8,
    resume_token: &'a str,
}

/// A live session: the connection's protocol state and the queue it
/// writes. A resume swaps in the resumed session's.
struct Live {
    conn: Conn,
    queue: Inbox,
    signals: Signals,
}

/// Keeps a suspended session until it is resumed, its grace period
/// passes, its queue overflows, or it is kicked; all but a resume end it.
async fn grace_period(cx: Arc<Context>, id: ClientId, ends: Suspension) {
    tokio::select! {
        // First: once a resume has claimed the session, its new connection
        // waits on the overflow signal, which has room for one waiter.
        biased;
        _ = ends.grace.cancelled() => {}
        _ = sleep(cx.settings.resume_grace) => {}
        _ = ends.overflow.wait() => {}
        _ = cx.shutdown.cancelled() => {}
    }
    if cx.sessions.expire(id, ends.generation) {
        tracing::info!(client = %id, "session ended unresumed");
        cx.router.disconnect(id);
    }
}

impl End {
    /// An unexpected disconnect from the client's side.
    fn gone(why: &'static str) -> End {
        End::Gone { clean: false, why }
    }

    /// Whether the client's session is kept for a resume: PROTOCOL.md's
    /// unexpected disconnects. Closes the server decides and slow
    /// consumers (whose queue already lost a message) end it at once.
    fn is_unexpected(&self) -> bool {
        matches!(self, End::Gone { clean: false, .. } | End::Dead)
    }

    /// The `reason` label of the closed-connections metric.
    fn reason(&self) -> &'static str {
        match self {
            End::Close(code, _) => match code {
                CloseCode::GoingAway => "shutdown",
                CloseCode::TooBig => "too_big",
                CloseCode::ProtocolError | CloseCode::InvalidData => "protocol_error",
                CloseCode::AuthTimeout => "auth_timeout",
                CloseCode::AuthFailures => "auth_failures",
                CloseCode::Kicked => "kicked",
                CloseCode::RateAbuse => "rate_abuse",
                _ => "closed_by_server",
            },
            End::Gone { .. } => "closed_by_client",
            End::Dead => "heartbeat_timeout",
            End::SlowConsumer(_) => "slow_consumer",
            End::TakenOver => "resumed_elsewhere",
        }
    }

    fn describe(&self) -> String {
        match self {
            End::Close(code, reason) => format!("closed by server: {} {reason}", code.as_u16()),
            End::Gone { why, .. } | End::SlowConsumer(why) => (*why).to_owned(),
            End::Dead => "no pong to the last ping".to_owned(),
            End::TakenOver => "session resumed by another connection".to_owned(),
        }
    }
}

/// Buffered inbound messages handled per wake before the task looks at its
/// queue and timers again: a client's burst is read with one system call
/// and handled without a trip through the scheduler per message.
const READ_BATCH: usize = 64;

async fn serve(ws: &mut Socket, cx: &Arc<Context>, live: &mut Live) -> End {
    let settings = &cx.settings;
    let start = Instant::now();
    let mut heartbeat = interval_at(start + settings.heartbeat, settings.heartbeat);
    let mut reader = Reader {
        limit: RateLimit::new(settings.rate.0, settings.rate.1, start),
        awaiting_pong: false,
        now: start,
    };
    let auth_deadline = sleep(settings.auth_timeout);
    // Every connection watches the one shutdown token: a future made once
    // stays registered with it, where one made per wake-up would register
    // and unregister under the token's lock, which all workers share.
    let shutdown = cx.shutdown.cancelled();
    tokio::pin!(auth_deadline, shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return End::Close(CloseCode::GoingAway, "server shutting down".into()),
            _ = live.signals.takeover.raised() => return End::TakenOver,
            _ = live.signals.overflow.wait() => return End::SlowConsumer("outbound queue full"),
            out = live.queue.recv() => match out {
                Some(Outbound::Frame(frame)) => {
                    let write = write_batch(ws, frame, &mut live.queue, &cx.metrics);
                    match Box::pin(bounded(write, &live.signals, settings.heartbeat)).await {
                        Ok(None) => {}
                        Ok(Some((code, reason))) => return End::Close(code, reason),
                        Err(stopped) => return stopped.into(),
                    }
                }
                Some(Outbound::Close(code, reason)) => return End::Close(code, reason),
                None => return End::gone("unregistered"),
            },
            message = ws.next() => {
                // The batch is what the socket already holds: one reading
                // of the clock serves its rate limit.
                reader.now = Instant::now();
                if let Err(end) = reader.receive(ws, cx, live, message).await {
                    return end;
                }
                for _ in 1..READ_BATCH {
                    let Some(message) = ws.next().now_or_never() else { break };
                    if let Err(end) = reader.receive(ws, cx, live, message).await {
                        return end;
                    }
                }
            }
            _ = heartbeat.tick() => {
                if reader.awaiting_pong {
                    return End::Dead;
                }
                reader.awaiting_pong = true;
                let ping = ws.send(Message::Ping(Default::default()));
                if let Err(stopped) = Box::pin(bounded(ping, &live.signals, settings.heartbeat)).await {
                    return stopped.into();
                }
            }
            _ = &mut auth_deadline, if !live.conn.is_authenticated() => {
                return End::Close(CloseCode::AuthTimeout, "not authenticated in time".into());
            }
        }
    }
}

/// The reading side's state: the rate limit every inbound message passes,
/// whether the last ping is still unanswered, and when the batch being
/// handled was read.
struct Reader {
    limit: RateLimit,
    awaiting_pong: bool,
    /// A field rather than an argument of `receive`: as an argument it was
    /// kept in each of `serve`'s two `receive` futures, and an idle
    /// connection's task grew by about 130 bytes.
    now: Instant,
}

impl Reader {
    /// Handles what one read of the socket gave, in PROTOCOL.md's order of
    /// checks, as of `self.now`; `Err` ends the connection.
    async fn receive(
        &mut self,
        ws: &mut Socket,
        cx: &Context,
        live: &mut Live,
        message: Option<Result<Message, WsError>>,
    ) -> Result<(), End> {
        let router = &cx.router;
        let message = match message {
            None => return Err(End::gone("socket ended")),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                return Err(End::Close(CloseCode::TooBig, "message too big".into()));
            }
            Some(Err(WsError::Utf8(_))) => {
                return Err(End::Close(CloseCode::InvalidData, "invalid UTF-8".into()));
            }
            Some(Err(WsError::Protocol(e))) if e != ProtocolError::ResetWithoutClosingHandshake => {
                return Err(End::Close(
                    CloseCode::ProtocolError,
                    "WebSocket protocol error".into(),
                ));
            }
            Some(Err(_)) => return Err(End::gone("socket error")),
            Some(Ok(message)) => message,
        };
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            live.conn.count_message();
            let admit = self.limit.admit(self.now);
            if admit != Admit::Yes {
                // Answered, the message that closes too.
                router.rate_limited(live.conn.id());
                if admit == Admit::Abuse {
                    return Err(End::Close(CloseCode::RateAbuse, "rate limit abuse".into()));
                }
                return Ok(());
            }
        }
        match message {
            Message::Text(text) => match router.handle_text(&mut live.conn, text.as_str()) {
                Verdict::Open => {}
                Verdict::Close(code, reason) => return Err(End::Close(code, reason.into())),
                Verdict::Resume { token, cause } => {
                    Box::pin(resume(ws, cx, live, &token, cause.as_ref())).await?;
                }
                // Awaited here, so the client's later messages wait behind
                // this one, as on one node.
                Verdict::Claim(room) => {
                    if let Some(cluster) = &cx.cluster {
                        let claim = cluster.claim_for(router, live.conn.id(), room, text.as_str());
                        Box::pin(claim).await;
                    }
                }
            },
            Message::Binary(_) => router.binary_frame(live.conn.id()),
            Message::Pong(_) => self.awaiting_pong = false,
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Frame(_) => {}
            Message::Close(frame) => {
                // tungstenite has queued the answering close frame.
                let _ = Box::pin(bounded(ws.flush(), &live.signals, CLOSE_LINGER)).await;
                let clean = frame.is_some_and(|f| {
                    let code = CloseCode::from_u16(f.code.into());
                    matches!(code, Some(CloseCode::Normal | CloseCode::GoingAway))
                });
                return Err(End::Gone {
                    clean,
                    why: "client closed",
                });
            }
        }
        Ok(())
    }
}

/// Takes over the session `token` names (PROTOCOL.md, Session resume):
/// this connection becomes that client, answers `session:resumed`, and
/// then writes the queue the session kept, in order.
async fn resume(
    ws: &mut Socket,
    cx: &Context,
    live: &mut Live,
    token: &str,
    cause: Option<&CorrelationId>,
) -> Result<(), End> {
    let (router, sessions) = (&cx.router, &cx.sessions);
    let own = live.conn.id();
    let (id, queue) = match sessions.claim(token, own) {
        Some(Claim::Ready(id, queue)) => (id, queue),
        Some(Claim::Wait(id, handover)) => match handover.await {
            Ok(queue) => (id, queue),
            Err(_) => {
                router.resume_failed(own, cause, "the session ended");
                return Ok(());
            }
        },
        None => {
            let elsewhere = match &cx.cluster {
                Some(cluster) => cluster.resume(router, token, own, cx.settings.queue).await,
                None => None,
            };
            match elsewhere {
                Some(session) => session,
                None => {
                    router.resume_failed(own, cause, "unknown, used or expired resume token");
                    return Ok(());
                }
            }
        }
    };
    queue.set_message_limit(cx.settings.queue.messages);
    let replayed = queue.depth();
    let (token, takeover) = sessions.open(id);
    // This connection's own client id ends here, unseen by any room.
    sessions.forget(own);
    router.disconnect(own);
    router.adopt(&mut live.conn, id);
    live.signals = Signals {
        takeover,
        overflow: queue.overflow(),
    };
    live.queue = queue;
    tracing::info!(client = %id, replaced = %own, replayed, "session resumed");
    let frame = router.resumed(id, &token, replayed, cause);
    cx.metrics.messages_out.inc(event::SESSION_RESUMED);
    let write = ws.send(Message::Text(frame));
    Ok(bounded(write, &live.signals, cx.settings.heartbeat).await?)
}
