//! A client's outbound queue, bounded in messages and bytes. A client that
//! stops reading fills its own queue and is disconnected; senders never
//! wait, so nobody else slows down.
//!
//! It is a locked `VecDeque` rather than a channel: an idle connection's
//! queue is empty, and an empty `VecDeque` holds a few dozen bytes where a
//! channel keeps a block of slots allocated for its whole life.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::envelope::Frame;
use crate::vocab::CloseCode;

/// What a connection task is asked to write.
#[derive(Debug)]
pub enum Outbound {
    Frame(Frame),
    /// Close the connection with this code and reason.
    Close(CloseCode, String),
}

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
    queue: Mutex<VecDeque<Outbound>>,
    /// Woken by a push, and when the last sender goes.
    pushed: Notify,
    /// Live [`Outbox`] clones; at zero nothing more can arrive.
    senders: AtomicUsize,
    /// The [`Inbox`] is gone: pushes are dropped.
    closed: AtomicBool,
    messages: AtomicUsize,
    bytes: AtomicUsize,
    overflowed: AtomicBool,
    overflow: Notify,
}

/// The sending side, kept in the hub.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side, owned by the client's connection task.
pub struct Inbox {
    shared: Arc<Shared>,
}

/// Resolves once the queue has overflowed; held apart from the [`Inbox`]
/// so a blocked write can race it.
pub(crate) struct Overflow(Arc<Shared>);

pub fn queue(limits: QueueLimits) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        max_messages: AtomicUsize::new(limits.messages),
        max_bytes: limits.bytes,
        queue: Mutex::new(VecDeque::new()),
        pushed: Notify::new(),
        senders: AtomicUsize::new(1),
        closed: AtomicBool::new(false),
        messages: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        overflowed: AtomicBool::new(false),
        overflow: Notify::new(),
    });
    (
        Outbox {
            shared: Arc::clone(&shared),
        },
        Inbox { shared },
    )
}

impl Outbox {
    /// Queues a message. A frame that does not fit is dropped and the
    /// queue marked overflowed; a close request always fits.
    pub(crate) fn push(&self, message: Outbound) {
        let bytes = size(&message);
        let shared = &self.shared;
        // Checked under the queue's lock, which the [`Inbox`] holds while it
        // closes and empties the queue: a push either lands before that (and
        // is uncounted with the rest) or sees the queue closed.
        let mut queue = shared.queue.lock();
        if shared.closed.load(Relaxed) {
            // The connection is on its way out.
            return;
        }
        let messages = shared.messages.fetch_add(1, Relaxed) + 1;
        let total = shared.bytes.fetch_add(bytes, Relaxed) + bytes;
        let fits = messages <= shared.max_messages.load(Relaxed) && total <= shared.max_bytes;
        if bytes > 0 && !fits {
            drop(queue);
            shared.uncount(bytes);
            if !shared.overflowed.swap(true, Relaxed) {
                shared.overflow.notify_one();
            }
            return;
        }
        queue.push_back(message);
        drop(queue);
        shared.pushed.notify_one();
    }

    pub(crate) fn depth(&self) -> usize {
        self.shared.messages.load(Relaxed)
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Outbox {
        self.shared.senders.fetch_add(1, Relaxed);
        Outbox {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Relaxed) == 1 {
            self.shared.pushed.notify_one();
        }
    }
}

fn size(message: &Outbound) -> usize {
    match message {
        Outbound::Frame(frame) => frame.len(),
        Outbound::Close(..) => 0,
    }
}

impl Shared {
    fn uncount(&self, bytes: usize) {
        self.messages.fetch_sub(1, Relaxed);
        self.bytes.fetch_sub(bytes, Relaxed);
    }
}

impl Inbox {
    /// The next message; `None` once every sender is gone and the queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            if let Some(message) = self.try_recv() {
                return Some(message);
            }
            if self.shared.senders.load(Relaxed) == 0 {
                return None;
            }
            // A push after the check above left a permit: nothing is missed.
            self.shared.pushed.notified().await;
        }
    }

    pub fn try_recv(&mut self) -> Option<Outbound> {
        let message = self.shared.queue.lock().pop_front()?;
        self.shared.uncount(size(&message));
        Some(message)
    }

    /// Messages waiting.
    pub(crate) fn depth(&self) -> usize {
        self.shared.messages.load(Relaxed)
    }

    /// Changes how many messages the queue holds before it overflows; what
    /// is queued already stays.
    pub(crate) fn set_message_limit(&self, limit: usize) {
        self.shared.max_messages.store(limit, Relaxed);
    }

    pub(crate) fn overflow(&self) -> Overflow {
        Overflow(Arc::clone(&self.shared))
    }

    /// Whether a frame has been dropped for want of room.
    pub(crate) fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Relaxed)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let dropped = {
            let mut queue = self.shared.queue.lock();
            self.shared.closed.store(true, Relaxed);
            std::mem::take(&mut *queue)
        };
        for message in &dropped {
            self.shared.uncount(size(message));
        }
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
        outbox.push(Outbound::Close(CloseCode::Normal, String::new()));
        assert_eq!(outbox.depth(), 3);
        while inbox.try_recv().is_some() {}
        assert_eq!(outbox.depth(), 0);
        assert_eq!(inbox.shared.bytes.load(Relaxed), 0);
    }

    #[test]
    fn recv_ends_when_the_last_sender_goes_and_the_queue_is_empty() {
        let (outbox, mut inbox) = queue(QueueLimits {
            messages: 4,
            bytes: 1 << 20,
        });
        let other = outbox.clone();
        other.push(Outbound::Frame(Frame::from("x")));
        drop(other);
        drop(outbox);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(matches!(inbox.recv().await, Some(Outbound::Frame(_))));
            assert!(inbox.recv().await.is_none());
        });
    }

    #[test]
    fn pushes_after_the_inbox_is_gone_are_dropped_uncounted() {
        let (outbox, inbox) = queue(QueueLimits {
            messages: 4,
            bytes: 1 << 20,
        });
        outbox.push(Outbound::Frame(Frame::from("x")));
        drop(inbox);
        outbox.push(Outbound::Frame(Frame::from("y")));
        assert_eq!(outbox.depth(), 0);
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
