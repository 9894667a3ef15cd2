//! DESIGN.md, "Hot swap": a new plugin version goes live atomically while
//! clients stay connected. Calls in flight finish on the old version, every
//! event after the swap's answer uses the new one, nothing is dropped,
//! duplicated or failed by the swap, and a version that fails to load
//! leaves the old one running and says why.
//!
//! The chain is auth-jwt, rooms, stamp, signaling. `stamp` (tests/plugins/)
//! relays `stamp:msg` `{"to", "seq"}` to `to` as `{"from", "seq",
//! "version", "count"}`: `version` is `"a"` for its 1.0.0 build and `"b"`
//! for its 2.0.0 build (feature `v2`), and `count` is the room's message
//! counter, kept in host storage.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_e2e::chains::{self, builtin, from_file};
use switchboard_e2e::token::now_millis;
use switchboard_e2e::{Admin, Client, Incoming, Metrics, Server};
use tempfile::TempDir;
use tokio::sync::{Barrier, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, timeout};

const STAMP_V1_WASM: &str = env!("STAMP_WASM");
const STAMP_V2_WASM: &str = env!("STAMP_V2_WASM");
/// A plugin component whose `init` fails without its `ttl_ms` setting.
const ROOM_TTL_WASM: &str = env!("ROOM_TTL_WASM");

const QUIET: Duration = Duration::from_millis(300);

/// One build of `stamp`: its bytes and what it is known by.
#[derive(Clone)]
struct Build {
    bytes: Arc<Vec<u8>>,
    hash: String,
    /// `describe()`'s version, as `/admin/plugins` shows it.
    version: &'static str,
    /// What it puts in `version` of a relayed `stamp:msg`.
    mark: &'static str,
}

fn v1() -> Build {
    build(STAMP_V1_WASM, "1.0.0", "a")
}

fn v2() -> Build {
    build(STAMP_V2_WASM, "2.0.0", "b")
}

