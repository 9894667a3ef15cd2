//! Safe rollouts (README, "Rolling out a plugin version"): versions
//! uploaded without going live, a canary for a percentage of new rooms or
//! a list of them, each room pinned to its versions for its lifetime, and
//! promote and abort moving rooms at an event boundary with nothing
//! dropped, duplicated or forgotten.
//!
//! The chain is hot_swap.rs's: auth-jwt, rooms, stamp, signaling, with
//! `stamp` 1.0.0 (stamps `"a"`) stable and 2.0.0 (stamps `"b"`) the
//! canary; its per-room counter lives in host storage, which versions
//! share.

use serde_json::{Value, json};
use switchboard_e2e::swap_load::{Build, Shape, listed_stamp};
use switchboard_e2e::{Admin, Client, Server};
use tokio::time::Instant;

use super::hot_swap::{
    LOAD, QUIET, assert_plugin_info, pair, replace_file, stamp, start, start_watching, start_with,
    v1, v2, version_now,
};

/// `POST /admin/plugins/stamp/versions` with `build`; returns the status
/// and the body.
async fn upload(admin: &Admin, build: &Build) -> (u16, Value) {
    let response = admin
        .request("POST", "/admin/plugins/stamp/versions", &build.bytes)
        .await;
    let status = response.status;
    (status, response.json())
}

/// `PUT /admin/plugins/stamp/rollout` with `policy`, expecting 200;
/// returns the rollout.
async fn set_rollout(admin: &Admin, policy: Value) -> Value {
    let response = admin
        .put(
            "/admin/plugins/stamp/rollout",
            policy.to_string().as_bytes(),
        )
        .await;
    assert_eq!(response.status, 200, "PUT rollout {policy}: {response}");
    response.json()
}

/// `POST path`, expecting 200 with `build`'s plugin info.
async fn post_expecting(admin: &Admin, path: &str, build: &Build) {
    let response = admin.post(path).await;
    assert_eq!(response.status, 200, "POST {path}: {response}");
    assert_plugin_info(&response.json(), build);
}

/// Where a room falls for the `stamp` entry, 0 to 99, as README documents
/// it: FNV-1a (64-bit) of the room id, a 0xff byte and the entry name,
/// modulo 100.
fn bucket(room: &str) -> u64 {
    let bytes = room.bytes().chain([0xff]).chain("stamp".bytes());
    let hash = bytes.fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % 100
}

