//! DESIGN.md, "Operator surface": the admin HTTP listener. Its bearer
//! token, health and readiness, the plugin listing, the room views and the
//! operator's kick.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_e2e::admin::encode_path_segment;
use switchboard_e2e::{Admin, Client, Server, chains};
use tokio::time::{Instant, sleep};

const QUIET: Duration = Duration::from_millis(300);
const ADMIN_TOKEN: &str = "operator-secret-1234";

/// Every admin path a token guards, with a method that only reads (or asks
/// for something that does not exist), so a wrongly admitted request does
/// no harm.
const GUARDED: &[(&str, &str)] = &[
    ("GET", "/metrics"),
    ("GET", "/admin/plugins"),
    ("GET", "/admin/rooms"),
    ("GET", "/admin/rooms/nowhere"),
    ("PUT", "/admin/plugins/no-such-plugin"),
    ("POST", "/admin/plugins/no-such-plugin/rollback"),
    ("DELETE", "/admin/clients/no-such-client"),
];

async fn start_with_token() -> Server {
    Server::builder("").admin_token(ADMIN_TOKEN).start().await
}

fn peer(client: &Client, user: &str) -> Value {
    json!({ "clientId": client.client_id, "userId": user, "metadata": {} })
}

#[tokio::test]
async fn healthz_and_readyz_answer_200_without_a_token() {
    let server = start_with_token().await;
    let admin = server.admin();
    for path in ["/healthz", "/readyz"] {
        let response = admin.get(path).await;
        assert_eq!(
            response.status, 200,
            "GET {path} without a token: {response}"
        );
    }
    let with_token = server.admin_with_token(ADMIN_TOKEN);
    for path in ["/healthz", "/readyz"] {
        let response = with_token.get(path).await;
        assert_eq!(
            response.status, 200,
            "GET {path} with the token: {response}"
        );
    }
}

#[tokio::test]
async fn every_admin_path_is_401_without_the_token() {
    let server = start_with_token().await;
    let admin = server.admin();
    for (method, path) in GUARDED {
        let response = admin.request(method, path, b"").await;
        assert_eq!(
            response.status, 401,
            "{method} {path} without a token: {response}"
        );
    }
}

#[tokio::test]
async fn every_admin_path_is_401_with_a_wrong_token() {
    let server = start_with_token().await;
    let admin = server.admin();
    let almost = &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1];
    let wrong_headers = [
        "Authorization: Bearer wrong\r\n".to_owned(),
        format!("Authorization: Bearer {almost}\r\n"),
        format!("Authorization: Bearer {ADMIN_TOKEN}x\r\n"),
        "Authorization: Bearer \r\n".to_owned(),
        format!("Authorization: {ADMIN_TOKEN}\r\n"),
        format!("Authorization: Basic {ADMIN_TOKEN}\r\n"),
        format!("X-Admin-Token: {ADMIN_TOKEN}\r\n"),
    ];
    for (method, path) in GUARDED {
        for header in &wrong_headers {
            let response = admin.raw_request(method, path, header, b"").await;
            assert_eq!(
                response.status,
                401,
                "{method} {path} with {:?}: {response}",
                header.trim_end()
            );
        }
    }
}

#[tokio::test]
async fn the_right_token_opens_the_admin_api() {
    let server = start_with_token().await;
    let admin = server.admin_with_token(ADMIN_TOKEN);
    for path in ["/metrics", "/admin/plugins", "/admin/rooms"] {
        let response = admin.get(path).await;
        assert_eq!(
            response.status, 200,
            "GET {path} with the token: {response}"
        );
    }
    // Past the token, the answers are the API's own.
    assert_eq!(admin.get("/admin/rooms/nowhere").await.status, 404);
    assert_eq!(
        admin.delete("/admin/clients/no-such-client").await.status,
        404
    );
}

#[tokio::test]
async fn a_refused_request_changes_nothing() {
    let server = start_with_token().await;
    let mut a = Client::joined(&server, "alice", "r").await;
    let response = server
        .admin()
        .delete(&format!(
            "/admin/clients/{}",
            encode_path_segment(&a.client_id)
        ))
        .await;
    assert_eq!(response.status, 401, "{response}");
    a.expect_silence(QUIET).await;
    a.assert_open().await;
}

#[tokio::test]
async fn without_a_token_the_loopback_admin_api_is_open() {
    let server = Server::start_default().await;
    let admin = server.admin();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/admin/plugins",
        "/admin/rooms",
    ] {
        let response = admin.get(path).await;
        assert_eq!(response.status, 200, "GET {path}: {response}");
    }
}

