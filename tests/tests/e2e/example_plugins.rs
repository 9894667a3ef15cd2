//! The example plugins in `plugins/`, end to end: `chat` (PROTOCOL.md,
//! "Custom events"), `moderation` (lock, unlock, kick) and `room-ttl`
//! (rooms that close themselves).

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::admin::encode_path_segment;
use switchboard_e2e::chains::{self, builtin, from_file, with_config};
use switchboard_e2e::{Client, Server};
use tokio::time::Instant;

const QUIET: Duration = Duration::from_millis(300);

const CHAT_WASM: &str = env!("CHAT_WASM");
const MODERATION_WASM: &str = env!("MODERATION_WASM");
const ROOM_TTL_WASM: &str = env!("ROOM_TTL_WASM");

/// `GET /admin/rooms/{room}`'s member ids, or `None` on 404.
async fn members(server: &Server, room: &str) -> Option<Vec<String>> {
    let response = server
        .admin()
        .get(&format!("/admin/rooms/{}", encode_path_segment(room)))
        .await;
    match response.status {
        404 => None,
        200 => Some(
            response.json()["peers"]
                .as_array()
                .expect("peers array")
                .iter()
                .map(|p| p["clientId"].as_str().expect("clientId").to_owned())
                .collect(),
        ),
        _ => panic!("GET /admin/rooms/{room}: {response}"),
    }
}

#[tokio::test]
async fn the_example_plugins_are_built_in_and_enabled_by_name() {
    let chain = [
        builtin("auth-jwt"),
        with_config(builtin("room-ttl"), "ttl_ms = 60000"),
        builtin("moderation"),
        builtin("rooms"),
        builtin("chat"),
        builtin("signaling"),
    ];
    let server = Server::start(&chains::config("", &chain)).await;
    let listing = server.admin().get_json("/admin/plugins").await;
    let names: Vec<&str> = listing["plugins"]
        .as_array()
        .expect("plugins array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "auth-jwt",
            "room-ttl",
            "moderation",
            "rooms",
            "chat",
            "signaling"
        ]
    );

    let mut m = Client::authed_as(&server, "mod", "moderator").await;
    m.join("r").await;
    let mut a = Client::joined(&server, "alice", "r").await;
    m.expect_event("room:peer-joined").await;
    chat(&mut a, "c", json!({ "text": "hello" })).await;
    assert_eq!(
        m.expect_event("chat:message").await,
        json!({ "from": a.client_id, "text": "hello" })
    );
    m.send_json(json!({ "event": "room:lock", "id": "lock" }))
        .await;
    m.expect_reply("room:locked", "lock").await;
    assert_eq!(
        a.expect_event("room:locked").await,
        json!({ "roomId": "r" })
    );
}

// ---------------------------------------------------------------------------
// chat
//
// One set of scenarios, run against each build of the same behaviour: the
// Rust plugin (plugins/chat), the JavaScript one (plugins-js/chat, on the
// JS guest SDK) and the Python one (plugins-py/chat, on the Python guest
// SDK), so none can drift from the others.

/// The JavaScript chat's component, built by `scripts/build-js-plugins`.
const CHAT_JS_WASM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../plugins-js/chat/dist/chat.wasm"
);

/// The Python chat's component, built by `scripts/build-py-plugins`.
const CHAT_PY_WASM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../plugins-py/chat/dist/chat.wasm"
);

/// The first start of a server with the JavaScript chat, which compiles the
/// 1.7 MB component into the shared compile cache (seconds on two busy
/// cores), so that the other tests load it from there instead of compiling
/// it at once, each on its own.
static CHAT_JS_COMPILED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// The same for the Python chat's 18 MB component (about 7 s to compile).
static CHAT_PY_COMPILED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

#[derive(Clone, Copy)]
enum ChatBuild {
    Rust,
    Js,
    Py,
}

/// `path`, which `script` builds, or a failure that says to run it.
pub(crate) fn built(path: &'static str, script: &str) -> &'static str {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: run {script}"
    );
    path
}

