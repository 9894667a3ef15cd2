//! Shadow runs: a candidate version of a chain entry is asked every call
//! the live version answers about a room (the same input, against a
//! scratch world built from the view the live call had), and the two
//! decisions are compared. Nothing the candidate decides is sent or
//! stored: its writes stay in its scratch world.
//!
//! The live call only takes a view and hands the call over: the
//! candidate runs on a thread of the shadow's own, at low priority, which
//! takes what was queued every [`POLL`] rather than being woken for each
//! call (a wake is a system call on the live path); a call that finds the
//! queue full is dropped and counted, never waited for.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use switchboard_recording::{Decision, Input, View};

use crate::plugins::{Plugin, Scratch, lower_priority};

/// Calls queued for a shadow's thread before more are dropped.
const QUEUE: usize = 4096;
/// How often the shadow's thread takes the calls queued.
const POLL: Duration = Duration::from_millis(5);
/// Differences kept for the admin API, the latest ones.
const SAMPLE: usize = 32;

/// The shadows running, by chain entry.
#[derive(Default)]
pub(crate) struct Shadows {
    /// How many are running: all a call reads while there are none.
    active: AtomicUsize,
    by_entry: RwLock<HashMap<Arc<str>, Arc<Shadow>>>,
}

/// One entry's candidate, its queue and what the comparisons found.
pub(crate) struct Shadow {
    pub(crate) candidate: Arc<Plugin>,
    queue: Mutex<Vec<Asked>>,
    figures: Mutex<Figures>,
    dropped: AtomicU64,
}

/// A call the live version answered, for the candidate to answer too.
struct Asked {
    room: String,
    input: Input,
    view: View,
    now: u64,
    live: Decision,
}

/// What a shadow has compared so far.
#[derive(Clone, Default, Serialize)]
pub(crate) struct Figures {
    pub(crate) calls: u64,
    pub(crate) differences: u64,
    /// By event (`auth`, `disconnect` and `timer` for those hooks).
    pub(crate) events: BTreeMap<String, EventFigures>,
    /// The latest differences, oldest first.
    pub(crate) sample: VecDeque<Difference>,
}

#[derive(Clone, Default, Serialize)]
pub(crate) struct EventFigures {
    pub(crate) calls: u64,
    pub(crate) differences: u64,
}

/// One call the versions decided differently.
#[derive(Clone, Serialize)]
pub(crate) struct Difference {
    pub(crate) event: String,
    pub(crate) room: String,
    pub(crate) live: String,
    pub(crate) shadow: String,
}

impl Shadows {
    /// `entry`'s shadow, if one runs: one atomic load while none does.
    pub(crate) fn of(&self, entry: &str) -> Option<Arc<Shadow>> {
        if self.active.load(Relaxed) == 0 {
            return None;
        }
        self.by_entry.read().get(entry).cloned()
    }

    pub(crate) fn any(&self) -> bool {
        self.active.load(Relaxed) != 0
    }

    /// Starts shadowing `candidate`'s entry with it, replacing a shadow
    /// the entry had; returns the one it replaced.
    pub(crate) fn start(&self, candidate: Arc<Plugin>) -> anyhow::Result<Option<Arc<Shadow>>> {
        let shadow = Arc::new(Shadow {
            candidate: Arc::clone(&candidate),
            queue: Mutex::default(),
            figures: Mutex::default(),
            dropped: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shadow);
        std::thread::Builder::new()
            .name(format!("shadow-{}", candidate.name))
            .spawn(move || worker.answer())?;
        // Its calls want a warm instance, which an idle version does not
        // keep.
        candidate.revive();
        let mut by_entry = self.by_entry.write();
        let replaced = by_entry.insert(Arc::clone(&candidate.name), shadow);
        self.active.store(by_entry.len(), Relaxed);
        Ok(replaced)
    }

    /// Stops `entry`'s shadow; its thread ends at its next look at the
    /// queue.
    pub(crate) fn stop(&self, entry: &str) -> Option<Arc<Shadow>> {
        let mut by_entry = self.by_entry.write();
        let stopped = by_entry.remove(entry);
        self.active.store(by_entry.len(), Relaxed);
        stopped
    }

    /// Every running shadow, by entry.
    pub(crate) fn list(&self) -> Vec<(Arc<str>, Arc<Shadow>)> {
        let by_entry = self.by_entry.read();
        let mut list: Vec<_> = (by_entry.iter())
            .map(|(entry, shadow)| (Arc::clone(entry), Arc::clone(shadow)))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }
}

impl Shadow {
    /// Hands a call the live version answered to the candidate. Never
    /// waits: with the queue full, the call is counted as dropped.
    pub(crate) fn ask(&self, room: String, input: Input, view: View, now: u64, live: Decision) {
        let asked = Asked {
            room,
            input,
            view,
            now,
            live,
        };
        let mut queue = self.queue.lock();
        if queue.len() < QUEUE {
            queue.push(asked);
        } else {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn figures(&self) -> Figures {
        self.figures.lock().clone()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// The shadow's thread: answers each call as the candidate, until the
    /// shadow is stopped.
    fn answer(self: Arc<Self>) {
        // The candidate's calls take the cores the live ones leave idle.
        lower_priority();
        // Held weakly between looks, so that stopping the shadow (dropping
        // the last strong hold) ends this loop.
        let weak = Arc::downgrade(&self);
        drop(self);
        loop {
            std::thread::sleep(POLL);
            let Some(shadow) = weak.upgrade() else {
                return;
            };
            let asked = std::mem::take(&mut *shadow.queue.lock());
            for call in asked {
                let scratch = Scratch::from_view(&call.view);
                let decided = shadow.candidate.trace(&call.input, call.now, Some(scratch));
                shadow.record(&call, decided.decision);
            }
        }
    }

    fn record(&self, call: &Asked, shadow: Decision) {
        let differs = !call.live.same_as(&shadow);
        let mut figures = self.figures.lock();
        figures.calls += 1;
        let event = figures.events.entry(label(&call.input)).or_default();
        event.calls += 1;
        if !differs {
            return;
        }
        event.differences += 1;
        figures.differences += 1;
        if figures.sample.len() == SAMPLE {
            figures.sample.pop_front();
        }
        figures.sample.push_back(Difference {
            event: label(&call.input),
            room: call.room.clone(),
            live: call.live.to_string(),
            shadow: shadow.to_string(),
        });
    }
}

/// The event a call is counted under.
pub(crate) fn label(input: &Input) -> String {
    match input {
        Input::Event { event, .. } | Input::Relay { event, .. } => event.clone(),
        Input::Auth { .. } => "auth".into(),
        Input::Connect { .. } => "connect".into(),
        Input::Disconnect { .. } => "disconnect".into(),
        Input::Timer { .. } => "timer".into(),
    }
}