#[tokio::test]
async fn non_loopback_admin_listen_without_a_token_refuses_to_start() {
    let (status, log) = Server::builder("")
        .admin_listen("0.0.0.0:0")
        .start_expecting_failure(Duration::from_secs(30))
        .await;
    assert!(!status.success(), "exit status {status}, log:\n{log}");
    assert!(
        log.contains("SWITCHBOARD_ADMIN_TOKEN"),
        "the error does not name SWITCHBOARD_ADMIN_TOKEN:\n{log}"
    );
}

#[tokio::test]
async fn non_loopback_admin_listen_in_the_config_without_a_token_refuses_to_start() {
    let (status, log) = Server::builder("[admin]\nlisten = \"0.0.0.0:0\"\n")
        .no_admin_listen_flag()
        .start_expecting_failure(Duration::from_secs(30))
        .await;
    assert!(!status.success(), "exit status {status}, log:\n{log}");
    assert!(
        log.contains("SWITCHBOARD_ADMIN_TOKEN"),
        "the error does not name SWITCHBOARD_ADMIN_TOKEN:\n{log}"
    );
}

#[tokio::test]
async fn an_empty_token_counts_as_no_token() {
    let (status, log) = Server::builder("")
        .admin_listen("0.0.0.0:0")
        .admin_token("")
        .start_expecting_failure(Duration::from_secs(30))
        .await;
    assert!(!status.success(), "exit status {status}, log:\n{log}");
    assert!(log.contains("SWITCHBOARD_ADMIN_TOKEN"), "{log}");
}

#[tokio::test]
async fn non_loopback_admin_listen_with_a_token_starts_and_demands_it() {
    let server = Server::builder("")
        .admin_listen("0.0.0.0:0")
        .admin_token(ADMIN_TOKEN)
        .start()
        .await;
    let port = server.admin_addr().port();
    let local = SocketAddr::from(([127, 0, 0, 1], port));
    let open = Admin::new(local, None);
    assert_eq!(open.get("/healthz").await.status, 200);
    assert_eq!(open.get("/admin/plugins").await.status, 401);
    let authed = Admin::new(local, Some(ADMIN_TOKEN.to_owned()));
    assert_eq!(authed.get("/admin/plugins").await.status, 200);
}

#[tokio::test]
async fn admin_listen_from_the_config_is_used() {
    let server = Server::builder("[admin]\nlisten = \"127.0.0.1:0\"\n")
        .no_admin_listen_flag()
        .start()
        .await;
    assert!(server.admin_addr().ip().is_loopback());
    assert_eq!(server.admin().get("/healthz").await.status, 200);
}

#[tokio::test]
async fn readyz_is_503_while_shutting_down() {
    let mut server = Server::start("[shutdown]\ndrain_timeout_ms = 4000\n").await;
    let admin = server.admin();
    assert_eq!(admin.get("/readyz").await.status, 200);
    // A client that does not read never answers the server's close, so the
    // server drains until its timeout.
    let _stuck = Client::authed(&server, "alice").await;
    server.sigterm();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        assert!(
            server.is_running(),
            "switchboard exited instead of draining the stalled client"
        );
        let status = admin.get("/readyz").await.status;
        if status == 503 {
            break;
        }
        assert_eq!(status, 200, "GET /readyz while shutting down");
        assert!(
            Instant::now() < deadline,
            "/readyz still 200 three seconds after SIGTERM"
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        admin.get("/healthz").await.status,
        200,
        "alive while draining"
    );
    server.wait_exit(Duration::from_secs(10)).await;
}

// ---------------------------------------------------------------------------
// GET /admin/plugins

/// `GET /admin/plugins`, checked for shape; returns the entries.
async fn plugins(admin: &Admin) -> Vec<Value> {
    let body = admin.get_json("/admin/plugins").await;
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only `plugins`: {body}"
    );
    let entries = body["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugins array: {body}"))
        .clone();
    for entry in &entries {
        let mut keys: Vec<&str> = entry
            .as_object()
            .unwrap_or_else(|| panic!("plugin entry is not an object: {entry}"))
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["calls", "errors", "hash", "loadedAt", "name", "version"],
            "{entry}"
        );
        assert!(
            entry["name"].is_string() && entry["version"].is_string(),
            "{entry}"
        );
        let hash = entry["hash"].as_str().unwrap_or_default();
        assert!(
            hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "hash is not sha256 hex: {entry}"
        );
        assert!(entry["loadedAt"].is_u64(), "{entry}");
        assert!(
            entry["calls"].is_u64() && entry["errors"].is_u64(),
            "{entry}"
        );
    }
    entries
}

