//! Shadow runs: a candidate version of a chain entry is asked every call
//! the live version answers (the same input, against a
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
use serde::{Deserialize, Serialize};
use switchboard_recording::{Decision, Input, View};

use crate::plugins::{Plugin, Registry, Role, Scratch, lower_priority, unix_millis};

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
    /// `None`: a call about no room.
    room: Option<String>,
    input: Input,
    view: View,
    now: u64,
    live: Decision,
}

/// What a shadow has compared so far.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Figures {
    pub(crate) calls: u64,
    pub(crate) differences: u64,
    /// By event (`auth`, `disconnect` and `timer` for those hooks).
    pub(crate) events: BTreeMap<String, EventFigures>,
    /// The latest differences, oldest first.
    pub(crate) sample: VecDeque<Difference>,
}

/// A node's figures of a shadow, as it reports them to the other nodes.
#[derive(Serialize, Deserialize)]
pub(crate) struct Report {
    /// The candidate's hash.
    pub(crate) candidate: String,
    pub(crate) figures: Figures,
    pub(crate) dropped: u64,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct EventFigures {
    pub(crate) calls: u64,
    pub(crate) differences: u64,
}

/// One call the versions decided differently.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Difference {
    /// When the candidate answered, in Unix milliseconds.
    pub(crate) at: u64,
    pub(crate) event: String,
    /// `None`: a call about no room.
    pub(crate) room: Option<String>,
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
    /// queue. A candidate no room runs keeps no instances again.
    pub(crate) fn stop(&self, entry: &str, registry: &Registry) -> Option<Arc<Shadow>> {
        let stopped = {
            let mut by_entry = self.by_entry.write();
            let stopped = by_entry.remove(entry);
            self.active.store(by_entry.len(), Relaxed);
            stopped?
        };
        let idle = registry.versions(entry).is_ok_and(|versions| {
            (versions.iter())
                .any(|(p, role)| p.hash == stopped.candidate.hash && *role == Role::Idle)
        });
        if idle {
            stopped.candidate.retire();
        }
        Some(stopped)
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
    pub(crate) fn ask(
        &self,
        room: Option<String>,
        input: Input,
        view: View,
        now: u64,
        live: Decision,
    ) {
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

    pub(crate) fn report(&self) -> Report {
        Report {
            candidate: self.candidate.hash.clone(),
            figures: self.figures(),
            dropped: self.dropped(),
        }
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
            at: unix_millis(),
            event: label(&call.input),
            room: call.room.clone(),
            live: call.live.to_string(),
            shadow: shadow.to_string(),
        });
    }
}

impl Figures {
    /// Adds another node's figures of the same shadow; the sample keeps
    /// the latest differences of both.
    pub(crate) fn merge(&mut self, other: Figures) {
        self.calls += other.calls;
        self.differences += other.differences;
        for (event, counts) in other.events {
            let mine = self.events.entry(event).or_default();
            mine.calls += counts.calls;
            mine.differences += counts.differences;
        }
        let mut sample: Vec<Difference> = self.sample.drain(..).chain(other.sample).collect();
        sample.sort_by_key(|difference| difference.at);
        let skip = sample.len().saturating_sub(SAMPLE);
        self.sample = sample.into_iter().skip(skip).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(node: &str, calls: u64, differences: &[u64]) -> Figures {
        let mut figures = Figures {
            calls,
            differences: differences.len() as u64,
            ..Figures::default()
        };
        let event = figures.events.entry("chat:message".into()).or_default();
        (event.calls, event.differences) = (calls, differences.len() as u64);
        figures.sample = (differences.iter())
            .map(|&at| Difference {
                at,
                event: "chat:message".into(),
                room: Some(node.into()),
                live: "done".into(),
                shadow: "refused".into(),
            })
            .collect();
        figures
    }

    #[test]
    fn merged_figures_add_up_and_keep_the_latest_differences_of_both() {
        let mut mine = figures("a", 10, &[1, 3]);
        mine.merge(figures("b", 5, &[2]));
        assert_eq!((mine.calls, mine.differences), (15, 3));
        let event = &mine.events["chat:message"];
        assert_eq!((event.calls, event.differences), (15, 3));
        let at: Vec<u64> = mine.sample.iter().map(|d| d.at).collect();
        assert_eq!(at, [1, 2, 3]);

        let many: Vec<u64> = (100..100 + SAMPLE as u64).collect();
        mine.merge(figures("c", 0, &many));
        assert_eq!(mine.sample.len(), SAMPLE);
        assert_eq!(mine.sample.front().map(|d| d.at), Some(100));
    }
}
