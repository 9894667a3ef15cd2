//! Room timers (`set-timer`): a task of their own that owns every pending
//! timer, ordered by when it is due. A timer fires on the plugin of its
//! name in the chain live at that moment, under the room's lock, and only
//! while the room exists; shutdown drops whatever is pending.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Router;
use crate::ids::RoomId;

/// Schedules timers on the timer task.
pub(super) struct Timers {
    requests: mpsc::UnboundedSender<Timer>,
}

struct Timer {
    due: Instant,
    /// Keeps timers due at the same instant in the order they were set.
    seq: u64,
    plugin: Arc<str>,
    room: RoomId,
    tag: String,
}

impl Timers {
    /// Starts the task. It holds the router weakly: a router that is gone
    /// has no timers left to fire.
    pub(super) fn spawn(router: Weak<Router>, shutdown: CancellationToken) -> Timers {
        let (requests, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(pending, router, shutdown));
        Timers { requests }
    }

    pub(super) fn schedule(&self, plugin: Arc<str>, room: RoomId, delay_ms: u32, tag: String) {
        let timer = Timer {
            due: Instant::now() + Duration::from_millis(delay_ms.into()),
            seq: 0,
            plugin,
            room,
            tag,
        };
        // Fails only once the task has ended, at shutdown.
        let _ = self.requests.send(timer);
    }
}

async fn run(
    mut requests: mpsc::UnboundedReceiver<Timer>,
    router: Weak<Router>,
    shutdown: CancellationToken,
) {
    let mut pending = BinaryHeap::new();
    let mut set = 0u64;
    loop {
        let next = pending
            .peek()
            .map(|Reverse(timer): &Reverse<Timer>| timer.due);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            request = requests.recv() => match request {
                Some(mut timer) => {
                    set += 1;
                    timer.seq = set;
                    pending.push(Reverse(timer));
                }
                None => return,
            },
            _ = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                while pending.peek().is_some_and(|Reverse(timer)| timer.due <= now) {
                    let (Some(Reverse(timer)), Some(router)) = (pending.pop(), router.upgrade()) else {
                        return;
                    };
                    router.fire(&timer);
                }
            }
        }
    }
}

impl Router {
    fn fire(&self, timer: &Timer) {
        let chain = self.registry.chain();
        let Some(plugin) = chain
            .plugins
            .iter()
            .find(|p| *p.name == *timer.plugin && p.descriptor.hooks.timer)
        else {
            return;
        };
        let _guard = self.hub.lock_room(&timer.room);
        if !self.hub.room_exists(&timer.room) {
            return;
        }
        match plugin.on_timer(timer.room.as_str(), &timer.tag) {
            Ok(called) => self.apply(called.effects),
            Err(fault) => tracing::warn!(room = %timer.room, "timer: {fault}"),
        }
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}