/// `calls` (or `errors`) of plugin `name` in `entries`.
fn stat(entries: &[Value], name: &str, field: &str) -> u64 {
    entries
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {entries:?}"))[field]
        .as_u64()
        .expect("checked by plugins()")
}

#[tokio::test]
async fn admin_plugins_lists_the_chain_in_order() {
    let server = Server::start(&chains::misbehave("")).await;
    let entries = plugins(&server.admin()).await;
    let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["auth-jwt", "rooms", "misbehave", "signaling"]);

    let bytes = std::fs::read(chains::MISBEHAVE_WASM).expect("read misbehave");
    let hash: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(entries[2]["hash"], hash.as_str(), "the component's sha256");
    let hashes: std::collections::BTreeSet<&str> =
        entries.iter().filter_map(|e| e["hash"].as_str()).collect();
    assert_eq!(hashes.len(), 4, "four different components: {entries:?}");
}

#[tokio::test]
async fn admin_plugins_counts_calls_and_errors() {
    let server = Server::start(&chains::misbehave("")).await;
    let admin = server.admin();
    let before = plugins(&admin).await;

    let mut a = Client::authed(&server, "alice").await;
    let after_auth = plugins(&admin).await;
    assert!(
        stat(&after_auth, "auth-jwt", "calls") > stat(&before, "auth-jwt", "calls"),
        "auth-jwt calls did not count the auth: {before:?} → {after_auth:?}"
    );

    a.join("r").await;
    let mut b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    let after_join = plugins(&admin).await;
    assert!(
        stat(&after_join, "rooms", "calls") >= stat(&after_auth, "rooms", "calls") + 2,
        "rooms calls did not count two joins: {after_auth:?} → {after_join:?}"
    );

    a.send_json(json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "v=0" } }))
        .await;
    b.expect_event("sdp:offer").await;
    let after_offer = plugins(&admin).await;
    assert!(
        stat(&after_offer, "signaling", "calls") > stat(&after_join, "signaling", "calls"),
        "signaling calls did not count the offer: {after_join:?} → {after_offer:?}"
    );
    assert!(stat(&after_offer, "misbehave", "calls") > stat(&after_join, "misbehave", "calls"));
    for entry in &after_offer {
        assert_eq!(entry["errors"], 0, "no failure yet: {entry}");
    }

    // A trap is an error of the plugin that trapped, and only of it.
    a.send_json(
        json!({ "event": "sdp:offer", "id": "t", "data": { "to": b.client_id, "sdp": "trap" } }),
    )
    .await;
    a.expect_error("PLUGIN_ERROR", Some("t"), Some("sdp:offer"))
        .await;
    let after_trap = plugins(&admin).await;
    assert_eq!(
        stat(&after_trap, "misbehave", "errors"),
        1,
        "{after_trap:?}"
    );
    for name in ["auth-jwt", "rooms", "signaling"] {
        assert_eq!(stat(&after_trap, name, "errors"), 0, "{after_trap:?}");
    }
    // Counts only go up.
    for name in ["auth-jwt", "rooms", "misbehave", "signaling"] {
        assert!(stat(&after_trap, name, "calls") >= stat(&after_offer, name, "calls"));
    }
}

// ---------------------------------------------------------------------------
// GET /admin/rooms, GET /admin/rooms/{id}

