//! Counters for `GET /metrics`, rendered as Prometheus text. Updates are
//! atomic adds; labelled counters take a read lock to find their slot,
//! except for the few labels of the relay path, which have fixed slots.
//! What every relayed message counts (its event in and out, its plugin
//! call) is counted per thread and summed when rendered: one shared
//! counter, written by every worker for every message, is a cache line
//! the workers pass back and forth.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use parking_lot::RwLock;
use thread_local::ThreadLocal;

use crate::vocab::RelayEvent;

/// Distinct label values one counter keeps before folding the rest into
/// `other`: labels come from event names, which clients and plugins choose.
const MAX_LABELS: usize = 256;

pub(crate) struct Metrics {
    pub(crate) connections_current: AtomicI64,
    pub(crate) connections_total: AtomicU64,
    /// Sessions kept for resume after an unexpected disconnect.
    pub(crate) sessions_suspended: AtomicI64,
    pub(crate) connections_closed: Labelled,
    pub(crate) messages_in: Labelled,
    pub(crate) messages_out: Labelled,
    pub(crate) errors: Labelled,
    pub(crate) swaps: Labelled,
    /// Canaries rolled back by their error budget, by plugin.
    pub(crate) canary_rollbacks: Labelled,
}

/// The labels of the events every relayed message is counted under, in and
/// out. Both workers count each one, so a shared lock's reader count would
/// bounce between their caches on every message.
fn relay_events() -> [&'static str; RelayEvent::ALL.len()] {
    RelayEvent::ALL.map(RelayEvent::as_str)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            connections_current: AtomicI64::default(),
            connections_total: AtomicU64::default(),
            sessions_suspended: AtomicI64::default(),
            connections_closed: Labelled::default(),
            messages_in: Labelled::with_fixed(&relay_events()),
            messages_out: Labelled::with_fixed(&relay_events()),
            errors: Labelled::default(),
            swaps: Labelled::default(),
            canary_rollbacks: Labelled::default(),
        }
    }
}

/// A counter family with one label.
#[derive(Default)]
pub(crate) struct Labelled {
    /// Labels counted without the lock, per thread.
    fixed: Box<[&'static str]>,
    /// Each thread's counts of the `fixed` labels, in their order.
    fixed_counts: ThreadLocal<Box<[AtomicU64]>>,
    values: RwLock<HashMap<Box<str>, AtomicU64>>,
}

impl Labelled {
    fn with_fixed(labels: &[&'static str]) -> Labelled {
        Labelled {
            fixed: labels.into(),
            fixed_counts: ThreadLocal::new(),
            values: RwLock::default(),
        }
    }

    pub(crate) fn inc(&self, label: &str) {
        if let Some(i) = self.fixed.iter().position(|fixed| *fixed == label) {
            let counts = self
                .fixed_counts
                .get_or(|| self.fixed.iter().map(|_| AtomicU64::new(0)).collect());
            bump(&counts[i], 1);
            return;
        }
        if let Some(counter) = self.values.read().get(label) {
            counter.fetch_add(1, Relaxed);
            return;
        }
        let mut values = self.values.write();
        let label = if values.len() < MAX_LABELS || values.contains_key(label) {
            label
        } else {
            "other"
        };
        values
            .entry(label.into())
            .or_default()
            .fetch_add(1, Relaxed);
    }

    /// The count of a fixed label, summed over the threads.
    fn fixed_count(&self, i: usize) -> u64 {
        let counts = self.fixed_counts.iter();
        counts.map(|counts| counts[i].load(Relaxed)).sum()
    }

    #[cfg(test)]
    fn get(&self, label: &str) -> u64 {
        match self.fixed.iter().position(|fixed| *fixed == label) {
            Some(i) => self.fixed_count(i),
            None => self.values.read().get(label).map_or(0, |c| c.load(Relaxed)),
        }
    }

    /// Renders the labels counted so far, sorted.
    fn render(&self, out: &mut String, name: &str, label: &str) {
        let values = self.values.read();
        let fixed = (self.fixed.iter().enumerate()).map(|(i, value)| (*value, self.fixed_count(i)));
        let dynamic = values
            .iter()
            .map(|(value, counter)| (&**value, counter.load(Relaxed)));
        let mut sorted: Vec<(&str, u64)> = fixed
            .chain(dynamic)
            .filter(|(_, count)| *count > 0)
            .collect();
        sorted.sort_unstable();
        for (value, count) in sorted {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
        }
    }
}

/// Upper bounds, in seconds, of the plugin call latency histogram.
pub(crate) const CALL_BUCKETS: [f64; 12] = [
    0.000_005, 0.00001, 0.000_025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 1.0,
];

/// One plugin version's call statistics.
#[derive(Default)]
pub(crate) struct CallStats {
    /// Each calling thread's counts.
    threads: ThreadLocal<Calls>,
    pub(crate) traps: AtomicU64,
    pub(crate) timeouts: AtomicU64,
}

/// Calls made on one thread: how many, how long in all, and how many
/// ended within each bucket's bound.
#[derive(Default)]
struct Calls {
    calls: AtomicU64,
    nanos: AtomicU64,
    buckets: [AtomicU64; CALL_BUCKETS.len()],
}

impl CallStats {
    pub(crate) fn record(&self, seconds: f64) {
        let calls = self.threads.get_or_default();
        bump(&calls.calls, 1);
        bump(&calls.nanos, (seconds * 1e9) as u64);
        if let Some(i) = CALL_BUCKETS.iter().position(|bound| seconds <= *bound) {
            bump(&calls.buckets[i], 1);
        }
    }

