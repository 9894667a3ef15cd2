//! DESIGN.md, "Operator surface": `GET /metrics` on the admin listener, in
//! Prometheus text, and counters that move by exactly what clients did.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use switchboard_e2e::{Admin, Client, Metrics, Server, chains};
use tokio::time::{Instant, sleep};

/// Every family the admin API documents, with its Prometheus type.
const FAMILIES: &[(&str, &str)] = &[
    ("switchboard_connections_current", "gauge"),
    ("switchboard_connections_total", "counter"),
    ("switchboard_connections_closed_total", "counter"),
    ("switchboard_messages_in_total", "counter"),
    ("switchboard_messages_out_total", "counter"),
    ("switchboard_errors_total", "counter"),
    ("switchboard_plugin_calls_total", "counter"),
    ("switchboard_plugin_call_seconds", "histogram"),
    ("switchboard_plugin_traps_total", "counter"),
    ("switchboard_plugin_timeouts_total", "counter"),
    ("switchboard_rooms", "gauge"),
    ("switchboard_plugin_swaps_total", "counter"),
    ("switchboard_outbound_queue_depth", "gauge"),
];

async fn scrape(admin: &Admin) -> Metrics {
    Metrics::parse(&admin.metrics_text().await)
}

/// The value of an unlabelled sample, which must be present.
fn plain(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .get(name, &[])
        .unwrap_or_else(|| panic!("{name} is missing: {:?}", metrics.samples))
}

/// Scrapes until `check` holds (the server counts a close once it has
/// handled it, a moment after the client saw it); fails after 5 s.
async fn scrape_until(admin: &Admin, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = scrape(admin).await;
        if check(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within 5 s; last scrape: {:?}",
            metrics.samples
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Some of everything: connections, auth, a room, relays, errors, a close.
async fn some_traffic(server: &Server) {
    let mut a = Client::joined(server, "alice", "r").await;
    let mut b = Client::joined(server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "v=0" } }))
        .await;
    b.expect_event("sdp:offer").await;
    a.send_json(json!({ "event": "nope", "id": "n" })).await;
    a.expect_error("UNKNOWN_EVENT", Some("n"), Some("nope"))
        .await;
    b.close(1000).await;
    a.expect_event("room:peer-left").await;
}

#[tokio::test]
async fn metrics_is_prometheus_text_with_every_documented_family() {
    let server = Server::start(&chains::misbehave("[plugin_limits]\ndeadline_ms = 100\n")).await;
    let admin = server.admin();
    some_traffic(&server).await;
    // And a trap and a timeout, so that those counters have a sample.
    let mut c = Client::joined(&server, "carol", "faults").await;
    let d = Client::joined(&server, "dave", "faults").await;
    c.expect_event("room:peer-joined").await;
    for how in ["trap", "loop"] {
        c.send_json(
            json!({ "event": "sdp:offer", "id": how, "data": { "to": d.client_id, "sdp": how } }),
        )
        .await;
        c.expect_error("PLUGIN_ERROR", Some(how), Some("sdp:offer"))
            .await;
    }

    // And a swap that works and one that does not.
    let misbehave = std::fs::read(chains::MISBEHAVE_WASM).expect("read misbehave");
    assert_eq!(
        admin
            .put("/admin/plugins/misbehave", &misbehave)
            .await
            .status,
        200
    );
    assert_eq!(
        admin.put("/admin/plugins/misbehave", b"junk").await.status,
        422
    );

    let response = admin.get("/metrics").await;
    assert_eq!(response.status, 200, "{response}");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain"),
        "Content-Type {content_type:?}"
    );
    let text = response.text();
    // `parse` rejects any line that is not `name{labels} value`, a comment
    // or blank.
    let metrics = Metrics::parse(&text);

    for (family, kind) in FAMILIES {
        if let Some(declared) = metrics.types.get(*family) {
            assert_eq!(declared, kind, "# TYPE of {family}");
        }
        let present = if *kind == "histogram" {
            ["_bucket", "_sum", "_count"]
                .iter()
                .all(|suffix| metrics.has(&format!("{family}{suffix}")))
        } else {
            metrics.has(family)
        };
        assert!(present, "{family} is missing after some traffic:\n{text}");
    }
    for sample in &metrics.samples {
        assert!(
            (sample.value.is_finite() && sample.value >= 0.0) || sample.labels.contains_key("le"),
            "negative or non-finite sample {sample:?}"
        );
        assert!(
            sample.name.starts_with("switchboard_"),
            "sample outside the switchboard_ namespace: {sample:?}"
        );
    }
    // Labels as documented.
    let labels_of = |name: &str| -> Vec<Vec<String>> {
        metrics
            .matching(name, &[])
            .map(|s| s.labels.keys().cloned().collect())
            .collect()
    };
    for (name, labels) in [
        ("switchboard_connections_closed_total", vec!["reason"]),
        ("switchboard_messages_in_total", vec!["event"]),
        ("switchboard_messages_out_total", vec!["event"]),
        ("switchboard_errors_total", vec!["code"]),
        ("switchboard_plugin_calls_total", vec!["plugin", "version"]),
        (
            "switchboard_plugin_call_seconds_bucket",
            vec!["le", "plugin", "version"],
        ),
        (
            "switchboard_plugin_call_seconds_sum",
            vec!["plugin", "version"],
        ),
        (
            "switchboard_plugin_call_seconds_count",
            vec!["plugin", "version"],
        ),
        ("switchboard_plugin_traps_total", vec!["plugin", "version"]),
        (
            "switchboard_plugin_timeouts_total",
            vec!["plugin", "version"],
        ),
        ("switchboard_plugin_swaps_total", vec!["result"]),
    ] {
        for found in labels_of(name) {
            assert_eq!(found, labels, "labels of {name}");
        }
    }
    check_histograms(&metrics);
}