/// The roles `GET /admin/plugins/stamp/versions` lists, by hash.
async fn roles(admin: &Admin) -> Vec<(String, String)> {
    let listing = admin.get_json("/admin/plugins/stamp/versions").await;
    let versions = listing["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no versions array: {listing}"));
    versions
        .iter()
        .map(|v| {
            for field in ["name", "version", "hash", "loadedAt", "calls", "errors"] {
                assert!(v.get(field).is_some(), "{field} missing: {v}");
            }
            (
                v["hash"].as_str().unwrap_or_default().to_owned(),
                v["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn role(build: &Build, role: &str) -> (String, String) {
    (build.hash.clone(), role.to_owned())
}

#[tokio::test]
async fn an_uploaded_version_is_listed_once_and_runs_nowhere() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());

    let (status, body) = upload(&admin, &v2).await;
    assert_eq!(status, 201, "{body}");
    assert_plugin_info(&body, &v2);
    assert_eq!(body["role"], "idle", "{body}");
    let (status, again) = upload(&admin, &v2).await;
    assert_eq!(status, 200, "the same bytes again: {again}");
    assert_eq!(again["hash"], body["hash"]);
    assert_eq!(
        roles(&admin).await,
        [role(&v1, "stable"), role(&v2, "idle")]
    );

    let (mut a, mut b) = pair(&server, "r").await;
    assert_eq!(version_now(&mut a, &mut b, 0).await, "a");
    let rollout = admin.get_json("/admin/plugins/stamp/rollout").await;
    assert_plugin_info(&rollout["stable"], &v1);
    assert_eq!(rollout["canary"], Value::Null, "{rollout}");

    let unknown = admin
        .request("POST", "/admin/plugins/nope/versions", &v2.bytes)
        .await;
    assert_eq!(unknown.status, 404, "{unknown}");
    let garbage = admin
        .request("POST", "/admin/plugins/stamp/versions", b"not wasm")
        .await;
    assert_eq!(garbage.status, 422, "{garbage}");
    assert!(garbage.json()["error"].is_string(), "{garbage}");
}

#[tokio::test]
async fn a_canary_at_half_runs_in_half_the_rooms_each_pinned_for_its_life() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());
    upload(&admin, &v2).await;
    let rollout = set_rollout(&admin, json!({ "canary": v2.hash, "percent": 50 })).await;
    assert_plugin_info(&rollout["stable"], &v1);
    assert_plugin_info(&rollout["canary"], &v2);
    assert_eq!(rollout["canary"]["percent"], 50, "{rollout}");
    assert_eq!(rollout["canary"]["rooms"], json!([]), "{rollout}");
    assert_eq!(
        admin.get_json("/admin/plugins/stamp/rollout").await,
        rollout
    );
    assert_eq!(
        roles(&admin).await,
        [role(&v1, "stable"), role(&v2, "canary")]
    );

    let names: Vec<String> = (0..12).map(|i| format!("canary-{i}")).collect();
    let expected = |room: &str| if bucket(room) < 50 { "b" } else { "a" };
    let marks: Vec<&str> = names.iter().map(|room| expected(room)).collect();
    assert!(
        marks.contains(&"a") && marks.contains(&"b"),
        "the test needs rooms on both sides: {marks:?}"
    );
    let mut rooms = Vec::new();
    for room in &names {
        let (mut a, mut b) = pair(&server, room).await;
        assert_eq!(
            version_now(&mut a, &mut b, 0).await,
            expected(room),
            "{room}"
        );
        rooms.push((room, a, b));
    }

    // Each version's calls are counted under its own version string.
    let metrics = admin.metrics().await;
    for version in ["1.0.0", "2.0.0"] {
        let labels = [("plugin", "stamp"), ("version", version)];
        let calls = metrics.get("switchboard_plugin_calls_total", &labels);
        assert!(
            calls.is_some_and(|n| n >= 1.0),
            "stamp {version}: {calls:?}"
        );
    }

    // Every new room on stable, then every new room on the canary: the
    // open rooms keep what they had.
    for (percent, late) in [(0, "a"), (100, "b")] {
        set_rollout(&admin, json!({ "canary": v2.hash, "percent": percent })).await;
        for (seq, (room, a, b)) in (1..).zip(rooms.iter_mut()) {
            let got = stamp(a, b, seq).await;
            assert_eq!(
                got["version"],
                expected(room),
                "{room} at {percent}%: {got}"
            );
        }
        let (mut a, mut b) = pair(&server, &format!("late-{percent}")).await;
        assert_eq!(version_now(&mut a, &mut b, 0).await, late, "{percent}%");
    }

    // A room that closes and opens again is pinned afresh. (A closed
    // connection has left its room when its close handshake ends.)
    let (room, a, b) = rooms.remove(2);
    assert_eq!(expected(room), "a");
    a.close(1000).await;
    b.close(1000).await;
    let (mut a, mut b) = pair(&server, room).await;
    assert_eq!(version_now(&mut a, &mut b, 0).await, "b", "{room} reopened");
}

#[tokio::test]
async fn a_canary_for_listed_rooms_runs_only_in_those_opened_after() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let v2 = v2();
    upload(&admin, &v2).await;
    let (mut early_a, mut early_b) = pair(&server, "listed-early").await;

    let policy = json!({ "canary": v2.hash, "rooms": ["listed", "listed-early"] });
    let rollout = set_rollout(&admin, policy).await;
    assert_eq!(rollout["canary"]["percent"], 0, "{rollout}");
    assert_eq!(
        rollout["canary"]["rooms"],
        json!(["listed", "listed-early"])
    );

    let (mut a, mut b) = pair(&server, "listed").await;
    assert_eq!(version_now(&mut a, &mut b, 0).await, "b");
    let (mut c, mut d) = pair(&server, "unlisted").await;
    assert_eq!(version_now(&mut c, &mut d, 0).await, "a");
    assert_eq!(
        version_now(&mut early_a, &mut early_b, 0).await,
        "a",
        "a room open before the rollout keeps its version"
    );
}

