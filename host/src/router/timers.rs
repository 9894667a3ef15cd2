//! Room timers (`set-timer`): a task of their own that owns every pending
//! timer, ordered by when it is due. A timer fires on the plugin of its
//! name in the room's chain live at that moment, under the room's lock,
//! and only while the room exists; shutdown drops whatever is pending.
//!
//! In a cluster each timer is also written to its room's mirror until it
//! fires, so that the node that takes a room over from a dead owner fires
//! the room's timers on time ([`Router::restore_timer`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Router;
use crate::ids::RoomId;
use crate::plugins::unix_millis;
use crate::record::input;

/// Schedules timers on the timer task.
pub(super) struct Timers {
    requests: mpsc::UnboundedSender<Timer>,
}

struct Timer {
    due: Instant,
    /// Names its record in the room's mirror.
    id: u64,
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

    fn schedule(&self, id: u64, plugin: Arc<str>, room: RoomId, delay: Duration, tag: String) {
        let timer = Timer {
            due: Instant::now() + delay,
            id,
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
    // By due time, then in the order set: the count breaks ties.
    let mut pending = BTreeMap::new();
    let mut set = 0u64;
    loop {
        let next = pending.first_key_value().map(|(&(due, _), _)| due);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            request = requests.recv() => match request {
                Some(timer) => {
                    set += 1;
                    pending.insert((timer.due, set), timer);
                }
                None => return,
            },
            _ = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                while let Some(entry) = pending.first_entry().filter(|e| e.key().0 <= now) {
                    let timer = entry.remove();
                    let Some(router) = router.upgrade() else {
                        return;
                    };
                    router.fire(&timer);
                }
            }
        }
    }
}

impl Router {
    /// A plugin's `set-timer`.
    pub(super) fn set_timer(&self, plugin: Arc<str>, room: RoomId, delay_ms: u32, tag: String) {
        let id = rand::random();
        let delay = Duration::from_millis(delay_ms.into());
        // A room this node does not own (a join `rooms` refused) is not
        // mirrored: nobody would take it over and delete the record.
        if let Some(link) = self.link.as_ref().filter(|_| self.hub.owns(&room)) {
            let due = unix_millis() + u64::from(delay_ms);
            link.timer(&room, id, Some((&plugin, &tag, due)));
        }
        self.timers.schedule(id, plugin, room, delay, tag);
    }

    /// A timer of a room taken over from a dead node, from the room's
    /// mirror: due at `due` (Unix ms), at once if that has passed.
    pub(crate) fn restore_timer(
        &self,
        room: &RoomId,
        id: u64,
        plugin: &str,
        tag: String,
        due: u64,
    ) {
        let delay = Duration::from_millis(due.saturating_sub(unix_millis()));
        self.timers
            .schedule(id, plugin.into(), room.clone(), delay, tag);
    }

    fn fire(&self, timer: &Timer) {
        if let Some(link) = &self.link {
            link.timer(&timer.room, timer.id, None);
        }
        let _guard = self.hub.lock_room(&timer.room);
        if !self.hub.room_exists(&timer.room) {
            return;
        }
        let live = self.registry.live();
        let chain = self.room_chain(live.chains(), Some(&timer.room)).0;
        let Some(plugin) = chain
            .plugins
            .iter()
            .find(|p| *p.name == *timer.plugin && p.descriptor.hooks.timer)
        else {
            return;
        };
        let tap = self.tap(Some(&timer.room));
        let input = || input::timer(&timer.room, &timer.tag);
        let live = || plugin.on_timer(timer.room.as_str(), &timer.tag);
        match self.call(tap.as_ref(), plugin, input, live) {
            Ok(called) => self.apply(called.effects),
            Err(fault) => tracing::warn!(room = %timer.room, "timer: {fault}"),
        }
    }
}
