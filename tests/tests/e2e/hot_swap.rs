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

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::chains::{self, builtin, from_file};
use switchboard_e2e::swap_load::{Build, Handshake, SWAPS, Shape, listed_stamp};
use switchboard_e2e::token::now_millis;
use switchboard_e2e::{Admin, Client, Metrics, Server};
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

const STAMP_V1_WASM: &str = env!("STAMP_WASM");
const STAMP_V2_WASM: &str = env!("STAMP_V2_WASM");
/// A plugin component whose `init` fails without its `ttl_ms` setting.
const ROOM_TTL_WASM: &str = env!("ROOM_TTL_WASM");

pub(crate) const QUIET: Duration = Duration::from_millis(300);

pub(crate) fn v1() -> Build {
    Build::read(STAMP_V1_WASM, "1.0.0", "a")
}

pub(crate) fn v2() -> Build {
    Build::read(STAMP_V2_WASM, "2.0.0", "b")
}

/// The chain with `stamp` (from a file, or by name for `--plugins DIR`),
/// compiling into `cache`.
fn config(stamp: String, cache: &Path, extra: &str) -> String {
    let preamble = format!("{extra}\n[plugin_cache]\ndir = \"{}\"", cache.display());
    chains::with_extra(&preamble, &[stamp])
}

/// A server whose chain loads stamp 1.0.0 from its build path, with its own
/// compile cache (kept alive by the returned dir).
pub(crate) async fn start() -> (Server, TempDir) {
    start_with("").await
}

/// A server whose `stamp` is `stamp.wasm` in `plugins`, watched every
/// 100 ms, compiling into `cache`.
pub(crate) async fn start_watching(plugins: &Path, cache: &Path) -> Server {
    let config = config(builtin("stamp"), cache, "[watch]\ninterval_ms = 100\n");
    Server::builder(&config).plugins_dir(plugins).start().await
}

/// [`start`] with `extra` TOML tables in the config.
pub(crate) async fn start_with(extra: &str) -> (Server, TempDir) {
    let cache = tempfile::tempdir().expect("cache dir");
    let stamp = from_file("stamp", STAMP_V1_WASM);
    let server = Server::start(&config(stamp, cache.path(), extra)).await;
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
pub(crate) fn assert_plugin_info(body: &Value, build: &Build) {
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

pub(crate) async fn swaps_total(admin: &Admin, result: &str) -> f64 {
    Metrics::parse(&admin.metrics_text().await)
        .get_or_zero("switchboard_plugin_swaps_total", &[("result", result)])
}

/// Two clients in `room`, each past the other's `room:peer-joined`.
pub(crate) async fn pair(server: &Server, room: &str) -> (Client, Client) {
    let mut a = Client::joined(server, "alice", room).await;
    let b = Client::joined(server, "bob", room).await;
    a.expect_event("room:peer-joined").await;
    (a, b)
}

/// `from` sends `stamp:msg` to `to`; returns what `to` receives, after
/// checking that the sender got nothing back.
pub(crate) async fn stamp(from: &mut Client, to: &mut Client, seq: u64) -> Value {
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
pub(crate) async fn version_now(a: &mut Client, b: &mut Client, seq: u64) -> String {
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
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) {
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
    let server = start_watching(plugins.path(), cache.path()).await;
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

/// 50 rooms of 4 clients: 200 connections that all send and receive, and
/// 8 churners; each client knows it has everything by a `ping`.
pub(crate) const LOAD: Shape = Shape {
    name: "hot swap under load",
    rooms: 50,
    per_room: 4,
    churners: 8,
    handshake: Handshake::Ping,
    drain: Duration::from_secs(60),
    finish: Duration::from_secs(240),
    min_sent: 10_000,
    min_per_window: 100,
    min_after_last: 50,
};

/// On one server a version's run ends at the next swap's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_swaps_under_load_drop_nothing_and_switch_at_the_answer() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());

    let run = LOAD
        .run(&[server.addr()], &v1, &v2, async |_, next| {
            swap_to(&admin, next).await;
            Instant::now()
        })
        .await;
    LOAD.check(&run);

    // The chain ends on v1 after an even number of swaps, all of them ok.
    assert_plugin_info(&listed_stamp(&admin).await, &v1);
    assert_eq!(swaps_total(&admin, "ok").await, SWAPS as f64);
    assert_eq!(swaps_total(&admin, "failed").await, 0.0);
}