#[tokio::test]
async fn promote_moves_every_room_and_abort_moves_the_canary_rooms_back_with_their_storage() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());
    upload(&admin, &v1).await;
    upload(&admin, &v2).await;
    let (mut a, mut b) = pair(&server, "before").await;
    set_rollout(&admin, json!({ "canary": v2.hash, "rooms": ["canary"] })).await;
    let (mut c, mut d) = pair(&server, "canary").await;

    // (room, version, count) after each message: the room's counter runs
    // on across every move.
    let check = async |from: &mut Client, to: &mut Client, seq: u64, version: &str, count: u64| {
        let got = stamp(from, to, seq).await;
        assert_eq!(
            (&got["version"], &got["count"]),
            (&json!(version), &json!(count)),
            "{got}"
        );
    };
    check(&mut a, &mut b, 0, "a", 1).await;
    check(&mut c, &mut d, 0, "b", 1).await;

    post_expecting(&admin, "/admin/plugins/stamp/promote", &v2).await;
    check(&mut a, &mut b, 1, "b", 2).await;
    check(&mut c, &mut d, 1, "b", 2).await;
    let rollout = admin.get_json("/admin/plugins/stamp/rollout").await;
    assert_plugin_info(&rollout["stable"], &v2);
    assert_eq!(rollout["canary"], Value::Null);
    let promote_again = admin.post("/admin/plugins/stamp/promote").await;
    assert_eq!(promote_again.status, 409, "{promote_again}");

    // v1 is now the canary of one new room, then aborted.
    set_rollout(&admin, json!({ "canary": v1.hash, "rooms": ["back"] })).await;
    let (mut e, mut f) = pair(&server, "back").await;
    check(&mut e, &mut f, 0, "a", 1).await;
    check(&mut a, &mut b, 2, "b", 3).await;
    post_expecting(&admin, "/admin/plugins/stamp/abort", &v2).await;
    check(&mut e, &mut f, 1, "b", 2).await;
    let abort_again = admin.post("/admin/plugins/stamp/abort").await;
    assert_eq!(abort_again.status, 409, "{abort_again}");

    // The promote is a swap a rollback undoes.
    post_expecting(&admin, "/admin/plugins/stamp/rollback", &v1).await;
    check(&mut c, &mut d, 2, "a", 3).await;
    for client in [&mut a, &mut c, &mut e] {
        client.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn a_hot_swap_during_a_canary_moves_every_room_and_ends_it() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());
    upload(&admin, &v2).await;
    set_rollout(&admin, json!({ "canary": v2.hash, "percent": 100 })).await;
    let (mut a, mut b) = pair(&server, "r").await;
    assert_eq!(version_now(&mut a, &mut b, 0).await, "b");

    let response = admin.put("/admin/plugins/stamp", &v1.bytes).await;
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(version_now(&mut a, &mut b, 1).await, "a");
    let rollout = admin.get_json("/admin/plugins/stamp/rollout").await;
    assert_eq!(rollout["canary"], Value::Null, "{rollout}");
}

#[tokio::test]
async fn bad_rollout_requests_are_4xx_with_a_reason_and_change_nothing() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());
    upload(&admin, &v2).await;
    let before = admin.get_json("/admin/plugins/stamp/rollout").await;

    let v2_hash = v2.hash.as_str();
    let refused: [(&str, String, u16); 10] = [
        ("not JSON", "{".into(), 400),
        ("no canary", json!({ "percent": 5 }).to_string(), 400),
        (
            "no percent or rooms",
            json!({ "canary": v2_hash }).to_string(),
            400,
        ),
        (
            "percent over 100",
            json!({ "canary": v2_hash, "percent": 101 }).to_string(),
            400,
        ),
        (
            "negative percent",
            json!({ "canary": v2_hash, "percent": -1 }).to_string(),
            400,
        ),
        (
            "a bad room id",
            json!({ "canary": v2_hash, "rooms": [""] }).to_string(),
            400,
        ),
        (
            "an unknown field",
            json!({ "canary": v2_hash, "percent": 1, "x": 1 }).to_string(),
            400,
        ),
        (
            "a version never uploaded",
            json!({ "canary": "0".repeat(64), "percent": 1 }).to_string(),
            422,
        ),
        (
            "the stable version",
            json!({ "canary": v1.hash, "percent": 1 }).to_string(),
            409,
        ),
        (
            "an unknown plugin",
            json!({ "canary": v2_hash, "percent": 1 }).to_string(),
            404,
        ),
    ];
    for (what, body, status) in &refused {
        let path = if *status == 404 {
            "/admin/plugins/nope/rollout"
        } else {
            "/admin/plugins/stamp/rollout"
        };
        let response = admin.put(path, body.as_bytes()).await;
        assert_eq!(response.status, *status, "{what}: {response}");
        let reason = response.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!reason.is_empty(), "{what}: no reason in {response}");
    }
    assert_eq!(admin.get_json("/admin/plugins/stamp/rollout").await, before);

    for action in ["promote", "abort"] {
        let response = admin.post(&format!("/admin/plugins/stamp/{action}")).await;
        assert_eq!(response.status, 409, "{action} with no canary: {response}");
        let response = admin.post(&format!("/admin/plugins/nope/{action}")).await;
        assert_eq!(
            response.status, 404,
            "{action} of an unknown plugin: {response}"
        );
    }

    // The canary's policy can change while it runs.
    set_rollout(&admin, json!({ "canary": v2.hash, "percent": 10 })).await;
    let rollout = set_rollout(&admin, json!({ "canary": v2.hash, "percent": 20 })).await;
    assert_eq!(rollout["canary"]["percent"], 20);
    let (mut a, mut b) = pair(&server, "still-served").await;
    version_now(&mut a, &mut b, 0).await;
    a.assert_open().await;
}