fn build(path: &str, version: &'static str, mark: &'static str) -> Build {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    Build {
        hash: sha256_hex(&bytes),
        bytes: Arc::new(bytes),
        version,
        mark,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The chain with `stamp` (from a file, or by name for `--plugins DIR`),
/// compiling into `cache`.
fn config(stamp: String, cache: &Path, extra: &str) -> String {
    let preamble = format!("{extra}\n[plugin_cache]\ndir = \"{}\"", cache.display());
    chains::with_extra(&preamble, &[stamp])
}

/// A server whose chain loads stamp 1.0.0 from its build path, with its own
/// compile cache (kept alive by the returned dir).
async fn start() -> (Server, TempDir) {
    let cache = tempfile::tempdir().expect("cache dir");
    let stamp = from_file("stamp", STAMP_V1_WASM);
    let server = Server::start(&config(stamp, cache.path(), "")).await;
    (server, cache)
}

/// `PUT /admin/plugins/stamp` with `build`, expecting the documented 200.
async fn swap_to(admin: &Admin, build: &Build) -> Value {
    let response = admin.put("/admin/plugins/stamp", &build.bytes).await;
    assert_eq!(
        response.status, 200,
        "swap to {}: {response}",
        build.version
    );
    let body = response.json();
    assert_plugin_info(&body, build);
    body
}

/// `{"name", "version", "hash", "loadedAt"}` of `build`, loaded recently.
fn assert_plugin_info(body: &Value, build: &Build) {
    assert_eq!(body["name"], "stamp", "{body}");
    assert_eq!(body["version"], build.version, "{body}");
    assert_eq!(body["hash"], build.hash.as_str(), "{body}");
    let loaded_at = body["loadedAt"]
        .as_i64()
        .unwrap_or_else(|| panic!("loadedAt is not an integer: {body}"));
    let now = now_millis();
    assert!(
        (now - 600_000..=now + 5_000).contains(&loaded_at),
        "loadedAt {loaded_at} is not a recent unix time in ms (now {now}): {body}"
    );
}

/// The `stamp` entry of `GET /admin/plugins`.
async fn listed_stamp(admin: &Admin) -> Value {
    let listing = admin.get_json("/admin/plugins").await;
    listing["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugins array: {listing}"))
        .iter()
        .find(|p| p["name"] == "stamp")
        .unwrap_or_else(|| panic!("stamp not listed: {listing}"))
        .clone()
}

async fn swaps_total(admin: &Admin, result: &str) -> f64 {
    Metrics::parse(&admin.metrics_text().await)
        .get_or_zero("switchboard_plugin_swaps_total", &[("result", result)])
}

/// Two clients in `room`, each past the other's `room:peer-joined`.
async fn pair(server: &Server, room: &str) -> (Client, Client) {
    let mut a = Client::joined(server, "alice", room).await;
    let b = Client::joined(server, "bob", room).await;
    a.expect_event("room:peer-joined").await;
    (a, b)
}

/// `from` sends `stamp:msg` to `to`; returns what `to` receives, after
/// checking that the sender got nothing back.
async fn stamp(from: &mut Client, to: &mut Client, seq: u64) -> Value {
    from.send_json(
        json!({ "event": "stamp:msg", "id": format!("s{seq}"), "data": { "to": to.client_id, "seq": seq } }),
    )
    .await;
    let got = to.expect_event("stamp:msg").await;
    assert_eq!(got["from"], from.client_id.as_str(), "{got}");
    assert_eq!(got["seq"], seq, "{got}");
    assert_eq!(
        got.as_object().map(|o| o.len()),
        Some(4),
        "stamp:msg has exactly from, seq, version, count: {got}"
    );
    got
}

/// One `stamp:msg` from `a` to `b`; returns the version that stamped it.
async fn version_now(a: &mut Client, b: &mut Client, seq: u64) -> String {
    let got = stamp(a, b, seq).await;
    got["version"]
        .as_str()
        .unwrap_or_else(|| panic!("version is not a string: {got}"))
        .to_owned()
}

#[tokio::test]
async fn stamp_relays_with_version_a_before_any_swap() {
    let (server, _cache) = start().await;
    let (mut a, mut b) = pair(&server, "r").await;
    let got = stamp(&mut a, &mut b, 0).await;
    assert_eq!(
        got,
        json!({ "from": a.client_id, "seq": 0, "version": "a", "count": 1 })
    );
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn swap_answers_with_the_new_version_and_the_next_message_uses_it() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;
    let (v1, v2) = (v1(), v2());

    assert_plugin_info(&listed_stamp(&admin).await, &v1);
    assert_eq!(version_now(&mut a, &mut b, 0).await, "a");

    swap_to(&admin, &v2).await;
    assert_eq!(version_now(&mut a, &mut b, 1).await, "b");
    assert_plugin_info(&listed_stamp(&admin).await, &v2);

    swap_to(&admin, &v1).await;
    assert_eq!(version_now(&mut a, &mut b, 2).await, "a");
    assert_plugin_info(&listed_stamp(&admin).await, &v1);

    // The swap cost the connections nothing.
    a.expect_silence(QUIET).await;
    a.assert_open().await;
    b.assert_open().await;
}

#[tokio::test]
async fn room_counter_in_host_storage_runs_on_across_swaps() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;
    let (v1, v2) = (v1(), v2());

    let mut seq = 0;
    let mut expect = |got: Value, version: &str| {
        seq += 1;
        assert_eq!(got["count"], seq, "count after {} messages: {got}", seq - 1);
        assert_eq!(got["version"], version, "{got}");
    };
    for i in 0..3 {
        expect(stamp(&mut a, &mut b, i).await, "a");
    }
    swap_to(&admin, &v2).await;
    for i in 3..6 {
        expect(stamp(&mut b, &mut a, i).await, "b");
    }
    swap_to(&admin, &v1).await;
    for i in 6..9 {
        expect(stamp(&mut a, &mut b, i).await, "a");
    }
}