/// Each (plugin, version) histogram: increasing bounds ending in +Inf,
/// cumulative counts, and +Inf equal to `_count`.
fn check_histograms(metrics: &Metrics) {
    let mut series: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for sample in metrics.matching("switchboard_plugin_call_seconds_bucket", &[]) {
        let le = &sample.labels["le"];
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse()
                .unwrap_or_else(|_| panic!("bad le {le:?} in {sample:?}"))
        };
        series
            .entry((
                sample.labels["plugin"].clone(),
                sample.labels["version"].clone(),
            ))
            .or_default()
            .push((bound, sample.value));
    }
    assert!(!series.is_empty(), "no plugin call histogram at all");
    for ((plugin, version), buckets) in series {
        let labels = [("plugin", plugin.as_str()), ("version", version.as_str())];
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "buckets of {plugin} {version} not increasing and cumulative: {buckets:?}"
        );
        let (last_bound, last_count) = *buckets.last().expect("non-empty");
        assert_eq!(
            last_bound,
            f64::INFINITY,
            "{plugin} {version} ends without +Inf"
        );
        let count = metrics
            .get("switchboard_plugin_call_seconds_count", &labels)
            .unwrap_or_else(|| panic!("no _count for {plugin} {version}"));
        assert_eq!(
            last_count, count,
            "+Inf bucket and _count of {plugin} {version}"
        );
        let sum = metrics
            .get("switchboard_plugin_call_seconds_sum", &labels)
            .unwrap_or_else(|| panic!("no _sum for {plugin} {version}"));
        assert!(sum >= 0.0, "{plugin} {version} sum {sum}");
    }
}

#[tokio::test]
async fn a_fresh_server_has_no_connections_and_no_rooms() {
    let server = Server::start_default().await;
    let metrics = scrape(&server.admin()).await;
    assert_eq!(plain(&metrics, "switchboard_connections_current"), 0.0);
    assert_eq!(plain(&metrics, "switchboard_connections_total"), 0.0);
    assert_eq!(plain(&metrics, "switchboard_rooms"), 0.0);
    assert_eq!(plain(&metrics, "switchboard_outbound_queue_depth"), 0.0);
}