/// `PUT /admin/plugins/stamp/rollout/rooms/{room}` with `runs`; returns
/// the status and the body.
async fn move_room(admin: &Admin, room: &str, runs: &str) -> (u16, Value) {
    let path = format!("/admin/plugins/stamp/rollout/rooms/{room}");
    let body = json!({ "runs": runs }).to_string();
    let response = admin.put(&path, body.as_bytes()).await;
    let status = response.status;
    (status, response.json())
}

/// One open room moves onto the canary and back between two of its
/// events, keeping its storage, while the rooms beside it stay where they
/// are; a room that is not open, a bad body, or a canary that is not
/// there are 4xx.
#[tokio::test]
async fn one_open_room_moves_onto_the_canary_and_back() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());
    upload(&admin, &v2).await;
    let (status, body) = move_room(&admin, "nowhere", "canary").await;
    assert_eq!(status, 404, "{body}");

    let (mut a, mut b) = pair(&server, "moved").await;
    let (mut c, mut d) = pair(&server, "beside").await;
    let (status, body) = move_room(&admin, "moved", "canary").await;
    assert_eq!(status, 409, "no canary yet: {body}");
    set_rollout(&admin, json!({ "canary": v2.hash, "percent": 0 })).await;
    assert_eq!(stamp(&mut a, &mut b, 0).await["version"], "a");

    let (status, body) = move_room(&admin, "moved", "canary").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room"], "moved", "{body}");
    assert_eq!(body["runs"], "canary", "{body}");
    assert_plugin_info(&body["version"], &v2);
    let got = stamp(&mut a, &mut b, 1).await;
    assert_eq!(
        (&got["version"], &got["count"]),
        (&json!("b"), &json!(2)),
        "{got}"
    );
    assert_eq!(version_now(&mut c, &mut d, 0).await, "a", "the room beside");

    let (status, body) = move_room(&admin, "moved", "stable").await;
    assert_eq!(status, 200, "{body}");
    assert_plugin_info(&body["version"], &v1);
    let got = stamp(&mut a, &mut b, 2).await;
    assert_eq!(
        (&got["version"], &got["count"]),
        (&json!("a"), &json!(3)),
        "{got}"
    );

    for (path, body, status) in [
        (
            "/admin/plugins/stamp/rollout/rooms/moved",
            r#"{"runs": "beta"}"#,
            400,
        ),
        ("/admin/plugins/stamp/rollout/rooms/moved", "[]", 400),
        (
            "/admin/plugins/nope/rollout/rooms/moved",
            r#"{"runs": "canary"}"#,
            404,
        ),
    ] {
        let response = admin.put(path, body.as_bytes()).await;
        assert_eq!(response.status, status, "{path} {body}: {response}");
        assert!(response.json()["error"].is_string(), "{response}");
    }
}