#[tokio::test]
async fn garbage_empty_and_non_plugin_components_are_422_and_the_old_version_serves() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;
    let v2 = v2();
    swap_to(&admin, &v2).await;
    let failed_before = swaps_total(&admin, "failed").await;
    let ok_before = swaps_total(&admin, "ok").await;
    assert_eq!(ok_before, 1.0, "one swap so far");

    let room_ttl = std::fs::read(ROOM_TTL_WASM).expect("read room-ttl component");
    let refused: [(&str, Vec<u8>); 5] = [
        (
            "garbage bytes",
            b"this is not a wasm component at all".to_vec(),
        ),
        ("an empty body", Vec::new()),
        // A valid core module: wasm, but not a component.
        ("a core module", b"\0asm\x01\0\0\0".to_vec()),
        // A valid component that exports nothing: not a plugin.
        ("an empty component", b"\0asm\x0d\0\x01\0".to_vec()),
        // A real plugin whose `init` refuses the stamp entry's (empty) config.
        ("a plugin whose init fails", room_ttl),
    ];
    for (i, (what, body)) in refused.iter().enumerate() {
        let response = admin.put("/admin/plugins/stamp", body).await;
        assert_eq!(response.status, 422, "PUT {what}: {response}");
        let error = response.json();
        let reason = error["error"]
            .as_str()
            .unwrap_or_else(|| panic!("422 for {what} without an `error` string: {error}"));
        assert!(!reason.trim().is_empty(), "422 for {what} gives no reason");

        // The old version is still the live one, and still serves.
        assert_plugin_info(&listed_stamp(&admin).await, &v2);
        assert_eq!(
            version_now(&mut a, &mut b, i as u64).await,
            "b",
            "after refusing {what}"
        );
        assert_eq!(
            swaps_total(&admin, "failed").await,
            failed_before + (i + 1) as f64,
            "swaps_total{{result=\"failed\"}} after refusing {what}"
        );
    }
    assert_eq!(swaps_total(&admin, "ok").await, ok_before);
    a.expect_silence(QUIET).await;
    a.assert_open().await;
    b.assert_open().await;
}

#[tokio::test]
async fn rollback_makes_the_previous_version_live_again() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;
    let (v1, v2) = (v1(), v2());

    swap_to(&admin, &v2).await;
    assert_eq!(version_now(&mut a, &mut b, 0).await, "b");

    let response = admin.post("/admin/plugins/stamp/rollback").await;
    assert_eq!(response.status, 200, "rollback: {response}");
    assert_plugin_info(&response.json(), &v1);
    assert_eq!(version_now(&mut a, &mut b, 1).await, "a");
    assert_plugin_info(&listed_stamp(&admin).await, &v1);
}

#[tokio::test]
async fn rollback_with_no_previous_version_is_409_and_changes_nothing() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;

    let response = admin.post("/admin/plugins/stamp/rollback").await;
    assert_eq!(
        response.status, 409,
        "rollback of the first version: {response}"
    );
    assert_plugin_info(&listed_stamp(&admin).await, &v1());
    assert_eq!(version_now(&mut a, &mut b, 0).await, "a");
}

#[tokio::test]
async fn swap_of_a_plugin_not_in_the_chain_is_404() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;
    let v2 = v2();

    let response = admin.put("/admin/plugins/no-such-plugin", &v2.bytes).await;
    assert_eq!(response.status, 404, "PUT of an unknown name: {response}");
    assert_plugin_info(&listed_stamp(&admin).await, &v1());
    assert_eq!(version_now(&mut a, &mut b, 0).await, "a");
}

/// DESIGN.md, "The WIT contract": a plugin built against an incompatible
/// version of the package is refused with a clear error, one that names
/// both versions, rather than a link error; the live version serves on.
#[tokio::test]
async fn a_plugin_for_another_wit_version_is_refused_naming_both() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;
    let wit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wit/switchboard.wit"
    ))
    .expect("read the WIT package");
    let ours = wit
        .lines()
        .find_map(|line| line.strip_prefix("package switchboard:plugin@"))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("the WIT package line");
    assert_ne!(
        ours, "0.2.0",
        "the test needs a version other than the host's"
    );

    let response = admin
        .put(
            "/admin/plugins/stamp",
            &exporting_only("switchboard:plugin/guest@0.2.0"),
        )
        .await;
    assert_eq!(response.status, 422, "{response}");
    let reason = response.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("switchboard:plugin@0.2.0") && reason.contains(ours),
        "the refusal names both versions: {reason:?}"
    );
    assert_plugin_info(&listed_stamp(&admin).await, &v1());
    assert_eq!(version_now(&mut a, &mut b, 0).await, "a");
}