/// A hot swap to the Python chat compiles its 18 MB component on the live
/// server, which takes hundreds of MB while it runs. Once the version is
/// live, what the compile took goes back: the server grows by the new
/// version's code and instance only. Before the swapper returned it, a
/// swap to the 12 MB JavaScript chat of the time (a StarlingMonkey build)
/// kept 340 MB more than the server had before; then about 115 MB more.
#[tokio::test]
async fn a_hot_swap_that_compiles_a_large_plugin_gives_the_compiles_memory_back() {
    const MAX_GROWTH: u64 = 220 << 20;
    let big =
        std::fs::read(built(CHAT_PY_WASM, "scripts/build-py-plugins")).expect("read chat.wasm");
    let big_hash = switchboard_e2e::swap_load::sha256_hex(&big);
    // A cache of its own, empty: the swap compiles.
    let cache = tempfile::tempdir().expect("cache dir");
    let plugins = tempfile::tempdir().expect("plugins dir");
    std::fs::copy(CHAT_WASM, plugins.path().join("chat.wasm")).expect("copy the Rust chat");
    let preamble = format!(
        "[watch]\ninterval_ms = 100\n[plugin_cache]\ndir = {:?}\n",
        cache.path().display().to_string()
    );
    let config = chains::with_extra(&preamble, &[builtin("chat")]);
    let server = Server::builder(&config)
        .plugins_dir(plugins.path())
        .start()
        .await;
    let before = server.rss_bytes();

    // Through the plugins directory, so that no request waits on the
    // compile, which takes tens of seconds on two busy cores.
    super::hot_swap::replace_file(plugins.path(), "chat.wasm", &big);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let listing = server.admin().get_json("/admin/plugins").await;
        let chat = listing["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "chat");
        if chat.is_some_and(|chat| chat["hash"] == big_hash.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Python chat is not live after 300 s: {listing}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = server.rss_bytes();
    assert!(
        after < before + MAX_GROWTH,
        "RSS {} MB before the swap, {} MB after",
        before >> 20,
        after >> 20
    );
}

/// A hot swap from the Rust chat to the Python one over the admin API
/// while a room chats through it, as a developer following
/// guest-sdk-py/README.md does: the answer names the Python build, which
/// is the one listed from then on, and every message, sent before the
/// swap, while it loads and after, reaches the other member once and in
/// order. The Python component is compiled once for the suite
/// (`CHAT_PY_COMPILED`); the swap loads it from the compile cache.
#[tokio::test]
async fn a_hot_swap_to_the_python_chat_keeps_the_room_chatting() {
    const MESSAGES: usize = 60;
    let python =
        std::fs::read(built(CHAT_PY_WASM, "scripts/build-py-plugins")).expect("read chat.wasm");
    let python_hash = switchboard_e2e::swap_load::sha256_hex(&python);
    drop(chat_server(ChatBuild::Py).await);
    let server = chat_server(ChatBuild::Rust).await;
    let (mut a, mut b) = (
        Client::joined(&server, "alice", "r").await,
        Client::joined(&server, "bob", "r").await,
    );
    a.expect_event("room:peer-joined").await;

    let texts: Vec<String> = (0..MESSAGES).map(|i| format!("message {i}")).collect();
    let (before, rest) = texts.split_at(MESSAGES / 3);
    for (i, text) in before.iter().enumerate() {
        chat(&mut a, &format!("m{i}"), json!({ "text": text })).await;
    }
    let admin = server.admin();
    let swap = admin.put("/admin/plugins/chat", &python);
    let send = async {
        for (i, text) in rest.iter().enumerate() {
            chat(&mut a, &format!("n{i}"), json!({ "text": text })).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (swapped, ()) = tokio::join!(swap, send);
    assert_eq!(swapped.status, 200, "{swapped}");
    assert_eq!(swapped.json()["hash"], python_hash.as_str(), "{swapped}");
    for text in &texts {
        assert_eq!(
            b.expect_event("chat:message").await,
            json!({ "from": a.client_id, "text": text })
        );
    }
    b.expect_silence(QUIET).await;
    let listing = admin.get_json("/admin/plugins").await;
    let chat_entry = (listing["plugins"].as_array().into_iter().flatten())
        .find(|p| p["name"] == "chat")
        .unwrap_or_else(|| panic!("chat not listed: {listing}"));
    assert_eq!(chat_entry["hash"], python_hash.as_str(), "{listing}");
    // Its schema, declared by the Python build, still holds.
    chat(&mut b, "long", json!({ "text": "x".repeat(2001) })).await;
    b.expect_error("INVALID_MESSAGE", Some("long"), Some("chat:message"))
        .await;
}

/// A server with the default chain and this build of `chat`.
async fn chat_server(build: ChatBuild) -> Server {
    let (path, compiled) = match build {
        ChatBuild::Rust => (CHAT_WASM, None),
        ChatBuild::Js => (
            built(CHAT_JS_WASM, "scripts/build-js-plugins"),
            Some(&CHAT_JS_COMPILED),
        ),
        ChatBuild::Py => (
            built(CHAT_PY_WASM, "scripts/build-py-plugins"),
            Some(&CHAT_PY_COMPILED),
        ),
    };
    let config = chains::with_extra("", &[from_file("chat", path)]);
    if let Some(compiled) = compiled {
        compiled
            .get_or_init(|| async {
                let server = Server::builder(&config)
                    .startup_timeout(Duration::from_secs(300))
                    .start()
                    .await;
                drop(server);
            })
            .await;
    }
    Server::start(&config).await
}

/// Each scenario as a test against each build: `chat_rust::NAME`,
/// `chat_js::NAME` and `chat_py::NAME`.
macro_rules! chat_scenarios {
    ($($scenario:ident),+ $(,)?) => {
        mod chat_rust {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::ChatBuild::Rust).await;
                }
            )+
        }

        mod chat_js {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::ChatBuild::Js).await;
                }
            )+
        }

        mod chat_py {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::ChatBuild::Py).await;
                }
            )+
        }
    };
}