/// `stamp@<label>.wasm` files in the plugins directory are versions of
/// `stamp`: uploaded at start and whenever one appears or changes, never
/// made live by themselves, and ready to run as a canary. Files named for
/// no chain entry, or with no label, are left alone.
#[tokio::test]
async fn versions_in_the_plugins_dir_are_uploaded_and_can_run_as_a_canary() {
    let (v1, v2, flaky) = (v1(), v2(), flaky());
    let cache = tempfile::tempdir().expect("cache dir");
    let plugins = tempfile::tempdir().expect("plugins dir");
    for (name, build) in [
        ("stamp.wasm", &v1),
        ("stamp@two.wasm", &v2),
        ("nope@two.wasm", &flaky),
        ("stamp@.wasm", &flaky),
    ] {
        std::fs::write(plugins.path().join(name), &*build.bytes).expect("write a plugin file");
    }
    let server = start_watching(plugins.path(), cache.path()).await;
    let admin = server.admin();
    roles_within(&admin, &[role(&v1, "stable"), role(&v2, "idle")]).await;

    replace_file(plugins.path(), "stamp@three.wasm", &flaky.bytes);
    let three = [role(&v1, "stable"), role(&v2, "idle"), role(&flaky, "idle")];
    roles_within(&admin, &three).await;
    let log = server.log();
    assert!(
        log.contains("stamp@three.wasm"),
        "the upload names its file: {log}"
    );

    set_rollout(&admin, json!({ "canary": v2.hash, "percent": 100 })).await;
    let (mut a, mut b) = pair(&server, "r").await;
    assert_eq!(version_now(&mut a, &mut b, 1).await, "b");
    assert_plugin_info(&listed_stamp(&admin).await, &v1);
}

/// Waits (up to 10 s) until `GET /admin/plugins/stamp/versions` lists
/// exactly `expected`.
async fn roles_within(admin: &Admin, expected: &[(String, String)]) {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = roles(admin).await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "versions {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// The hot-swap guarantee under load, for promote and abort.

/// One server, stamp 1.0.0 stable, both builds uploaded.
async fn loaded() -> (Server, tempfile::TempDir, Build, Build) {
    let (server, cache) = start().await;
    let (v1, v2) = (v1(), v2());
    let admin = server.admin();
    assert_eq!(upload(&admin, &v1).await.0, 201);
    assert_eq!(upload(&admin, &v2).await.0, 201);
    (server, cache, v1, v2)
}

/// Twenty times: the other build becomes a canary for no room, then is
/// promoted, moving every room at the promote's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_promotes_under_load_drop_nothing_and_switch_at_the_answer() {
    let shape = Shape {
        name: "promotes under load",
        ..LOAD
    };
    let (server, _cache, v1, v2) = loaded().await;
    let admin = server.admin();

    let run = shape
        .run(&[server.addr()], &v1, &v2, async |_, next| {
            set_rollout(&admin, json!({ "canary": next.hash, "percent": 0 })).await;
            post_expecting(&admin, "/admin/plugins/stamp/promote", next).await;
            Instant::now()
        })
        .await;
    shape.check(&run);
    let rollout = admin.get_json("/admin/plugins/stamp/rollout").await;
    assert_plugin_info(&rollout["stable"], &v1);
    assert_eq!(rollout["canary"], Value::Null);
}

/// Every room opens on a canary at 100%, then the canary is aborted under
/// load: every room moves back to stable at the abort's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_under_load_drops_nothing_and_switches_at_the_answer() {
    let shape = Shape {
        name: "abort under load",
        min_sent: 1_000,
        ..LOAD
    };
    let (server, _cache, v1, v2) = loaded().await;
    let admin = server.admin();
    set_rollout(&admin, json!({ "canary": v2.hash, "percent": 100 })).await;

    let run = shape
        .run_swaps(1, &[server.addr()], &v2, &v1, async |_, stable| {
            post_expecting(&admin, "/admin/plugins/stamp/abort", stable).await;
            Instant::now()
        })
        .await;
    shape.check(&run);
    assert_eq!(
        roles(&admin).await,
        [role(&v1, "stable"), role(&v2, "idle")]
    );
}

// ---------------------------------------------------------------------------
// Error budgets: a canary that fails too often is rolled back by itself.

/// stamp 3.0.0 (stamps `"c"`): traps on every message whose `seq` is a
/// multiple of 20, before it stores anything.
fn flaky() -> Build {
    Build::read(env!("STAMP_FLAKY_WASM"), "3.0.0", "c")
}