/// A component that exports one empty instance under `name`: enough for
/// the host's interface check, which reads the export's name first.
fn exporting_only(name: &str) -> Vec<u8> {
    let name_len = u8::try_from(name.len()).expect("a short name");
    // Preamble: magic, component version 0x0d, layer 1.
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    // Instance section: one instance made of no exports.
    bytes.extend([0x05, 3, 1, 0x01, 0]);
    // Export section: that instance (sort 0x05, index 0) under `name`.
    let mut export = vec![1, 0x00, name_len];
    export.extend(name.as_bytes());
    export.extend([0x05, 0, 0]);
    bytes.extend([0x0b, u8::try_from(export.len()).expect("a short section")]);
    bytes.extend(export);
    bytes
}

#[tokio::test]
async fn rollback_of_a_plugin_not_in_the_chain_is_404() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    // Even after a swap elsewhere: the name is unknown, not short of history.
    swap_to(&admin, &v2()).await;
    let response = admin.post("/admin/plugins/no-such-plugin/rollback").await;
    assert_eq!(
        response.status, 404,
        "rollback of an unknown name: {response}"
    );
}

/// Replaces `dir/name` with `bytes` atomically: written under another
/// name first, then renamed over it.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!("{name}.incoming"));
    std::fs::write(&tmp, bytes).expect("write temp plugin file");
    std::fs::rename(&tmp, dir.join(name)).expect("rename plugin file into place");
}

