//! `plugins-js/rooms`, the default room policy in TypeScript with a role
//! check, as an operator would run it: in place of the built-in Rust
//! `rooms`, its capacity and allowed roles from the chain's config, and
//! swapped with the Rust policy and back twenty times under load
//! (swap_load.rs) with the hot-swap guarantee.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::chains::{self, builtin, from_file, with_config};
use switchboard_e2e::swap_load::{Build, GUEST, MEMBER, SWAPS, Shape, listed};
use switchboard_e2e::{Client, Server};
use tokio::time::Instant;

use super::example_plugins::built;
use super::hot_swap::{LOAD, swaps_total};

/// The JavaScript policy's component, built by `scripts/build-js-plugins`.
const ROOMS_JS_WASM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../plugins-js/rooms/dist/rooms.wasm"
);
/// The built-in policy's component, built from `plugins/rooms`.
const ROOMS_WASM: &str = env!("ROOMS_WASM");
const STAMP_WASM: &str = env!("STAMP_WASM");

/// What `stamp` 1.0.0, live throughout, puts in a relayed `stamp:msg`.
const STAMP_MARK: &str = "a";

/// Room capacity: every churner fits in a load room at once, so that only
/// a role is ever refused there; a room of the test's own shows the limit.
const CAPACITY: usize = LOAD.per_room + LOAD.churners;

const SHAPE: Shape = Shape {
    name: "JS and Rust rooms swapped under load",
    ..LOAD
};

/// The JavaScript policy, which lets only [`MEMBER`]s join.
fn js() -> Build {
    let path = built(ROOMS_JS_WASM, "scripts/build-js-plugins");
    Build::read(path, "1.0.0", STAMP_MARK).refusing_guests()
}

/// The built-in policy, which has no role check and ignores
/// `allowed_roles`; it describes itself with the workspace's version.
fn rust() -> Build {
    Build::read(ROOMS_WASM, env!("CARGO_PKG_VERSION"), STAMP_MARK)
}

/// auth-jwt, the JavaScript `rooms` (capped at [`CAPACITY`], members
/// only), stamp 1.0.0 and signaling, compiling into `cache`.
///
/// The 1.7 MB component compiles at start (seconds on two busy
/// cores); every swap back to it loads that compilation from the cache.
async fn start(cache: &Path) -> Server {
    let rooms = with_config(
        from_file("rooms", ROOMS_JS_WASM),
        &format!("capacity = {CAPACITY}, allowed_roles = [{MEMBER:?}]"),
    );
    let chain = [
        builtin("auth-jwt"),
        rooms,
        from_file("stamp", STAMP_WASM),
        builtin("signaling"),
    ];
    let preamble = format!("[plugin_cache]\ndir = {:?}", cache.display().to_string());
    Server::builder(&chains::config(&preamble, &chain))
        .startup_timeout(Duration::from_secs(300))
        .start()
        .await
}

/// Asks to join `room` and expects the error `code`; returns its message.
async fn refused(client: &mut Client, room: &str, code: &str) -> Value {
    client
        .send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": room } }))
        .await;
    client
        .expect_error(code, Some("j"), Some("room:join"))
        .await["message"]
        .clone()
}

