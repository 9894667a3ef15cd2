//! Recording rooms' plugin calls (`/admin/recordings`) and replaying them
//! with `switchboard replay`: the file holds every call of the chosen
//! rooms and no other, with tokens redacted; the version that made it
//! decides every call alike (exit 0); another version or another config
//! is named call by call (exit 1); a file that is not a recording is exit
//! 2 with why.
//!
//! The chain is auth-jwt, rooms, chat (from its file, so the replay runs
//! the very component that was recorded), signaling.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use std::time::Duration;

use switchboard_e2e::chains::{self, builtin, from_file, with_config};
use switchboard_e2e::server::binary_path;
use switchboard_e2e::token::token_for_room;
use switchboard_e2e::{Client, Server};
use tempfile::TempDir;

const CHAT_WASM: &str = env!("CHAT_WASM");
const MODERATION_WASM: &str = env!("MODERATION_WASM");
const ROOM_TTL_WASM: &str = env!("ROOM_TTL_WASM");

async fn start(dir: &Path) -> Server {
    let preamble = format!("[recordings]\ndir = {:?}", dir.display().to_string());
    let chain = [
        builtin("auth-jwt"),
        builtin("rooms"),
        from_file("chat", CHAT_WASM),
        builtin("signaling"),
    ];
    Server::start(&chains::config(&preamble, &chain)).await
}

/// `POST /admin/recordings` with `body`: the status and the answer.
async fn post(server: &Server, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let response = server
        .admin()
        .request("POST", "/admin/recordings", body.as_bytes())
        .await;
    (response.status, response.json())
}

async fn replay(file: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(binary_path())
        .arg("replay")
        .arg(file)
        .args(args)
        .output()
        .await
        .expect("run switchboard replay")
}

