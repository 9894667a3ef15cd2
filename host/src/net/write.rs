//! Writing to a connection's socket: batches of queued frames with one
//! flush, close frames, and the bound that drops a client which stops
//! reading.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::sleep;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::outbox::{Inbox, Outbound, Overflow};
use super::read_ahead::ReadAhead;
use super::signal::Signal;
use crate::envelope::{self, Frame};
use crate::metrics::Metrics;
use crate::vocab::CloseCode;

pub(crate) type Socket = WebSocketStream<ReadAhead<TcpStream>>;

/// Outbound frames written before one flush: a burst of relays for one
/// client goes out in a few system calls, and the task gets back to its
/// reading between batches.
const WRITE_BATCH: usize = 256;
/// How long to wait for the client's answer to our close frame.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What ends a connection's writing early, apart from the socket: held
/// apart from its queue so a write can watch it while borrowing the queue.
pub(crate) struct Signals {
    /// Fires when another connection resumes this session.
    pub(crate) takeover: Arc<Signal>,
    pub(crate) overflow: Overflow,
}

/// Why a bounded write did not finish.
pub(crate) enum Stopped {
    /// The socket failed.
    Failed,
    /// Another connection resumed the session.
    TakenOver,
    /// The client is not reading fast enough.
    SlowConsumer(&'static str),
}

/// Runs a write to the socket unless the client stops keeping up (its
/// queue overflows while the write waits, or the socket takes nothing for
/// `patience`: it is dropped) or another connection resumes its session.
///
/// Callers box it: its state (a timer, the frame being fed) then exists
/// only while a write is under way, not in every idle connection's task.
pub(crate) async fn bounded<T>(
    write: impl Future<Output = Result<T, WsError>>,
    signals: &Signals,
    patience: Duration,
) -> Result<T, Stopped> {
    let mut write = pin!(write);
    // Most writes finish at once, the socket's buffer having room: they
    // need no timer, and arming one reads the clock and takes the timer
    // wheel's lock, which every worker shares.
    if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        return result.map_err(|_| Stopped::Failed);
    }
    tokio::select! {
        result = write => result.map_err(|_| Stopped::Failed),
        _ = signals.takeover.raised() => Err(Stopped::TakenOver),
        _ = signals.overflow.wait() => Err(Stopped::SlowConsumer("outbound queue full")),
        _ = sleep(patience) => Err(Stopped::SlowConsumer("socket stalled")),
    }
}

/// Writes `first` and whatever else is already queued, then flushes once.
/// Returns a close request found in the queue.
pub(crate) async fn write_batch(
    ws: &mut Socket,
    first: Frame,
    queue: &mut Inbox,
    metrics: &Metrics,
) -> Result<Option<(CloseCode, String)>, WsError> {
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
pub(crate) async fn flush_queue(ws: &mut Socket, queue: &mut Inbox, metrics: &Metrics) {
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
pub(crate) async fn send_close(ws: &mut Socket, code: CloseCode, reason: &str) -> bool {
    let frame = CloseFrame {
        code: WsCloseCode::from(code.as_u16()),
        reason: Utf8Bytes::from(reason),
    };
    ws.send(Message::Close(Some(frame))).await.is_ok()
}

/// Gives the client a moment to answer our close frame; a silent one is
/// dropped.
pub(crate) async fn linger(ws: &mut Socket) {
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}