chat_scenarios!(
    reaches_every_other_member_in_order_and_not_the_sender,
    outside_a_room_is_not_in_room,
    ignores_unknown_fields_and_does_not_forward_them,
    text_of_2000_characters_passes_and_2001_is_invalid_message,
);

/// `a`, `b` and `c` in `room`, past every `room:peer-joined`.
async fn trio(server: &Server, room: &str) -> (Client, Client, Client) {
    let mut a = Client::joined(server, "alice", room).await;
    let mut b = Client::joined(server, "bob", room).await;
    let c = Client::joined(server, "carol", room).await;
    a.expect_event("room:peer-joined").await;
    a.expect_event("room:peer-joined").await;
    b.expect_event("room:peer-joined").await;
    (a, b, c)
}

async fn chat(from: &mut Client, id: &str, data: Value) {
    from.send_json(json!({ "event": "chat:message", "id": id, "data": data }))
        .await;
}

async fn reaches_every_other_member_in_order_and_not_the_sender(build: ChatBuild) {
    let server = chat_server(build).await;
    let (mut a, mut b, mut c) = trio(&server, "r").await;
    let mut outsider = Client::joined(&server, "dave", "elsewhere").await;

    let texts: Vec<String> = (0..30).map(|i| format!("message {i} ✓")).collect();
    for (i, text) in texts.iter().enumerate() {
        chat(&mut a, &format!("m{i}"), json!({ "text": text })).await;
    }
    for receiver in [&mut b, &mut c] {
        for text in &texts {
            assert_eq!(
                receiver.expect_event("chat:message").await,
                json!({ "from": a.client_id, "text": text })
            );
        }
    }
    a.expect_silence(QUIET).await;
    outsider.expect_silence(Duration::ZERO).await;

    // Both ways.
    chat(&mut c, "back", json!({ "text": "hi alice" })).await;
    for receiver in [&mut a, &mut b] {
        assert_eq!(
            receiver.expect_event("chat:message").await,
            json!({ "from": c.client_id, "text": "hi alice" })
        );
    }
    c.expect_silence(QUIET).await;
}