#[tokio::test]
async fn connection_counters_follow_opens_and_closes() {
    let server = Server::start_default().await;
    let admin = server.admin();
    let before = scrape(&admin).await;
    let closed_before = before.sum("switchboard_connections_closed_total", &[]);

    let a = Client::connect(&server).await;
    let b = Client::connect(&server).await;
    let c = Client::authed(&server, "carol").await;
    let metrics = scrape(&admin).await;
    assert_eq!(plain(&metrics, "switchboard_connections_current"), 3.0);
    assert_eq!(
        plain(&metrics, "switchboard_connections_total"),
        plain(&before, "switchboard_connections_total") + 3.0
    );

    a.close(1000).await;
    c.close(1001).await;
    let metrics = scrape_until(&admin, "two closes counted", |m| {
        m.sum("switchboard_connections_closed_total", &[]) == closed_before + 2.0
    })
    .await;
    assert_eq!(plain(&metrics, "switchboard_connections_current"), 1.0);
    assert_eq!(
        plain(&metrics, "switchboard_connections_total"),
        plain(&before, "switchboard_connections_total") + 3.0,
        "closing is not connecting"
    );
    drop(b);
}

#[tokio::test]
async fn message_and_error_counters_move_by_exactly_what_was_sent() {
    let server = Server::start_default().await;
    let admin = server.admin();
    let mut a = Client::connect(&server).await;
    let before = scrape(&admin).await;
    let in_of = |m: &Metrics, event: &str| {
        m.get_or_zero("switchboard_messages_in_total", &[("event", event)])
    };
    let out_of = |m: &Metrics, event: &str| {
        m.get_or_zero("switchboard_messages_out_total", &[("event", event)])
    };
    let errors_of =
        |m: &Metrics, code: &str| m.get_or_zero("switchboard_errors_total", &[("code", code)]);

    for i in 0..3 {
        let id = format!("p{i}");
        a.send_json(json!({ "event": "ping", "id": id })).await;
        a.expect_reply("pong", &id).await;
    }
    for i in 0..2 {
        let id = format!("j{i}");
        a.send_json(json!({ "event": "room:join", "id": id, "data": { "roomId": "r" } }))
            .await;
        a.expect_error("NOT_AUTHENTICATED", Some(&id), Some("room:join"))
            .await;
    }
    let after = scrape(&admin).await;
    assert_eq!(in_of(&after, "ping"), in_of(&before, "ping") + 3.0);
    assert_eq!(out_of(&after, "pong"), out_of(&before, "pong") + 3.0);
    assert_eq!(
        errors_of(&after, "NOT_AUTHENTICATED"),
        errors_of(&before, "NOT_AUTHENTICATED") + 2.0
    );
    assert_eq!(
        in_of(&after, "room:join"),
        in_of(&before, "room:join") + 2.0
    );
    assert_eq!(out_of(&after, "error"), out_of(&before, "error") + 2.0);
    // Nothing else was counted as an error.
    assert_eq!(
        after.sum("switchboard_errors_total", &[]),
        before.sum("switchboard_errors_total", &[]) + 2.0
    );

    // An unknown event after auth.
    let response = a
        .auth(json!({ "token": switchboard_e2e::token::token("alice") }))
        .await;
    assert_eq!(response["success"], true);
    a.send_json(json!({ "event": "no:such", "id": "u" })).await;
    a.expect_error("UNKNOWN_EVENT", Some("u"), Some("no:such"))
        .await;
    let last = scrape(&admin).await;
    assert_eq!(
        errors_of(&last, "UNKNOWN_EVENT"),
        errors_of(&after, "UNKNOWN_EVENT") + 1.0
    );
    assert_eq!(
        in_of(&last, "auth:request"),
        in_of(&after, "auth:request") + 1.0
    );
    assert_eq!(
        out_of(&last, "auth:response"),
        out_of(&after, "auth:response") + 1.0
    );
}

