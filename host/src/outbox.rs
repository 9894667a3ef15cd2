//! A client's outbound queue, bounded in messages and bytes. A client that
//! stops reading fills its own queue and is disconnected; senders never
//! wait, so nobody else slows down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use tokio::sync::{Notify, mpsc};

use crate::hub::Outbound;

#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    pub messages: usize,
    pub bytes: usize,
}

struct Shared {
    /// Lowered to the replay limit while the client's session waits for a
    /// resume.
    max_messages: AtomicUsize,
    max_bytes: usize,
    messages: AtomicUsize,
    bytes: AtomicUsize,
    overflowed: AtomicBool,
    overflow: Notify,
}

/// The sending side, kept in the hub.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outbound>,
    shared: Arc<Shared>,
}

/// The receiving side, owned by the client's connection task.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Outbound>,
    shared: Arc<Shared>,
}

/// Resolves once the queue has overflowed; held apart from the [`Inbox`]
/// so a blocked write can race it.
pub struct Overflow(Arc<Shared>);

pub fn queue(limits: QueueLimits) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        max_messages: AtomicUsize::new(limits.messages),
        max_bytes: limits.bytes,
        messages: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        overflowed: AtomicBool::new(false),
        overflow: Notify::new(),
    });
    (
        Outbox {
            tx,
            shared: Arc::clone(&shared),
        },
        Inbox { rx, shared },
    )
}

impl Outbox {
    /// Queues a message. A frame that does not fit is dropped and the
    /// queue marked overflowed; a close request always fits.
    pub fn push(&self, message: Outbound) {
        let bytes = match &message {
            Outbound::Frame(frame) => frame.len(),
            Outbound::Close(..) => 0,
        };
        let shared = &self.shared;
        // Counted before sending, so the receiver never takes away what is
        // not there yet.
        let messages = shared.messages.fetch_add(1, Relaxed) + 1;
        let total = shared.bytes.fetch_add(bytes, Relaxed) + bytes;
        let fits = messages <= shared.max_messages.load(Relaxed) && total <= shared.max_bytes;
        if bytes > 0 && !fits {
            shared.uncount(bytes);
            if !shared.overflowed.swap(true, Relaxed) {
                shared.overflow.notify_one();
            }
            return;
        }
        if self.tx.send(message).is_err() {
            // The connection is on its way out.
            shared.uncount(bytes);
        }
    }

    pub fn depth(&self) -> usize {
        self.shared.messages.load(Relaxed)
    }
}

impl Shared {
    fn uncount(&self, bytes: usize) {
        self.messages.fetch_sub(1, Relaxed);
        self.bytes.fetch_sub(bytes, Relaxed);
    }
}

impl Inbox {
    pub async fn recv(&mut self) -> Option<Outbound> {
        let message = self.rx.recv().await?;
        self.taken(&message);
        Some(message)
    }

    pub fn try_recv(&mut self) -> Option<Outbound> {
        let message = self.rx.try_recv().ok()?;
        self.taken(&message);
        Some(message)
    }

    /// Messages waiting.
    pub fn depth(&self) -> usize {
        self.shared.messages.load(Relaxed)
    }

    /// Changes how many messages the queue holds before it overflows; what
    /// is queued already stays.
    pub fn set_message_limit(&self, limit: usize) {
        self.shared.max_messages.store(limit, Relaxed);
    }

    pub fn overflow(&self) -> Overflow {
        Overflow(Arc::clone(&self.shared))
    }

    fn taken(&self, message: &Outbound) {
        let bytes = match message {
            Outbound::Frame(frame) => frame.len(),
            Outbound::Close(..) => 0,
        };
        self.shared.uncount(bytes);
    }
}

impl Overflow {
    pub async fn wait(&self) {
        self.0.overflow.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Frame;

    #[test]
    fn a_full_queue_drops_frames_and_signals_once() {
        let (outbox, mut inbox) = queue(QueueLimits {
            messages: 2,
            bytes: 1 << 20,
        });
        for _ in 0..3 {
            outbox.push(Outbound::Frame(Frame::from("x")));
        }
        assert_eq!(outbox.depth(), 2);
        assert!(inbox.shared.overflowed.load(Relaxed));
        outbox.push(Outbound::Close(1000, String::new()));
        assert_eq!(outbox.depth(), 3);
        while inbox.try_recv().is_some() {}
        assert_eq!(outbox.depth(), 0);
        assert_eq!(inbox.shared.bytes.load(Relaxed), 0);
    }

    #[test]
    fn the_byte_limit_counts_frame_lengths() {
        let (outbox, _inbox) = queue(QueueLimits {
            messages: 100,
            bytes: 5,
        });
        outbox.push(Outbound::Frame(Frame::from("abc")));
        outbox.push(Outbound::Frame(Frame::from("abc")));
        assert_eq!(outbox.depth(), 1);
    }
}