async fn outside_a_room_is_not_in_room(build: ChatBuild) {
    let server = chat_server(build).await;
    let mut a = Client::authed(&server, "alice").await;
    chat(&mut a, "c", json!({ "text": "anyone?" })).await;
    a.expect_error("NOT_IN_ROOM", Some("c"), Some("chat:message"))
        .await;
    // After leaving, too.
    a.join("r").await;
    a.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    a.expect_reply("room:left", "l").await;
    chat(&mut a, "c2", json!({ "text": "anyone?" })).await;
    a.expect_error("NOT_IN_ROOM", Some("c2"), Some("chat:message"))
        .await;
}

async fn ignores_unknown_fields_and_does_not_forward_them(build: ChatBuild) {
    let server = chat_server(build).await;
    let (mut a, mut b, _c) = trio(&server, "r").await;
    chat(
        &mut a,
        "x",
        json!({ "text": "hi", "from": "forged", "extra": { "nested": true }, "to": b.client_id }),
    )
    .await;
    assert_eq!(
        b.expect_event("chat:message").await,
        json!({ "from": a.client_id, "text": "hi" })
    );
    a.expect_silence(QUIET).await;
}

async fn text_of_2000_characters_passes_and_2001_is_invalid_message(build: ChatBuild) {
    let server = chat_server(build).await;
    let (mut a, mut b, _c) = trio(&server, "r").await;
    // Characters are Unicode scalar values: four bytes each here.
    let longest = "🎉".repeat(2000);
    chat(&mut a, "max", json!({ "text": longest })).await;
    assert_eq!(
        b.expect_event("chat:message").await,
        json!({ "from": a.client_id, "text": longest })
    );

    for (id, text) in [("ascii", "a".repeat(2001)), ("emoji", "🎉".repeat(2001))] {
        chat(&mut a, id, json!({ "text": text })).await;
        let error = a
            .expect_error("INVALID_MESSAGE", Some(id), Some("chat:message"))
            .await;
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("text"),
            "{error}"
        );
    }
    chat(&mut a, "empty", json!({ "text": "" })).await;
    a.expect_error("INVALID_MESSAGE", Some("empty"), Some("chat:message"))
        .await;
    b.expect_silence(QUIET).await;
}

// ---------------------------------------------------------------------------
// moderation

fn moderation_chain() -> String {
    let chain = [
        builtin("auth-jwt"),
        from_file("moderation", MODERATION_WASM),
        builtin("rooms"),
        builtin("signaling"),
    ];
    chains::config("", &chain)
}

/// A moderator `m` and a member `a` in `room`, past the peer-joined.
async fn moderated(server: &Server, room: &str) -> (Client, Client) {
    let mut m = Client::authed_as(server, "mod", "moderator").await;
    m.join(room).await;
    let a = Client::joined(server, "alice", room).await;
    m.expect_event("room:peer-joined").await;
    (m, a)
}

