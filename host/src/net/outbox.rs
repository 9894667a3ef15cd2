//! A client's outbound queue, bounded in messages and bytes. A client that
//! stops reading fills its own queue and is disconnected; senders never
//! wait, so nobody else slows down.
//!
//! It is a locked `VecDeque` rather than a channel: an idle connection's
//! queue is empty, and an empty `VecDeque` holds a few dozen bytes where a
//! channel keeps a block of slots allocated for its whole life.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

use super::signal::Signal;
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
    /// The [`Inbox`]'s task while it waits in [`Recv`], woken by the first
    /// push and when the last sender goes: a slot and a flag, where a
    /// `Notify` took a lock to enter its list and one to leave it on every
    /// wake of the task (see `signal`).
    pushed: AtomicWaker,
    /// A [`Recv`] is waiting. Cleared when one is dropped, so the pushes
    /// that come while the task is busy elsewhere do not wake it again
    /// for nothing (a saturated relay cost 8 % more CPU a message with
    /// the waker left registered).
    waiting: AtomicBool,
    /// Live [`Outbox`] clones; at zero nothing more can arrive.
    senders: AtomicUsize,
    /// The [`Inbox`] is gone: pushes are dropped.
    closed: AtomicBool,
    messages: AtomicUsize,
    bytes: AtomicUsize,
    overflow: Signal,
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
        pushed: AtomicWaker::new(),
        waiting: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        closed: AtomicBool::new(false),
        messages: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        overflow: Signal::default(),
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
            shared.overflow.raise();
            return;
        }
        queue.push_back(message);
        drop(queue);
        shared.wake_receiver();
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
        if self.shared.senders.fetch_sub(1, SeqCst) == 1 {
            self.shared.wake_receiver();
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
    /// Wakes a waiting [`Recv`]. After a push, the queue's lock orders
    /// this: a `Recv` that raised `waiting` before the push is seen here,
    /// and one that raised it after looks at the queue again. After the
    /// last sender goes, no lock is taken between the two, so `waiting`
    /// and `senders` are `SeqCst`: this sees `waiting` raised, or the
    /// `Recv` sees no senders.
    fn wake_receiver(&self) {
        if self.waiting.swap(false, SeqCst) {
            self.pushed.wake();
        }
    }

    fn uncount(&self, bytes: usize) {
        self.messages.fetch_sub(1, Relaxed);
        self.bytes.fetch_sub(bytes, Relaxed);
    }
}

impl Inbox {
    /// The next message; `None` once every sender is gone and the queue is
    /// empty.
    pub fn recv(&mut self) -> Recv<'_> {
        Recv { inbox: self }
    }

    /// The next message, or `None` if none can come; `Pending` if one may.
    fn poll_ready(&mut self) -> Poll<Option<Outbound>> {
        if let Some(message) = self.try_recv() {
            return Poll::Ready(Some(message));
        }
        match self.shared.senders.load(SeqCst) {
            // Nothing can be pushed now; one may have been since the try.
            0 => Poll::Ready(self.try_recv()),
            _ => Poll::Pending,
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
        self.shared.overflow.is_raised()
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

/// [`Inbox::recv`]'s future.
pub struct Recv<'a> {
    inbox: &'a mut Inbox,
}

impl Future for Recv<'_> {
    type Output = Option<Outbound>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        let inbox = &mut *self.inbox;
        if let Poll::Ready(next) = inbox.poll_ready() {
            return Poll::Ready(next);
        }
        let shared = &inbox.shared;
        shared.pushed.register(cx.waker());
        shared.waiting.store(true, SeqCst);
        // A push between the look above and raising `waiting` woke nobody.
        inbox.poll_ready()
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.inbox.shared.waiting.store(false, Relaxed);
    }
}

impl Overflow {
    /// Resolves once the queue has overflowed; one task waits at a time.
    pub async fn wait(&self) {
        self.0.overflow.raised().await;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use futures_util::task::{ArcWake, waker};

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
        assert!(inbox.overflowed());
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

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl ArcWake for Wakes {
        fn wake_by_ref(wakes: &Arc<Self>) {
            wakes.0.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn a_push_wakes_a_waiting_recv_once_and_a_dropped_one_never() {
        let (outbox, mut inbox) = queue(QueueLimits {
            messages: 8,
            bytes: 1 << 20,
        });
        let wakes = Arc::new(Wakes::default());
        let waker = waker(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        {
            let mut recv = pin!(inbox.recv());
            assert!(recv.as_mut().poll(&mut cx).is_pending());
            outbox.push(Outbound::Frame(Frame::from("x")));
            outbox.push(Outbound::Frame(Frame::from("y")));
            assert_eq!(wakes.0.load(Relaxed), 1);
            assert!(matches!(recv.poll(&mut cx), Poll::Ready(Some(_))));
        }
        assert!(inbox.try_recv().is_some());
        // The task waited, then went on to something else.
        assert!(pin!(inbox.recv()).poll(&mut cx).is_pending());
        outbox.push(Outbound::Frame(Frame::from("z")));
        assert_eq!(wakes.0.load(Relaxed), 1);
        assert!(inbox.try_recv().is_some());
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