/// Sends `stamp:msg` from `a` to `b` until one arrives stamped `mark`;
/// fails after `limit`. Returns the next free seq.
async fn wait_for_version(a: &mut Client, b: &mut Client, mut seq: u64, mark: &str) -> u64 {
    let limit = Duration::from_secs(15);
    let deadline = Instant::now() + limit;
    loop {
        let version = version_now(a, b, seq).await;
        seq += 1;
        if version == mark {
            return seq;
        }
        assert!(
            Instant::now() < deadline,
            "still version {version} {limit:?} after the plugin file changed"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_new_file_in_the_plugins_dir_is_swapped_in_and_a_bad_one_is_refused() {
    let (v1, v2) = (v1(), v2());
    let cache = tempfile::tempdir().expect("cache dir");
    let plugins = tempfile::tempdir().expect("plugins dir");
    std::fs::write(plugins.path().join("stamp.wasm"), &*v1.bytes).expect("write stamp.wasm");
    let config = config(
        builtin("stamp"),
        cache.path(),
        "[watch]\ninterval_ms = 100\n",
    );
    let server = Server::builder(&config)
        .plugins_dir(plugins.path())
        .start()
        .await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;

    assert_plugin_info(&listed_stamp(&admin).await, &v1);
    assert_eq!(version_now(&mut a, &mut b, 0).await, "a");

    replace_file(plugins.path(), "stamp.wasm", &v2.bytes);
    let seq = wait_for_version(&mut a, &mut b, 1, "b").await;
    assert_plugin_info(&listed_stamp(&admin).await, &v2);
    assert_eq!(swaps_total(&admin, "ok").await, 1.0);
    // Once swapped, it stays swapped.
    for i in 0..5 {
        assert_eq!(version_now(&mut a, &mut b, seq + i).await, "b");
    }

    // A broken file is refused, and v2 keeps serving.
    replace_file(plugins.path(), "stamp.wasm", b"not a component");
    let deadline = Instant::now() + Duration::from_secs(15);
    while swaps_total(&admin, "failed").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "a broken plugin file was not reported as a failed swap within 15 s"
        );
        sleep(Duration::from_millis(100)).await;
    }
    assert_plugin_info(&listed_stamp(&admin).await, &v2);
    assert_eq!(version_now(&mut a, &mut b, seq + 5).await, "b");

    // And a good file after it is swapped in again.
    replace_file(plugins.path(), "stamp.wasm", &v1.bytes);
    wait_for_version(&mut a, &mut b, seq + 6, "a").await;
    assert_plugin_info(&listed_stamp(&admin).await, &v1);
    assert_eq!(swaps_total(&admin, "ok").await, 2.0);
    a.assert_open().await;
    b.assert_open().await;
}

/// The compiled plugins in `cache` (ignoring hidden temporary files).
fn cached_files(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .map(|entries| {
            entries
                .map(|e| e.expect("read cache dir entry").file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn swapping_back_to_a_known_version_reuses_its_cached_compilation() {
    let (server, cache) = start().await;
    let admin = server.admin();
    let (mut a, mut b) = pair(&server, "r").await;
    let (v1, v2) = (v1(), v2());

    let at_start = cached_files(cache.path());
    assert!(
        !at_start.is_empty(),
        "the chain's plugins were not cached in {}",
        cache.path().display()
    );
    swap_to(&admin, &v2).await;
    let after_v2 = cached_files(cache.path());
    assert_eq!(
        after_v2.len(),
        at_start.len() + 1,
        "a new version is compiled and cached once: {at_start:?} then {after_v2:?}"
    );

    for (i, build) in [&v1, &v2, &v1, &v2].into_iter().enumerate() {
        swap_to(&admin, build).await;
        assert_eq!(
            version_now(&mut a, &mut b, i as u64).await,
            build.mark,
            "after swapping back to {}",
            build.version
        );
    }
    assert_eq!(
        cached_files(cache.path()),
        after_v2,
        "swapping between known versions compiled something new"
    );
}

// ---------------------------------------------------------------------------
// The guarantee under load.

/// 50 rooms of 4 clients: 200 connections that all send and receive.
const ROOMS: usize = 50;
const PER_ROOM: usize = 4;
/// Clients that join, send one `stamp:msg`, leave, and reconnect, all along.
const CHURNERS: usize = 8;
const SWAPS: usize = 20;
/// Every traffic client sends one `stamp:msg` this often (20/s: well under
/// the default rate limit).
const SEND_EVERY: Duration = Duration::from_millis(50);
/// Traffic before the first swap, and between one swap's answer and the
/// next swap's request: the windows in which exactly one version is live.
const SETTLE: Duration = Duration::from_millis(300);
/// How long the end-of-run handshakes may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// One `stamp:msg` a client sent.
struct Sent {
    to: String,
    seq: u64,
    /// Just before it was written to the socket.
    at: Instant,
}

/// One `stamp:msg` a client received.
struct Got {
    from: String,
    seq: u64,
    version: String,
    count: u64,
    /// Just after it was read from the socket.
    at: Instant,
}

/// What one connection saw over the whole run.
#[derive(Default)]
struct Record {
    client_id: String,
    room: usize,
    sent: Vec<Sent>,
    got: Vec<Got>,
    /// `error` messages received.
    errors: Vec<Value>,
    /// Anything else that should not have arrived.
    unexpected: Vec<Value>,
    /// How the connection ended, if it ended.
    disconnected: Option<String>,
}

impl Record {
    /// Files one received message; `false` if the connection is gone.
    fn take(&mut self, incoming: Incoming) -> bool {
        match incoming {
            Incoming::Message(message) => {
                self.file(message);
                true
            }
            Incoming::Closed(code) => {
                self.disconnected = Some(format!("closed with {code:?}"));
                false
            }
            Incoming::Failed(why) => {
                self.disconnected = Some(why);
                false
            }
        }
    }

    fn file(&mut self, message: Value) {
        let at = Instant::now();
        let data = &message["data"];
        match message["event"].as_str() {
            Some("stamp:msg") if message.get("id").is_none() => {
                let fields = (
                    data["from"].as_str(),
                    data["seq"].as_u64(),
                    data["version"].as_str(),
                    data["count"].as_u64(),
                );
                match fields {
                    (Some(from), Some(seq), Some(version), Some(count))
                        if data.as_object().map(|o| o.len()) == Some(4) =>
                    {
                        self.got.push(Got {
                            from: from.to_owned(),
                            seq,
                            version: version.to_owned(),
                            count,
                            at,
                        })
                    }
                    _ => self.unexpected.push(message),
                }
            }
            // Churners coming and going.
            Some("room:peer-joined" | "room:peer-left") if message.get("id").is_none() => {}
            Some("error") => self.errors.push(message),
            _ => self.unexpected.push(message),
        }
    }

    /// Files a failure of the run's choreography.
    fn note(&mut self, outcome: Result<(), String>) {
        if let Err(why) = outcome {
            self.unexpected.push(json!(why));
        }
    }

    /// Sends `ping` with `id` and files everything up to its `pong`.
    async fn sync(&mut self, client: &mut Client, id: &str) {
        if self.disconnected.is_some() {
            return;
        }
        client.send_json(json!({ "event": "ping", "id": id })).await;
        let done = timeout(DRAIN_LIMIT, async {
            loop {
                match client.next_incoming().await {
                    Incoming::Message(m) if m["event"] == "pong" && m["id"] == id => return,
                    incoming => {
                        if !self.take(incoming) {
                            return;
                        }
                    }
                }
            }
        })
        .await;
        if done.is_err() {
            self.disconnected = Some(format!("no pong for {id} within {DRAIN_LIMIT:?}"));
        }
    }
}

/// A traffic client: sends `stamp:msg` to its room peers in turn, with a
/// growing seq, until told to stop; then makes sure it has everything.
///
/// The end: each client pings and waits for its pong, so everything it
/// sent has been handled; once all have (the barrier), each pings again:
/// every relay to it was queued before that second pong, so it has
/// received them all when the pong arrives.
async fn traffic(
    mut client: Client,
    room: usize,
    peers: Vec<String>,
    mut stop: watch::Receiver<bool>,
    barrier: Arc<Barrier>,
    phase: Duration,
) -> Record {
    let mut record = Record {
        client_id: client.client_id.clone(),
        room,
        ..Record::default()
    };
    let mut tick = interval(SEND_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    sleep(phase).await;
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let to = peers[seq as usize % peers.len()].clone();
                let at = Instant::now();
                client
                    .send_json(json!({ "event": "stamp:msg", "data": { "to": to, "seq": seq } }))
                    .await;
                record.sent.push(Sent { to, seq, at });
                seq += 1;
            }
            incoming = client.next_incoming() => {
                if !record.take(incoming) {
                    break;
                }
            }
        }
    }
    record.sync(&mut client, "drain-sent").await;
    record.note(wait_for_all(&barrier).await);
    record.sync(&mut client, "drain-received").await;
    // Keep the connection open until every client is done.
    record.note(wait_for_all(&barrier).await);
    record
}

/// A churner: connects, joins a traffic room, sends one `stamp:msg` to a
/// member, leaves, joins another, ... and reconnects every three rooms,
/// until told to stop.
async fn churn(
    addr: SocketAddr,
    index: usize,
    members: Arc<Vec<Vec<String>>>,
    stop: watch::Receiver<bool>,
    barrier: Arc<Barrier>,
) -> Vec<Record> {
    let mut records = Vec::new();
    let mut seq = 0u64;
    let mut round = index;
    while !*stop.borrow() {
        let mut client = Client::authed_addr(addr, &format!("churner-{index}")).await;
        for _ in 0..3 {
            let room = (round * 7) % ROOMS;
            round += 1;
            let to = members[room][seq as usize % PER_ROOM].clone();
            records.push(visit(&mut client, room, to, seq).await);
            seq += 1;
            if *stop.borrow() {
                break;
            }
        }
        client.close(1000).await;
    }
    // Every message it sent has been handled (it got `room:left` after).
    let mut last = Record {
        client_id: format!("churner-{index}"),
        ..Record::default()
    };
    last.note(wait_for_all(&barrier).await);
    last.note(wait_for_all(&barrier).await);
    records.push(last);
    records
}

/// Joins traffic room `room`, sends `stamp:msg` `seq` to member `to`, and
/// leaves again.
async fn visit(client: &mut Client, room: usize, to: String, seq: u64) -> Record {
    let mut record = Record {
        client_id: client.client_id.clone(),
        room,
        ..Record::default()
    };
    client.join(&format!("load-{room}")).await;
    let at = Instant::now();
    client
        .send_json(json!({ "event": "stamp:msg", "data": { "to": to, "seq": seq } }))
        .await;
    record.sent.push(Sent { to, seq, at });
    sleep(Duration::from_millis(20)).await;
    client
        .send_json(json!({ "event": "room:leave", "id": "leave" }))
        .await;
    loop {
        let message = client.recv_within(DRAIN_LIMIT).await;
        if message["event"] == "room:left" && message["id"] == "leave" {
            break;
        }
        record.file(message);
    }
    record
}

/// Waits at the barrier; an error if the others never came (some task
/// failed), so that the run still ends and says why.
async fn wait_for_all(barrier: &Barrier) -> Result<(), String> {
    timeout(DRAIN_LIMIT, barrier.wait())
        .await
        .map(drop)
        .map_err(|_| format!("gave up waiting for the other clients after {DRAIN_LIMIT:?}"))
}

/// One live-version interval: version `mark` may handle events from `from`
/// (the request that started its swap) until `until` (the answer of the
/// next swap).
struct Live {
    mark: &'static str,
    from: Option<Instant>,
    until: Option<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_swaps_under_load_drop_nothing_and_switch_at_the_answer() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());

    // 50 rooms of 4; each room's members join in turn, the rooms at once.
    let mut joining = JoinSet::new();
    for room in 0..ROOMS {
        let addr = server.addr();
        joining.spawn(async move {
            let mut clients = Vec::new();
            for member in 0..PER_ROOM {
                let mut client = Client::authed_addr(addr, &format!("user-{room}-{member}")).await;
                client.join(&format!("load-{room}")).await;
                clients.push(client);
            }
            (room, clients)
        });
    }
    let mut rooms: BTreeMap<usize, Vec<Client>> = BTreeMap::new();
    while let Some(joined) = joining.join_next().await {
        let (room, clients) = joined.expect("a room failed to fill");
        rooms.insert(room, clients);
    }
    let members: Arc<Vec<Vec<String>>> = Arc::new(
        rooms
            .values()
            .map(|clients| clients.iter().map(|c| c.client_id.clone()).collect())
            .collect(),
    );

    let (stop_tx, stop) = watch::channel(false);
    let barrier = Arc::new(Barrier::new(ROOMS * PER_ROOM + CHURNERS));
    let mut tasks = JoinSet::new();
    let mut n = 0;
    for (room, clients) in rooms {
        for client in clients {
            let peers: Vec<String> = members[room]
                .iter()
                .filter(|id| **id != client.client_id)
                .cloned()
                .collect();
            // Spread the sends over the period.
            let phase = SEND_EVERY * (n % 10) / 10;
            n += 1;
            let (stop, barrier) = (stop.clone(), Arc::clone(&barrier));
            tasks.spawn(
                async move { vec![traffic(client, room, peers, stop, barrier, phase).await] },
            );
        }
    }
    for index in 0..CHURNERS {
        let (stop, barrier, members) = (stop.clone(), Arc::clone(&barrier), Arc::clone(&members));
        tasks.spawn(churn(server.addr(), index, members, stop, barrier));
    }

    // The swaps: v2, v1, v2, ... each awaited, with traffic in between.
    let mut live = vec![Live {
        mark: v1.mark,
        from: None,
        until: None,
    }];
    sleep(SETTLE).await;
    for i in 0..SWAPS {
        let next = if i % 2 == 0 { &v2 } else { &v1 };
        let requested = Instant::now();
        swap_to(&admin, next).await;
        let answered = Instant::now();
        live.last_mut().expect("one live version").until = Some(answered);
        live.push(Live {
            mark: next.mark,
            from: Some(requested),
            until: None,
        });
        sleep(SETTLE).await;
    }
    stop_tx.send(true).expect("clients are listening");

    let mut records = Vec::new();
    let all_done = timeout(DRAIN_LIMIT * 4, async {
        while let Some(done) = tasks.join_next().await {
            records.extend(done.expect("a client task panicked"));
        }
    })
    .await;
    assert!(all_done.is_ok(), "the clients did not finish");

    check_run(&records, &live);

    // The chain ends on v1 after an even number of swaps, all of them ok.
    assert_plugin_info(&listed_stamp(&admin).await, &v1);
    assert_eq!(swaps_total(&admin, "ok").await, SWAPS as f64);
    assert_eq!(swaps_total(&admin, "failed").await, 0.0);
}

/// Every check of the run at once, so that one failure report says all.
fn check_run(records: &[Record], live: &[Live]) {
    let mut problems: Vec<String> = Vec::new();
    let mut report = |problem: String| {
        if problems.len() < 40 {
            problems.push(problem);
        }
    };

    for record in records {
        if let Some(how) = &record.disconnected {
            report(format!("client {} disconnected: {how}", record.client_id));
        }
        for error in &record.errors {
            report(format!("client {} got an error: {error}", record.client_id));
        }
        for message in &record.unexpected {
            report(format!("client {} got {message}", record.client_id));
        }
    }

    // When each message was sent: (from, to, seq) → time.
    let mut sent_at: HashMap<(&str, &str, u64), Instant> = HashMap::new();
    // What each target should have received from each sender, in order.
    let mut expected: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    for record in records {
        for sent in &record.sent {
            sent_at.insert((&record.client_id, &sent.to, sent.seq), sent.at);
            expected
                .entry((&record.client_id, &sent.to))
                .or_default()
                .push(sent.seq);
        }
    }
    let mut received: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    let mut counts: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut strict_per_window = vec![0usize; live.len()];
    let mut total = 0usize;
    for record in records {
        for got in &record.got {
            total += 1;
            received
                .entry((&got.from, &record.client_id))
                .or_default()
                .push(got.seq);
            counts.entry(record.room).or_default().push(got.count);
            let Some(sent) = sent_at.get(&(got.from.as_str(), record.client_id.as_str(), got.seq))
            else {
                report(format!(
                    "client {} got seq {} from {}, which was never sent to it",
                    record.client_id, got.seq, got.from
                ));
                continue;
            };
            // The versions that may have been live at some moment between
            // the send and the receipt.
            let possible: Vec<usize> = live
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    l.from.is_none_or(|from| from <= got.at)
                        && l.until.is_none_or(|until| until >= *sent)
                })
                .map(|(i, _)| i)
                .collect();
            let marks: Vec<&str> = possible.iter().map(|&i| live[i].mark).collect();
            if !marks.contains(&got.version.as_str()) {
                report(format!(
                    "{} → {} seq {} stamped {:?}, but only {marks:?} could be live between its send and its receipt",
                    got.from, record.client_id, got.seq, got.version
                ));
            }
            if let [only] = possible[..] {
                strict_per_window[only] += 1;
            }
        }
    }

    for (pair, sent) in &expected {
        let got = received.get(pair).map(Vec::as_slice).unwrap_or_default();
        if got != sent.as_slice() {
            report(format!(
                "{} → {}: sent {} messages, received {} (first difference at index {}): sent {:?}…, received {:?}…",
                pair.0,
                pair.1,
                sent.len(),
                got.len(),
                sent.iter().zip(got).take_while(|(s, g)| s == g).count(),
                &sent[..sent.len().min(10)],
                &got[..got.len().min(10)],
            ));
        }
    }
    for pair in received.keys() {
        if !expected.contains_key(pair) {
            report(format!("{} → {}: received but never sent", pair.0, pair.1));
        }
    }

    // The room counter lives in host storage: across all swaps every
    // message of a room got its own count, 1, 2, 3, ... with no gap.
    for (room, mut room_counts) in counts {
        room_counts.sort_unstable();
        let n = room_counts.len() as u64;
        if room_counts != (1..=n).collect::<Vec<u64>>() {
            let dups = room_counts.windows(2).filter(|w| w[0] == w[1]).count();
            report(format!(
                "room load-{room}: the {n} counts are not 1..={n} ({dups} duplicates, max {:?})",
                room_counts.last()
            ));
        }
    }

    // The run must have tested something: traffic in every window in
    // which exactly one version can have been live.
    let sent_total: usize = expected.values().map(Vec::len).sum();
    if sent_total < 10_000 {
        report(format!("only {sent_total} messages were sent"));
    }
    // Each churner visit is one record beyond the traffic clients' (and
    // each churner's closing record).
    let visits = records.len().saturating_sub(ROOMS * PER_ROOM + CHURNERS);
    if visits < CHURNERS * 3 {
        report(format!("only {visits} churner visits to rooms"));
    }
    for (i, strict) in strict_per_window.iter().enumerate() {
        if *strict < 100 {
            report(format!(
                "only {strict} messages fell wholly inside live window {i} ({})",
                live[i].mark
            ));
        }
    }

    eprintln!(
        "hot swap under load: {sent_total} messages sent, {total} received, \
         {visits} churner visits, {} swaps; \
         messages wholly inside each live window: {strict_per_window:?}",
        live.len() - 1
    );
    assert!(
        problems.is_empty(),
        "{} messages received; problems (at most 40 shown):\n{}",
        total,
        problems.join("\n")
    );
}