#[tokio::test]
async fn moderator_locks_a_room_and_new_joins_are_forbidden_until_unlock() {
    let server = Server::start(&moderation_chain()).await;
    let (mut m, mut a) = moderated(&server, "r").await;

    m.send_json(json!({ "event": "room:lock", "id": "lock" }))
        .await;
    assert_eq!(
        m.expect_reply("room:locked", "lock").await,
        json!({ "roomId": "r" })
    );
    assert_eq!(
        a.expect_event("room:locked").await,
        json!({ "roomId": "r" })
    );

    let mut late = Client::authed(&server, "late").await;
    late.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "r" } }))
        .await;
    late.expect_error("FORBIDDEN", Some("j"), Some("room:join"))
        .await;
    // A moderator may not walk in either: the lock is for everyone.
    let mut other_mod = Client::authed_as(&server, "mod2", "moderator").await;
    other_mod
        .send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "r" } }))
        .await;
    other_mod
        .expect_error("FORBIDDEN", Some("j"), Some("room:join"))
        .await;
    // Other rooms are not locked, and the members carry on.
    late.join("other").await;
    m.expect_silence(QUIET).await;
    a.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    assert_eq!(
        a.expect_reply("room:state", "s").await["peers"][0]["clientId"],
        m.client_id.as_str()
    );

    m.send_json(json!({ "event": "room:unlock", "id": "unlock" }))
        .await;
    assert_eq!(
        m.expect_reply("room:unlocked", "unlock").await,
        json!({ "roomId": "r" })
    );
    assert_eq!(
        a.expect_event("room:unlocked").await,
        json!({ "roomId": "r" })
    );
    let joined = other_mod.join("r").await;
    assert_eq!(joined["peers"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_locked_room_opens_again_once_it_has_emptied() {
    let server = Server::start(&moderation_chain()).await;
    let (mut m, a) = moderated(&server, "r").await;
    m.send_json(json!({ "event": "room:lock", "id": "lock" }))
        .await;
    m.expect_reply("room:locked", "lock").await;
    a.close(1000).await;
    m.close(1000).await;
    // Once the room is gone, the id is a new room.
    let deadline = Instant::now() + Duration::from_secs(5);
    while members(&server, "r").await.is_some() {
        assert!(Instant::now() < deadline, "room r still exists");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut b = Client::authed(&server, "bob").await;
    b.join("r").await;
}

#[tokio::test]
async fn non_moderators_may_not_lock_unlock_or_kick() {
    let server = Server::start(&moderation_chain()).await;
    let (mut m, mut a) = moderated(&server, "r").await;
    let mut user = Client::authed_as(&server, "user", "member").await;
    user.join("r").await;
    m.expect_event("room:peer-joined").await;
    a.expect_event("room:peer-joined").await;

    let target = m.client_id.clone();
    for client in [&mut a, &mut user] {
        for (event, data) in [
            ("room:lock", json!({})),
            ("room:unlock", json!({})),
            ("room:kick", json!({ "clientId": target })),
        ] {
            client
                .send_json(json!({ "event": event, "id": "x", "data": data }))
                .await;
            client
                .expect_error("FORBIDDEN", Some("x"), Some(event))
                .await;
        }
    }
    // Nothing happened: the room is open and complete.
    m.expect_silence(QUIET).await;
    let mut late = Client::authed(&server, "late").await;
    late.join("r").await;
    assert_eq!(members(&server, "r").await.map(|m| m.len()), Some(4));
}

#[tokio::test]
async fn moderation_outside_a_room_is_not_in_room() {
    let server = Server::start(&moderation_chain()).await;
    let mut m = Client::authed_as(&server, "mod", "moderator").await;
    for (event, data) in [
        ("room:lock", json!({})),
        ("room:unlock", json!({})),
        ("room:kick", json!({ "clientId": "someone" })),
    ] {
        m.send_json(json!({ "event": event, "id": "x", "data": data }))
            .await;
        m.expect_error("NOT_IN_ROOM", Some("x"), Some(event)).await;
    }
}

#[tokio::test]
async fn moderator_kick_closes_the_target_with_4009_and_the_room_sees_it_leave() {
    let server = Server::start(&moderation_chain()).await;
    let (mut m, mut a) = moderated(&server, "r").await;
    let mut b = Client::joined(&server, "bob", "r").await;
    m.expect_event("room:peer-joined").await;
    a.expect_event("room:peer-joined").await;

    m.send_json(json!({ "event": "room:kick", "id": "k", "data": { "clientId": a.client_id } }))
        .await;
    assert_eq!(
        m.expect_reply("room:kicked", "k").await,
        json!({ "roomId": "r", "clientId": a.client_id })
    );
    a.expect_close(4009).await;
    let left = json!({ "roomId": "r", "clientId": a.client_id, "reason": "disconnected" });
    assert_eq!(b.expect_event("room:peer-left").await, left);
    assert_eq!(m.expect_event("room:peer-left").await, left);
    assert_eq!(
        members(&server, "r").await,
        Some(vec![m.client_id.clone(), b.client_id.clone()])
    );
    b.expect_silence(QUIET).await;
    b.assert_open().await;
}

#[tokio::test]
async fn kick_of_someone_not_in_the_room_is_peer_not_found() {
    let server = Server::start(&moderation_chain()).await;
    let (mut m, mut a) = moderated(&server, "r").await;
    let mut elsewhere = Client::joined(&server, "eve", "other").await;
    let targets = [
        "no-such-client".to_owned(),
        m.client_id.clone(),
        elsewhere.client_id.clone(),
    ];
    for (i, target) in targets.iter().enumerate() {
        let id = format!("k{i}");
        m.send_json(json!({ "event": "room:kick", "id": id, "data": { "clientId": target } }))
            .await;
        m.expect_error("PEER_NOT_FOUND", Some(&id), Some("room:kick"))
            .await;
    }
    a.assert_open().await;
    elsewhere.assert_open().await;
    m.assert_open().await;
}

#[tokio::test]
async fn kick_without_a_client_id_is_invalid_message() {
    let server = Server::start(&moderation_chain()).await;
    let (mut m, _a) = moderated(&server, "r").await;
    for data in [
        json!({}),
        json!({ "clientId": "" }),
        json!({ "clientId": 7 }),
    ] {
        m.send_json(json!({ "event": "room:kick", "id": "k", "data": data }))
            .await;
        m.expect_error("INVALID_MESSAGE", Some("k"), Some("room:kick"))
            .await;
    }
}

// ---------------------------------------------------------------------------
// room-ttl

fn ttl_chain(ttl_ms: u64) -> String {
    let room_ttl = from_file("room-ttl", ROOM_TTL_WASM);
    let chain = [
        builtin("auth-jwt"),
        with_config(room_ttl, &format!("ttl_ms = {ttl_ms}")),
        builtin("rooms"),
        builtin("signaling"),
    ];
    chains::config("", &chain)
}

/// Expects `room:closed` for `room` and then the 4009 close.
async fn expect_closed_by_ttl(client: &mut Client, room: &str, within: Duration) {
    assert_eq!(
        client.expect_event_within("room:closed", within).await,
        json!({ "roomId": room, "reason": "ttl" })
    );
    client.expect_close(4009).await;
}

#[tokio::test]
async fn room_closes_its_members_with_4009_ttl_after_it_was_created() {
    const TTL: Duration = Duration::from_millis(2000);
    let server = Server::start(&ttl_chain(TTL.as_millis() as u64)).await;
    let created = Instant::now();
    let mut a = Client::joined(&server, "alice", "r").await;
    // Bob joins well into the room's life: the clock is the room's, not his.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;

    // Nothing before the TTL (with a margin for slow starts).
    let early = TTL - Duration::from_millis(500);
    a.expect_silence(early.saturating_sub(created.elapsed()))
        .await;

    expect_closed_by_ttl(&mut a, "r", Duration::from_secs(5)).await;
    expect_closed_by_ttl(&mut b, "r", Duration::from_secs(5)).await;
    let closed = created.elapsed();
    assert!(
        closed < TTL + Duration::from_millis(900),
        "bob's room closed {closed:?} after it was created: the TTL ran from his join, not the room's creation"
    );
    assert_eq!(members(&server, "r").await, None, "the room is gone");
}

#[tokio::test]
async fn each_room_has_its_own_clock() {
    const TTL: Duration = Duration::from_millis(1500);
    let server = Server::start(&ttl_chain(TTL.as_millis() as u64)).await;
    let mut a = Client::joined(&server, "alice", "first").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut b = Client::joined(&server, "bob", "second").await;

    expect_closed_by_ttl(&mut a, "first", Duration::from_secs(5)).await;
    // `second` is younger by 800 ms: still open when `first` closes.
    b.assert_open().await;
    assert!(members(&server, "second").await.is_some());
    expect_closed_by_ttl(&mut b, "second", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_closed_room_can_be_created_again() {
    const TTL: Duration = Duration::from_millis(700);
    let server = Server::start(&ttl_chain(TTL.as_millis() as u64)).await;
    let mut a = Client::joined(&server, "alice", "r").await;
    expect_closed_by_ttl(&mut a, "r", Duration::from_secs(5)).await;

    let mut again = Client::joined(&server, "alice", "r").await;
    again.assert_open().await;
    expect_closed_by_ttl(&mut again, "r", Duration::from_secs(5)).await;
}