/// The JavaScript policy is the live one: `/admin/plugins` lists its build
/// as `rooms`; in `room`, with room to spare, a guest and a token without
/// a role are FORBIDDEN in its words; [`CAPACITY`] members get in and the
/// next is ROOM_FULL, while a member asking again is ALREADY_IN_ROOM. The
/// members hear of none of the refused.
async fn assert_js_policy_in_force(server: &Server, js: &Build, room: &str) {
    let rooms = listed(&server.admin(), "rooms").await;
    assert_eq!(
        (&rooms["version"], &rooms["hash"]),
        (&json!(js.version), &json!(js.hash)),
        "{rooms}"
    );

    let mut first = Client::authed_as(server, &format!("{room}-0"), MEMBER).await;
    first.join(room).await;
    let mut guest = Client::authed_as(server, &format!("{room}-guest"), GUEST).await;
    assert_eq!(
        refused(&mut guest, room, "FORBIDDEN").await,
        "the role `guest` may not join a room"
    );
    let mut anyone = Client::authed(server, &format!("{room}-anyone")).await;
    assert_eq!(
        refused(&mut anyone, room, "FORBIDDEN").await,
        "a token without a role may not join a room"
    );

    let mut members = vec![first];
    for i in 1..CAPACITY {
        let mut member = Client::authed_as(server, &format!("{room}-{i}"), MEMBER).await;
        member.join(room).await;
        members.push(member);
    }
    let mut late = Client::authed_as(server, &format!("{room}-late"), MEMBER).await;
    assert_eq!(
        refused(&mut late, room, "ROOM_FULL").await,
        "the room is full"
    );
    // Asking again from inside the full room: ALREADY_IN_ROOM comes
    // before ROOM_FULL (PROTOCOL.md, the order of checks). The last to
    // join has heard of nobody since.
    let last = members.last_mut().expect("members");
    refused(last, room, "ALREADY_IN_ROOM").await;
    for _ in 1..CAPACITY {
        members[0].expect_event("room:peer-joined").await;
    }
    members[0].expect_silence(Duration::from_millis(300)).await;
    for member in members {
        member.close(1000).await;
    }
}

/// Whether the live policy lets a guest join: `guest` asks to join a room
/// of its own (let in, it leaves again).
async fn admits_guest(guest: &mut Client) -> bool {
    guest
        .send_json(json!({ "event": "room:join", "id": "probe", "data": { "roomId": "probe" } }))
        .await;
    let answer = guest.recv().await;
    assert_eq!(answer["id"], "probe", "{answer}");
    if answer["event"] == "room:joined" {
        guest
            .send_json(json!({ "event": "room:leave", "id": "probe-leave" }))
            .await;
        guest.expect_reply("room:left", "probe-leave").await;
        return true;
    }
    assert_eq!(
        (&answer["event"], &answer["data"]["code"]),
        (&json!("error"), &json!("FORBIDDEN")),
        "{answer}"
    );
    false
}

/// The operator's story: the shipped Rust policy replaced by the team's
/// own TypeScript one and back, twenty times, while 200 clients send
/// `stamp:msg` 20 times a second and churners (half of them guests) come
/// and go. Nothing is dropped or duplicated, `stamp`'s room counters (host
/// storage) run on, and every churner's join was admitted or refused as
/// the policy live between its request and its answer decides: a guest is
/// FORBIDDEN while the JavaScript policy is live and let in while the Rust
/// one is. After each swap's answer a guest of the test's own finds the new
/// policy in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_swaps_of_js_and_rust_rooms_under_load_drop_nothing_and_admit_by_the_live_one() {
    let (js, rust) = (js(), rust());
    let cache = tempfile::tempdir().expect("cache dir");
    let server = start(cache.path()).await;
    let admin = server.admin();
    assert_js_policy_in_force(&server, &js, "before").await;
    let mut guest = Client::authed_as(&server, "prober", GUEST).await;

    let mut swap_times = Vec::new();
    let run = SHAPE
        .run(&[server.addr()], &js, &rust, async |i, next| {
            let requested = Instant::now();
            let response = admin.put("/admin/plugins/rooms", &next.bytes).await;
            let answered = Instant::now();
            assert_eq!(
                response.status, 200,
                "swap {i} to {}: {response}",
                next.version
            );
            let body = response.json();
            assert_eq!(
                (&body["version"], &body["hash"]),
                (&json!(next.version), &json!(next.hash)),
                "swap {i}: {body}"
            );
            swap_times.push(answered - requested);
            assert_eq!(
                admits_guest(&mut guest).await,
                next.admits_guests,
                "a guest's join after swap {i} to {}",
                next.version
            );
            answered
        })
        .await;
    SHAPE.check(&run);
    eprintln!(
        "JS and Rust rooms: each swap's request to answer (ms) {:?}",
        swap_times
            .iter()
            .map(Duration::as_millis)
            .collect::<Vec<_>>()
    );

    assert_js_policy_in_force(&server, &js, "after").await;
    assert_eq!(swaps_total(&admin, "ok").await, SWAPS as f64);
    assert_eq!(swaps_total(&admin, "failed").await, 0.0);
}