#[tokio::test]
async fn rooms_gauge_and_plugin_calls_follow_joins_and_relays() {
    let server = Server::start_default().await;
    let admin = server.admin();
    let calls =
        |m: &Metrics, plugin: &str| m.sum("switchboard_plugin_calls_total", &[("plugin", plugin)]);
    let histogram_count = |m: &Metrics, plugin: &str| {
        m.sum(
            "switchboard_plugin_call_seconds_count",
            &[("plugin", plugin)],
        )
    };
    let before = scrape(&admin).await;
    assert_eq!(plain(&before, "switchboard_rooms"), 0.0);

    let mut a = Client::joined(&server, "alice", "one").await;
    let mut b = Client::joined(&server, "bob", "one").await;
    let c = Client::joined(&server, "carol", "two").await;
    a.expect_event("room:peer-joined").await;
    let joined = scrape(&admin).await;
    assert_eq!(plain(&joined, "switchboard_rooms"), 2.0);
    assert!(
        calls(&joined, "rooms") >= calls(&before, "rooms") + 3.0,
        "three joins, rooms plugin calls {} → {}",
        calls(&before, "rooms"),
        calls(&joined, "rooms")
    );
    assert!(calls(&joined, "auth-jwt") >= calls(&before, "auth-jwt") + 3.0);
    assert!(histogram_count(&joined, "rooms") > histogram_count(&before, "rooms"));
    assert_eq!(
        joined.get_or_zero(
            "switchboard_messages_out_total",
            &[("event", "room:peer-joined")]
        ),
        before.get_or_zero(
            "switchboard_messages_out_total",
            &[("event", "room:peer-joined")]
        ) + 1.0
    );

    a.send_json(json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "v=0" } }))
        .await;
    b.expect_event("sdp:offer").await;
    let relayed = scrape(&admin).await;
    assert!(calls(&relayed, "signaling") > calls(&joined, "signaling"));
    assert_eq!(
        relayed.get_or_zero("switchboard_messages_out_total", &[("event", "sdp:offer")]),
        joined.get_or_zero("switchboard_messages_out_total", &[("event", "sdp:offer")]) + 1.0
    );

    // Rooms end with their last member.
    c.close(1000).await;
    scrape_until(&admin, "room `two` gone", |m| {
        m.get("switchboard_rooms", &[]) == Some(1.0)
    })
    .await;
    b.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    b.expect_reply("room:left", "l").await;
    a.expect_event("room:peer-left").await;
    assert_eq!(plain(&scrape(&admin).await, "switchboard_rooms"), 1.0);
    a.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    a.expect_reply("room:left", "l").await;
    assert_eq!(plain(&scrape(&admin).await, "switchboard_rooms"), 0.0);
}

#[tokio::test]
async fn traps_and_timeouts_are_counted_for_the_plugin_that_failed() {
    let server = Server::start(&chains::misbehave("[plugin_limits]\ndeadline_ms = 100\n")).await;
    let admin = server.admin();
    let mut a = Client::joined(&server, "alice", "r").await;
    let b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    let before = scrape(&admin).await;
    let of = |m: &Metrics, name: &str, plugin: &str| m.sum(name, &[("plugin", plugin)]);

    for (i, how) in ["trap", "trap", "loop"].into_iter().enumerate() {
        let id = format!("{how}{i}");
        a.send_json(
            json!({ "event": "sdp:offer", "id": id, "data": { "to": b.client_id, "sdp": how } }),
        )
        .await;
        a.expect_error("PLUGIN_ERROR", Some(&id), Some("sdp:offer"))
            .await;
    }
    let after = scrape(&admin).await;
    let traps = "switchboard_plugin_traps_total";
    let timeouts = "switchboard_plugin_timeouts_total";
    assert_eq!(
        of(&after, traps, "misbehave"),
        of(&before, traps, "misbehave") + 2.0
    );
    assert_eq!(
        of(&after, timeouts, "misbehave"),
        of(&before, timeouts, "misbehave") + 1.0
    );
    for plugin in ["auth-jwt", "rooms", "signaling"] {
        assert_eq!(of(&after, traps, plugin), 0.0, "{plugin} traps");
        assert_eq!(of(&after, timeouts, plugin), 0.0, "{plugin} timeouts");
    }
    assert_eq!(
        after.get_or_zero("switchboard_errors_total", &[("code", "PLUGIN_ERROR")]),
        before.get_or_zero("switchboard_errors_total", &[("code", "PLUGIN_ERROR")]) + 3.0
    );
    // The version label is the plugin's own.
    assert!(
        after
            .matching(traps, &[("plugin", "misbehave")])
            .all(|s| !s.labels["version"].is_empty()),
        "{:?}",
        after.samples
    );
}