/// What one room saw of a canary failing 5% of its calls.
#[derive(Default)]
struct Exchange {
    /// The version of each message delivered, in order.
    marks: Vec<String>,
    /// For each message answered `PLUGIN_ERROR`, how many had been
    /// delivered before it.
    failed_at: Vec<usize>,
}

impl Exchange {
    fn delivered(&mut self, got: &Value, seq: u64) {
        assert_eq!(got["seq"], seq, "in order: {got}");
        self.marks
            .push(got["version"].as_str().unwrap_or_default().into());
        assert_eq!(got["count"], self.marks.len(), "the count runs on: {got}");
    }

    /// Messages delivered or failed: the `seq` of the next.
    fn handled(&self) -> u64 {
        (self.marks.len() + self.failed_at.len()) as u64
    }

    /// Messages in a row from stable at the end.
    fn stable_run(&self) -> usize {
        self.marks.iter().rev().take_while(|m| *m == "a").count()
    }
}

/// `a` sends `b` twenty messages at a time, the first of each twenty
/// (`seq` a multiple of 20) one the flaky version fails, until `b` has had
/// `settled` messages in a row from stable after some from the canary, or
/// `limit` messages. Checks that each first message is either delivered
/// or answered `PLUGIN_ERROR` (never both, never neither), and that every
/// other one is delivered, in order, with the room's count running on.
async fn exchange(a: &mut Client, b: &mut Client, settled: usize, limit: u64) -> Exchange {
    let mut seen = Exchange::default();
    let mut first = 0;
    while first < limit {
        for seq in first..first + 20 {
            let data = json!({ "to": b.client_id, "seq": seq });
            a.send_json(json!({ "event": "stamp:msg", "id": format!("s{seq}"), "data": data }))
                .await;
        }
        let got = b.expect_event("stamp:msg").await;
        if got["seq"] == first {
            seen.delivered(&got, first);
        } else {
            // Failed: answered, and the next one is what `b` got.
            a.expect_error(
                "PLUGIN_ERROR",
                Some(&format!("s{first}")),
                Some("stamp:msg"),
            )
            .await;
            seen.failed_at.push(seen.marks.len());
            seen.delivered(&got, first + 1);
        }
        // The other nineteen, which every version delivers.
        while seen.handled() < first + 20 {
            let got = b.expect_event("stamp:msg").await;
            seen.delivered(&got, seen.handled());
        }
        first += 20;
        if seen.marks.iter().any(|m| m == "c") && seen.stable_run() >= settled {
            break;
        }
    }
    seen
}