    pub(crate) fn calls(&self) -> u64 {
        self.sum(|calls| &calls.calls)
    }

    pub(crate) fn errors(&self) -> u64 {
        self.traps.load(Relaxed) + self.timeouts.load(Relaxed)
    }

    fn sum(&self, counter: impl Fn(&Calls) -> &AtomicU64) -> u64 {
        self.threads
            .iter()
            .map(|calls| counter(calls).load(Relaxed))
            .sum()
    }
}

/// Adds to a counter only its own thread writes: no locked instruction
/// is needed, and readers on other threads see each store whole.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed) + n, Relaxed);
}

/// Writes one family's `# TYPE` line.
pub(crate) fn family(out: &mut String, name: &str, kind: &str) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl Metrics {
    /// Renders everything but the plugin families, which the caller adds
    /// from the current chain with [`render_calls`].
    pub(crate) fn render(&self, out: &mut String, hub: HubGauges) {
        let scalar = |out: &mut String, name: &str, kind: &str, value: String| {
            family(out, name, kind);
            let _ = writeln!(out, "{name} {value}");
        };
        scalar(
            out,
            "switchboard_connections_current",
            "gauge",
            self.connections_current.load(Relaxed).to_string(),
        );
        scalar(
            out,
            "switchboard_connections_total",
            "counter",
            self.connections_total.load(Relaxed).to_string(),
        );
        scalar(
            out,
            "switchboard_sessions_suspended",
            "gauge",
            self.sessions_suspended.load(Relaxed).to_string(),
        );
        scalar(out, "switchboard_rooms", "gauge", hub.rooms.to_string());
        scalar(
            out,
            "switchboard_outbound_queue_depth",
            "gauge",
            hub.queued.to_string(),
        );
        scalar(
            out,
            "switchboard_tasks_alive",
            "gauge",
            hub.tasks.to_string(),
        );
        let families = [
            (
                &self.connections_closed,
                "switchboard_connections_closed_total",
                "reason",
            ),
            (&self.messages_in, "switchboard_messages_in_total", "event"),
            (
                &self.messages_out,
                "switchboard_messages_out_total",
                "event",
            ),
            (&self.errors, "switchboard_errors_total", "code"),
            (&self.swaps, "switchboard_plugin_swaps_total", "result"),
            (
                &self.canary_rollbacks,
                "switchboard_canary_rollbacks_total",
                "plugin",
            ),
        ];
        for (counter, name, label) in families {
            family(out, name, "counter");
            counter.render(out, name, label);
        }
    }
}

/// Readings taken when `/metrics` is asked for.
pub(crate) struct HubGauges {
    pub(crate) rooms: usize,
    /// Messages queued for clients and not yet written.
    pub(crate) queued: usize,
    /// The runtime's live tasks: each connection, timer and grace period
    /// is one, so a leak shows here.
    pub(crate) tasks: usize,
}

/// Renders the plugin families for `(plugin, version, stats)`.
pub(crate) fn render_calls(out: &mut String, plugins: &[(&str, &str, &CallStats)]) {
    let labels = |plugin: &str, version: &str| {
        format!(
            "plugin=\"{}\",version=\"{}\"",
            escape(plugin),
            escape(version)
        )
    };
    let simple = [
        (
            "switchboard_plugin_calls_total",
            CallStats::calls as fn(&CallStats) -> u64,
        ),
        ("switchboard_plugin_traps_total", |s| s.traps.load(Relaxed)),
        ("switchboard_plugin_timeouts_total", |s| {
            s.timeouts.load(Relaxed)
        }),
    ];
    for (name, value) in simple {
        family(out, name, "counter");
        for (plugin, version, stats) in plugins {
            let _ = writeln!(
                out,
                "{name}{{{}}} {}",
                labels(plugin, version),
                value(stats)
            );
        }
    }
    let name = "switchboard_plugin_call_seconds";
    family(out, name, "histogram");
    for (plugin, version, stats) in plugins {
        let labels = labels(plugin, version);
        let mut cumulative = 0;
        for (i, bound) in CALL_BUCKETS.iter().enumerate() {
            cumulative += stats.sum(|calls| &calls.buckets[i]);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let calls = stats.calls();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {calls}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            stats.sum(|calls| &calls.nanos) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {calls}");
    }
}

pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_counters_cap_their_cardinality() {
        let counter = Labelled::default();
        for i in 0..MAX_LABELS + 10 {
            counter.inc(&format!("e{i}"));
        }
        counter.inc("e0");
        assert_eq!(counter.get("e0"), 2);
        assert_eq!(counter.get("other"), 10);
    }

    #[test]
    fn fixed_labels_count_and_render_with_the_others() {
        let counter = Labelled::with_fixed(&relay_events());
        counter.inc("ice:candidate");
        counter.inc("ice:candidate");
        counter.inc("room:join");
        assert_eq!(counter.get("ice:candidate"), 2);
        let mut out = String::new();
        counter.render(&mut out, "m", "event");
        assert_eq!(
            out,
            "m{event=\"ice:candidate\"} 2\nm{event=\"room:join\"} 1\n"
        );
    }

    #[test]
    fn fixed_labels_and_calls_sum_the_threads_counts() {
        let counter = Labelled::with_fixed(&relay_events());
        let stats = CallStats::default();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    counter.inc("sdp:offer");
                    stats.record(0.001);
                });
            }
        });
        counter.inc("sdp:offer");
        assert_eq!(counter.get("sdp:offer"), 4);
        assert_eq!(stats.calls(), 3);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let stats = CallStats::default();
        stats.record(0.000_001);
        stats.record(0.002);
        let mut out = String::new();
        render_calls(&mut out, &[("rooms", "1.0", &stats)]);
        assert!(out.contains("switchboard_plugin_call_seconds_bucket{plugin=\"rooms\",version=\"1.0\",le=\"0.000005\"} 1"), "{out}");
        assert!(out.contains("le=\"0.005\"} 2"), "{out}");
        assert!(
            out.contains(
                "switchboard_plugin_call_seconds_count{plugin=\"rooms\",version=\"1.0\"} 2"
            )
        );
    }
}
