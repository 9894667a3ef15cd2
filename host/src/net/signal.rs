//! `Signal`: a flag that, once raised, stays raised, and wakes the one task
//! waiting for it.
//!
//! A connection's task watches its takeover and overflow signals and its
//! queue on every wake. Waiting on a `tokio::sync::Notify` takes its lock
//! twice (to enter the waiter list, and to leave it when the `select!`
//! drops the future); at a few thousand messages a second those waits
//! were 2.5 % of the server's samples. Waiting here is a compare-and-swap
//! on the waiter's slot, which stays filled between waits.

use std::future::poll_fn;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// Waited for by one task at a time: a second waiter takes the slot, and
/// the first is no longer woken.
#[derive(Default)]
pub(crate) struct Signal {
    raised: AtomicBool,
    waiter: AtomicWaker,
}

impl Signal {
    /// Raises the flag for good and wakes the waiter, if any.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Release);
        self.waiter.wake();
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Acquire)
    }

    /// Resolves once the flag is raised; at once if it already is.
    pub(crate) async fn raised(&self) {
        poll_fn(|cx| self.poll_raised(cx)).await
    }

    fn poll_raised(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_raised() {
            return Poll::Ready(());
        }
        self.waiter.register(cx.waker());
        // Raised between the check and the registration: that wake found
        // no waiter.
        match self.is_raised() {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;

    #[test]
    fn a_raised_signal_stays_raised() {
        let signal = Signal::default();
        assert!(signal.raised().now_or_never().is_none());
        signal.raise();
        assert!(signal.raised().now_or_never().is_some());
        assert!(signal.raised().now_or_never().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raising_wakes_the_waiting_task() {
        let signal = Arc::new(Signal::default());
        let waiter = tokio::spawn({
            let signal = Arc::clone(&signal);
            async move { signal.raised().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        signal.raise();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was woken")
            .unwrap();
    }
}