/// A canary failing one call in twenty (5%), with a budget of 2% judged
/// from 400 calls, under traffic in eight rooms it runs in: it is rolled
/// back by itself, every room moves back to stable at an event boundary
/// and stays there, and no client sees anything but the failing messages'
/// `PLUGIN_ERROR`s: every other message is delivered once, in order, with
/// the room's count (kept by both versions) running on. The log, the
/// metrics and the rollout say what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_over_its_error_budget_is_rolled_back_by_itself_with_nothing_dropped() {
    const ROOMS: usize = 8;
    // Each sender sends as fast as the rooms go: no rate limit in the way.
    let (server, _cache) = start_with("[limits]\nrate_per_sec = 1e6\nrate_burst = 1e6").await;
    let admin = server.admin();
    let (v1, flaky) = (v1(), flaky());
    assert_eq!(upload(&admin, &flaky).await.0, 201);
    let budget = json!({ "errorPercent": 2.0, "minCalls": 400 });
    let policy = json!({ "canary": flaky.hash, "percent": 100, "budget": budget });
    let rollout = set_rollout(&admin, policy).await;
    assert_eq!(rollout["canary"]["budget"], budget, "{rollout}");
    assert_eq!(rollout["rolledBack"], Value::Null, "{rollout}");

    // Every room opens (on the canary) before any traffic.
    let mut pairs = Vec::new();
    for room in 0..ROOMS {
        pairs.push(pair(&server, &format!("flaky-{room}")).await);
    }
    let mut rooms = tokio::task::JoinSet::new();
    for (mut a, mut b) in pairs {
        rooms.spawn(async move {
            let seen = exchange(&mut a, &mut b, 20, 20 * 2_000).await;
            a.expect_silence(QUIET).await;
            b.expect_silence(QUIET).await;
            seen
        });
    }
    let mut failed = 0;
    while let Some(room) = rooms.join_next().await {
        let seen = room.expect("a room's exchange failed");
        let first_stable = seen.marks.iter().position(|m| m == "a");
        let first_stable = first_stable.expect("the room never went back to stable");
        assert!(
            seen.marks[..first_stable].iter().all(|m| m == "c")
                && seen.marks[first_stable..].iter().all(|m| m == "a"),
            "canary, then stable for good: {:?}",
            seen.marks
        );
        assert!(first_stable > 0, "the room opened on the canary");
        assert!(
            seen.failed_at.iter().all(|at| *at <= first_stable),
            "only the canary fails: {:?} against {:?}",
            seen.failed_at,
            seen.marks
        );
        failed += seen.failed_at.len();
    }
    assert!(failed >= 2, "the canary failed {failed} times");

    let rollout = admin.get_json("/admin/plugins/stamp/rollout").await;
    assert_eq!(rollout["canary"], Value::Null, "{rollout}");
    let rolled = &rollout["rolledBack"];
    assert_plugin_info(rolled, &flaky);
    assert_eq!(rolled["budget"], budget, "{rollout}");
    let (calls, errors) = (&rolled["spent"]["calls"], &rolled["spent"]["errors"]);
    let (calls, errors) = (calls.as_u64().unwrap_or(0), errors.as_u64().unwrap_or(0));
    assert!(calls >= 400 && errors * 50 > calls, "{rollout}");
    assert!(
        errors as usize <= failed,
        "{errors} errors, {failed} seen: {rollout}"
    );
    assert!(
        rolled["reason"]
            .as_str()
            .is_some_and(|r| r.contains("budget")),
        "{rollout}"
    );
    assert!(rolled["rolledBackAt"].is_u64(), "{rollout}");
    assert_eq!(
        roles(&admin).await,
        [role(&v1, "stable"), role(&flaky, "idle")]
    );
    let metrics = admin.metrics().await;
    let rollbacks =
        metrics.get_or_zero("switchboard_canary_rollbacks_total", &[("plugin", "stamp")]);
    assert_eq!(rollbacks, 1.0, "{}", metrics.summary());
    let log = server.log();
    assert!(log.contains("canary rolled back"), "{log}");

    // Rooms that open now run stable: the canary is over.
    let (mut a, mut b) = pair(&server, "after").await;
    assert_eq!(version_now(&mut a, &mut b, 0).await, "a");
}

// ---------------------------------------------------------------------------
// Shadow runs: a candidate asked every call the live version answers.

/// `PUT /admin/plugins/stamp/shadow` with `hash` as the candidate,
/// expecting 200; returns the shadow.
async fn start_shadow(admin: &Admin, hash: &str) -> Value {
    let body = json!({ "candidate": hash }).to_string();
    let response = admin
        .put("/admin/plugins/stamp/shadow", body.as_bytes())
        .await;
    assert_eq!(response.status, 200, "PUT shadow: {response}");
    response.json()
}