/// `GET /admin/rooms` as (roomId, members) pairs, sorted by room id.
async fn rooms(admin: &Admin) -> Vec<(String, u64)> {
    let body = admin.get_json("/admin/rooms").await;
    let mut rooms: Vec<(String, u64)> = body["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("no rooms array: {body}"))
        .iter()
        .map(|room| {
            assert_eq!(
                room.as_object().map(|o| o.len()),
                Some(2),
                "a room is {{roomId, members}}: {room}"
            );
            (
                room["roomId"].as_str().expect("roomId string").to_owned(),
                room["members"].as_u64().expect("members count"),
            )
        })
        .collect();
    rooms.sort();
    rooms
}

fn room_path(id: &str) -> String {
    format!("/admin/rooms/{}", encode_path_segment(id))
}

#[tokio::test]
async fn admin_rooms_follow_joins_and_leaves() {
    let server = Server::start_default().await;
    let admin = server.admin();
    assert_eq!(rooms(&admin).await, []);

    let mut a = Client::joined(&server, "alice", "standup").await;
    let b = Client::joined(&server, "bob", "standup").await;
    let mut c = Client::joined(&server, "carol", "retro").await;
    a.expect_event("room:peer-joined").await;
    assert_eq!(
        rooms(&admin).await,
        [("retro".to_owned(), 1), ("standup".to_owned(), 2)]
    );
    assert_eq!(
        admin.get_json(&room_path("standup")).await,
        json!({ "roomId": "standup", "peers": [peer(&a, "alice"), peer(&b, "bob")] })
    );
    assert_eq!(
        admin.get_json(&room_path("retro")).await,
        json!({ "roomId": "retro", "peers": [peer(&c, "carol")] })
    );

    // bob closes: standup has alice only.
    b.close(1000).await;
    a.expect_event("room:peer-left").await;
    assert_eq!(
        rooms(&admin).await,
        [("retro".to_owned(), 1), ("standup".to_owned(), 1)]
    );
    assert_eq!(
        admin.get_json(&room_path("standup")).await,
        json!({ "roomId": "standup", "peers": [peer(&a, "alice")] })
    );

    // carol leaves: retro is gone.
    c.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    c.expect_reply("room:left", "l").await;
    assert_eq!(rooms(&admin).await, [("standup".to_owned(), 1)]);
    let response = admin.get(&room_path("retro")).await;
    assert_eq!(response.status, 404, "GET a room that emptied: {response}");

    // And a room that never existed.
    assert_eq!(admin.get(&room_path("never")).await.status, 404);
}

#[tokio::test]
async fn admin_room_ids_are_percent_decoded() {
    let server = Server::start_default().await;
    let admin = server.admin();
    let id = "team/alpha beta?x=1#café ☕";
    let a = Client::joined(&server, "alice", id).await;
    assert_eq!(rooms(&admin).await, [(id.to_owned(), 1)]);
    assert_eq!(
        admin.get_json(&room_path(id)).await,
        json!({ "roomId": id, "peers": [peer(&a, "alice")] })
    );
    // A different id is a different room.
    assert_eq!(admin.get(&room_path("team/alpha")).await.status, 404);
}

// ---------------------------------------------------------------------------
// DELETE /admin/clients/{id}

fn client_path(id: &str) -> String {
    format!("/admin/clients/{}", encode_path_segment(id))
}

#[tokio::test]
async fn delete_client_closes_it_with_4009_and_the_room_sees_peer_left() {
    let server = Server::start_default().await;
    let admin = server.admin();
    let mut a = Client::joined(&server, "alice", "r").await;
    let mut b = Client::joined(&server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;

    let response = admin.delete(&client_path(&b.client_id)).await;
    assert_eq!(response.status, 204, "{response}");
    assert!(response.body.is_empty(), "204 with a body: {response}");
    b.expect_close(4009).await;
    assert_eq!(
        a.expect_event("room:peer-left").await,
        json!({ "roomId": "r", "clientId": b.client_id, "reason": "disconnected" })
    );
    assert_eq!(
        admin.get_json(&room_path("r")).await,
        json!({ "roomId": "r", "peers": [peer(&a, "alice")] })
    );
    a.expect_silence(QUIET).await;
    a.assert_open().await;

    // Gone for good: a second kick finds nobody.
    let response = admin.delete(&client_path(&b.client_id)).await;
    assert_eq!(response.status, 404, "kick of a closed client: {response}");
}

#[tokio::test]
async fn delete_client_works_outside_rooms_and_before_auth() {
    let server = Server::start_default().await;
    let admin = server.admin();
    let mut authed = Client::authed(&server, "alice").await;
    let mut fresh = Client::connect(&server).await;
    for client in [&mut authed, &mut fresh] {
        let response = admin.delete(&client_path(&client.client_id)).await;
        assert_eq!(response.status, 204, "{response}");
        client.expect_close(4009).await;
    }
}

#[tokio::test]
async fn delete_unknown_client_is_404() {
    let server = Server::start_default().await;
    let admin = server.admin();
    let mut a = Client::joined(&server, "alice", "r").await;
    for id in ["no-such-client", "x", "%", &format!("{}x", a.client_id)] {
        let response = admin.delete(&client_path(id)).await;
        assert_eq!(response.status, 404, "DELETE client {id:?}: {response}");
    }
    a.expect_silence(QUIET).await;
    a.assert_open().await;
}
