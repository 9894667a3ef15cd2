//! The bus's own figures for `GET /metrics`: messages published to and
//! received from other nodes, Redis round trips, reconnects, and what was
//! lost while Redis was unreachable.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::metrics::family;

#[derive(Default)]
pub(crate) struct BusMetrics {
    published: AtomicU64,
    received: AtomicU64,
    /// Messages in pipelines Redis did not take: they reached nobody.
    lost: AtomicU64,
    reconnects: AtomicU64,
    round_trips: AtomicU64,
    round_trip_micros: AtomicU64,
    nodes: AtomicU64,
    node_deaths: AtomicU64,
    takeovers: AtomicU64,
}

impl BusMetrics {
    pub(crate) fn published(&self, n: u64) {
        self.published.fetch_add(n, Relaxed);
    }

    pub(crate) fn received(&self, n: u64) {
        self.received.fetch_add(n, Relaxed);
    }

    pub(crate) fn lost(&self, n: u64) {
        self.lost.fetch_add(n, Relaxed);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    pub(crate) fn round_trip(&self, took: Duration) {
        self.round_trips.fetch_add(1, Relaxed);
        self.round_trip_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub(crate) fn set_nodes(&self, n: usize) {
        self.nodes.store(n as u64, Relaxed);
    }

    pub(crate) fn node_died(&self) {
        self.node_deaths.fetch_add(1, Relaxed);
    }

    pub(crate) fn took_over(&self) {
        self.takeovers.fetch_add(1, Relaxed);
    }

    pub(crate) fn render(&self, out: &mut String) {
        let counters = [
            ("switchboard_cluster_published_total", &self.published),
            ("switchboard_cluster_received_total", &self.received),
            ("switchboard_cluster_lost_total", &self.lost),
            ("switchboard_cluster_reconnects_total", &self.reconnects),
            ("switchboard_cluster_node_deaths_total", &self.node_deaths),
            ("switchboard_cluster_takeovers_total", &self.takeovers),
            (
                "switchboard_cluster_redis_round_trips_total",
                &self.round_trips,
            ),
            (
                "switchboard_cluster_redis_round_trip_microseconds_total",
                &self.round_trip_micros,
            ),
        ];
        for (name, counter) in counters {
            family(out, name, "counter");
            let _ = writeln!(out, "{name} {}", counter.load(Relaxed));
        }
        let name = "switchboard_cluster_nodes";
        family(out, name, "gauge");
        let _ = writeln!(out, "{name} {}", self.nodes.load(Relaxed));
    }
}