/// `switchboard replay FILE ARGS`, expecting exit status `code`; returns
/// what it printed.
async fn replay_exiting(file: &Path, args: &[&str], code: i32) -> String {
    let output = replay(file, args).await;
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{stdout}{}",
        text(&output.stderr)
    );
    stdout
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every line of the file, parsed.
fn lines(path: &Path) -> Vec<Value> {
    let file = std::fs::read_to_string(path).expect("read the recording");
    file.lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// A call line's room, entry and what it was (`room:join`, `auth`,
/// `sdp:offer`...).
fn summary(line: &Value) -> (String, String, String) {
    let call = &line["call"];
    let input = call["input"].as_object().expect("input is an object");
    let (hook, args) = input.iter().next().expect("input names its hook");
    let what = args["event"].as_str().unwrap_or(hook).to_owned();
    let room = call["room"].as_str().expect("room").to_owned();
    (
        room,
        call["entry"].as_str().expect("entry").to_owned(),
        what,
    )
}

#[tokio::test]
async fn recorded_rooms_replay_alike_on_their_version_and_differ_on_another() {
    let dir = TempDir::new().unwrap();
    let server = start(dir.path()).await;
    let (status, started) = post(&server, &json!({ "rooms": ["r1", "r2"] })).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["rooms"], json!(["r1", "r2"]));
    let id = started["id"].as_u64().expect("an id");
    let path = Path::new(started["path"].as_str().expect("a path")).to_owned();
    assert!(
        path.starts_with(dir.path()),
        "{path:?} is under the configured dir"
    );

    // r1: two members chat, relay, re-authenticate, leave.
    let mut a = Client::joined(&server, "alice", "r1").await;
    let mut b = Client::joined(&server, "bob", "r1").await;
    a.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "chat:message", "data": { "text": "hello there" } }))
        .await;
    assert_eq!(b.expect_event("chat:message").await["text"], "hello there");
    let offer = json!({ "to": b.client_id, "sdp": "v=0" });
    a.send_json(json!({ "event": "sdp:offer", "data": offer }))
        .await;
    b.expect_event("sdp:offer").await;
    let secret = token_for_room("alice", "r1");
    let again = a.auth(json!({ "token": secret, "roomId": "r1" })).await;
    assert_eq!(again["success"], true);
    b.send_json(json!({ "event": "room:leave", "id": "leave" }))
        .await;
    b.expect_reply("room:left", "leave").await;
    // r2 alone; r3 is not recorded.
    let mut c = Client::joined(&server, "carol", "r2").await;
    c.send_json(json!({ "event": "chat:message", "data": { "text": "hi" } }))
        .await;
    let mut d = Client::joined(&server, "dave", "r3").await;
    d.send_json(json!({ "event": "chat:message", "data": { "text": "unrecorded" } }))
        .await;
    c.send_json(json!({ "event": "ping", "id": "sync" })).await;
    c.expect_reply("pong", "sync").await;
    d.send_json(json!({ "event": "ping", "id": "sync" })).await;
    d.expect_reply("pong", "sync").await;

    let listing = server.admin().get_json("/admin/recordings").await;
    let listed = &listing["recordings"][0];
    assert_eq!(listed["id"], id);
    assert_eq!(
        (listed["calls"].as_u64(), listed["dropped"].as_u64()),
        (Some(8), Some(0)),
        "{listing}"
    );

    let stopped = server
        .admin()
        .delete(&format!("/admin/recordings/{id}"))
        .await;
    assert_eq!(stopped.status, 200, "{stopped}");
    assert_eq!(stopped.json()["calls"], 8);
    let gone = server
        .admin()
        .delete(&format!("/admin/recordings/{id}"))
        .await;
    assert_eq!(gone.status, 404);

    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(!raw.contains(&secret), "the auth token is redacted");
    assert!(!raw.contains("unrecorded"), "r3 is not recorded");
    let lines = lines(&path);
    let header = &lines[0]["header"];
    assert_eq!(header["rooms"], json!(["r1", "r2"]));
    let entries: Vec<&str> = header["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap())
        .collect();
    assert_eq!(entries, ["auth-jwt", "rooms", "chat", "signaling"]);
    assert_eq!(lines.last().unwrap()["end"]["calls"], 8);
    assert_eq!(lines.last().unwrap()["end"]["dropped"], 0);
    let calls: Vec<(String, String, String)> =
        lines[1..lines.len() - 1].iter().map(summary).collect();
    let expected = [
        ("r1", "rooms", "room:join"),
        ("r1", "rooms", "room:join"),
        ("r1", "chat", "chat:message"),
        ("r1", "signaling", "sdp:offer"),
        ("r1", "auth-jwt", "auth"),
        ("r1", "rooms", "room:leave"),
        ("r2", "rooms", "room:join"),
        ("r2", "chat", "chat:message"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(room, entry, what)| (room.to_string(), entry.to_string(), what.to_string()))
        .collect();
    assert_eq!(calls, expected);
    let auth = &lines[5]["call"];
    assert_eq!(auth["input"]["auth"]["token"], "[redacted]");
    assert_eq!(auth["decision"]["outcome"]["kind"], "accept");
    let chat = &lines[3]["call"];
    assert_eq!(chat["decision"]["effects"][0]["step"], "broadcast");
    assert_eq!(chat["decision"]["effects"][0]["to"], json!([b.client_id]));
    assert_eq!(chat["view"]["room"]["members"].as_array().unwrap().len(), 2);

    // The version that made it.
    let stdout = replay_exiting(&path, &["--plugin", CHAT_WASM], 0).await;
    assert!(
        stdout.contains("chat: 2 calls replayed, 0 differ"),
        "{stdout}"
    );

    // The same plugin with another config: "hello there" is too long now.
    let stdout = replay_exiting(
        &path,
        &["--plugin", CHAT_WASM, "--config", r#"{"max_chars":4}"#],
        1,
    )
    .await;
    assert!(
        stdout.contains("call 3 in room r1: chat:message from"),
        "{stdout}"
    );
    assert!(
        stdout.contains("replayed: reject INVALID_MESSAGE"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("call 8"),
        "\"hi\" is still short enough: {stdout}"
    );
    assert!(
        stdout.contains("chat: 2 calls replayed, 1 differ"),
        "{stdout}"
    );

    // Another plugin in the chat entry's place: it passes on chat.
    let stdout = replay_exiting(&path, &["--plugin", MODERATION_WASM, "--entry", "chat"], 1).await;
    assert!(
        stdout.contains("call 3 in room r1") && stdout.contains("call 8 in room r2"),
        "{stdout}"
    );
    assert!(stdout.contains("  replayed: pass"), "{stdout}");
}

/// `room-ttl` sets a timer when a join opens a room; the timer's call
/// broadcasts `room:closed` and kicks every member: a timer, a broadcast
/// and kicks, recorded and replayed.
#[tokio::test]
async fn a_room_timer_and_what_it_does_replay_alike() {
    let dir = TempDir::new().unwrap();
    let preamble = format!("[recordings]\ndir = {:?}", dir.path().display().to_string());
    let room_ttl = with_config(from_file("room-ttl", ROOM_TTL_WASM), "ttl_ms = 1500");
    let chain = [
        builtin("auth-jwt"),
        room_ttl,
        builtin("rooms"),
        builtin("signaling"),
    ];
    let server = Server::start(&chains::config(&preamble, &chain)).await;
    let (status, started) = post(&server, &json!({ "rooms": ["r1"] })).await;
    assert_eq!(status, 201, "{started}");
    let path = Path::new(started["path"].as_str().unwrap()).to_owned();

    let mut a = Client::joined(&server, "alice", "r1").await;
    let mut b = Client::joined(&server, "bob", "r1").await;
    a.expect_event("room:peer-joined").await;
    for client in [&mut a, &mut b] {
        client
            .expect_event_within("room:closed", Duration::from_secs(5))
            .await;
        client.expect_close(4009).await;
    }
    let id = started["id"].as_u64().unwrap();
    let stopped = server
        .admin()
        .delete(&format!("/admin/recordings/{id}"))
        .await;
    assert_eq!(stopped.status, 200, "{stopped}");

    let lines = lines(&path);
    let timer = lines
        .iter()
        .find(|line| line["call"]["input"]["timer"].is_object())
        .expect("the timer's call is recorded");
    let effects = &timer["call"]["decision"]["effects"];
    let steps: Vec<&str> = effects
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["broadcast", "kick", "kick"], "{effects}");
    assert_eq!(effects[0]["to"], json!([a.client_id, b.client_id]));

    let stdout = replay_exiting(&path, &["--plugin", ROOM_TTL_WASM], 0).await;
    assert!(
        stdout.contains("room-ttl: 3 calls replayed, 0 differ"),
        "{stdout}"
    );

    let stdout = replay_exiting(
        &path,
        &["--plugin", ROOM_TTL_WASM, "--config", r#"{"ttl_ms":3000}"#],
        1,
    )
    .await;
    assert!(
        stdout.contains("replayed: pass; then timer \"expire\" in r1 after 3000 ms"),
        "{stdout}"
    );
    assert!(
        stdout.contains("room-ttl: 3 calls replayed, 1 differ"),
        "{stdout}"
    );
}

#[tokio::test]
async fn replay_refuses_what_it_cannot_run_with_exit_2_and_why() {
    let dir = TempDir::new().unwrap();
    let not_a_recording = dir.path().join("notes.jsonl");
    std::fs::write(&not_a_recording, "{\"hello\": 1}\n").unwrap();
    let output = replay(&not_a_recording, &["--plugin", CHAT_WASM]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("not a Switchboard recording"),
        "{}",
        text(&output.stderr)
    );

    let newer = dir.path().join("newer.jsonl");
    std::fs::write(
        &newer,
        "{\"header\":{\"format\":99,\"started_at\":0,\"rooms\":[],\"chain\":[]}}\n",
    )
    .unwrap();
    let output = replay(&newer, &["--plugin", CHAT_WASM]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("recording format 99"),
        "{}",
        text(&output.stderr)
    );

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(
        &empty,
        "{\"header\":{\"format\":1,\"started_at\":0,\"rooms\":[],\"chain\":[]}}\n",
    )
    .unwrap();
    let output = replay(
        &empty,
        &["--plugin", &not_a_recording.display().to_string()],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("compiling plugin"),
        "{}",
        text(&output.stderr)
    );

    let output = replay(&empty, &["--plugin", CHAT_WASM]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("has no calls of `chat`"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn recording_requests_are_checked_into_clear_errors() {
    let dir = TempDir::new().unwrap();
    let server = start(dir.path()).await;
    for (body, status, says) in [
        (json!({ "rooms": "r1" }), 400, "must be a list of room ids"),
        (json!({ "rooms": [] }), 400, "from 1 to"),
        (json!({ "room": ["r1"] }), 400, "unknown field `room`"),
    ] {
        let (got, answer) = post(&server, &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let (status, _) = post(&server, &json!({ "rooms": ["r1"] })).await;
    assert_eq!(status, 201);
    let (status, answer) = post(&server, &json!({ "rooms": ["r2", "r1"] })).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("`r1` is already being recorded"),
        "{answer}"
    );
    let missing = server.admin().delete("/admin/recordings/99").await;
    assert_eq!(missing.status, 404);
}