/// `GET /admin/plugins/stamp/shadow` until it has compared `calls` calls.
async fn shadow_after(admin: &Admin, calls: u64) -> Value {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let shadow = admin.get_json("/admin/plugins/stamp/shadow").await;
        if shadow["calls"].as_u64() >= Some(calls) {
            return shadow;
        }
        assert!(
            Instant::now() < deadline,
            "{calls} calls not compared: {shadow}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A shadow of stamp 2.0.0 beside the live 1.0.0: clients get only what
/// the live version decides, the room's count (host storage) moves only
/// by the live version's writes, and every `stamp:msg` is counted as a
/// difference, with the two decisions in the sample and the metrics. A
/// shadow of the live version itself finds no difference.
#[tokio::test]
async fn a_shadow_sees_every_call_and_decides_nothing() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let (v1, v2) = (v1(), v2());
    upload(&admin, &v2).await;
    let shadow = start_shadow(&admin, &v2.hash).await;
    assert_plugin_info(&shadow["candidate"], &v2);
    assert_eq!(
        (shadow["calls"].as_u64(), shadow["differences"].as_u64()),
        (Some(0), Some(0))
    );

    let (mut a, mut b) = pair(&server, "r").await;
    for seq in 0..3 {
        let got = stamp(&mut a, &mut b, seq).await;
        assert_eq!(
            (&got["version"], &got["count"]),
            (&json!("a"), &json!(seq + 1)),
            "{got}"
        );
    }
    a.expect_silence(QUIET).await;
    let shadow = shadow_after(&admin, 3).await;
    assert_eq!(
        shadow["events"]["stamp:msg"],
        json!({ "calls": 3, "differences": 3 }),
        "{shadow}"
    );
    assert_eq!(shadow["differences"], 3, "{shadow}");
    assert_eq!(shadow["dropped"], 0, "{shadow}");
    let sample = shadow["sample"].as_array().cloned().unwrap_or_default();
    assert_eq!(sample.len(), 3, "{shadow}");
    for difference in &sample {
        assert_eq!(
            (&difference["event"], &difference["room"]),
            (&json!("stamp:msg"), &json!("r"))
        );
        let (live, candidate) = (difference["live"].as_str(), difference["shadow"].as_str());
        assert!(
            live.is_some_and(|l| l.contains(r#""version":"a""#)),
            "{difference}"
        );
        assert!(
            candidate.is_some_and(|s| s.contains(r#""version":"b""#)),
            "{difference}"
        );
    }
    let metrics = admin.metrics().await;
    let labels = [("plugin", "stamp"), ("event", "stamp:msg")];
    assert_eq!(
        metrics.get_or_zero("switchboard_shadow_differences_total", &labels),
        3.0
    );
    assert_eq!(
        metrics.get_or_zero("switchboard_shadow_calls_total", &labels),
        3.0
    );

    let stopped = admin.delete("/admin/plugins/stamp/shadow").await;
    assert_eq!(stopped.status, 200, "{stopped}");
    assert_eq!(stopped.json()["calls"], 3, "{stopped}");
    let gone = admin.get("/admin/plugins/stamp/shadow").await;
    assert_eq!(gone.status, 404, "{gone}");

    // The live version against itself.
    start_shadow(&admin, &v1.hash).await;
    for seq in 3..6 {
        assert_eq!(stamp(&mut a, &mut b, seq).await["count"], seq + 1);
    }
    let shadow = shadow_after(&admin, 3).await;
    assert_eq!(
        (shadow["calls"].as_u64(), shadow["differences"].as_u64()),
        (Some(3), Some(0)),
        "{shadow}"
    );

    for (path, body, status) in [
        ("/admin/plugins/stamp/shadow", r#"{"candidate": 1}"#, 400),
        (
            "/admin/plugins/stamp/shadow",
            r#"{"candidate": "0000"}"#,
            422,
        ),
        (
            "/admin/plugins/nope/shadow",
            r#"{"candidate": "0000"}"#,
            404,
        ),
    ] {
        let response = admin.put(path, body.as_bytes()).await;
        assert_eq!(response.status, status, "{path} {body}: {response}");
        assert!(response.json()["error"].is_string(), "{response}");
    }
}

/// Calls about no room are shadowed too: the authentication of a client
/// that names no room, compared by a shadow of `auth-jwt` against itself,
/// with `room` null in what it counts.
#[tokio::test]
async fn a_shadow_compares_calls_about_no_room() {
    let (server, _cache) = start().await;
    let admin = server.admin();
    let listing = admin.get_json("/admin/plugins").await;
    let auth = (listing["plugins"].as_array().into_iter().flatten())
        .find(|p| p["name"] == "auth-jwt")
        .unwrap_or_else(|| panic!("auth-jwt not listed: {listing}"));
    let body = json!({ "candidate": auth["hash"] }).to_string();
    let path = "/admin/plugins/auth-jwt/shadow";
    let started = admin.put(path, body.as_bytes()).await;
    assert_eq!(started.status, 200, "{started}");

    for user in ["ann", "ben"] {
        Client::authed(&server, user).await;
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let shadow = loop {
        let shadow = admin.get_json(path).await;
        if shadow["events"]["auth"]["calls"].as_u64() >= Some(2) {
            break shadow;
        }
        assert!(
            Instant::now() < deadline,
            "2 auth calls not compared: {shadow}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        shadow["events"]["auth"],
        json!({ "calls": 2, "differences": 0 }),
        "{shadow}"
    );
}
