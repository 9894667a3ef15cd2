//! The plugin sandbox (SECURITY.md, "plugin sandbox"; DESIGN.md, "Runtime
//! properties"): a plugin reaches no file, no socket and no environment
//! variable it was not granted, and a call that runs out of its memory or
//! time budget answers `PLUGIN_ERROR` and costs nothing but that message.
//!
//! The chain is the default one with `sandbox` (tests/plugins/) last. It
//! declares `sandbox:probe` `{"probe", "arg"?, "n"?}` and answers
//! `sandbox:result` `{"probe", "ok", "value" | "error"}` with what the
//! sandbox let it do, so "refused" (`ok: false`) is told apart from "the
//! call failed" (`PLUGIN_ERROR`).
//!
//! plugin_faults.rs covers trap, endless loop and unbounded allocation
//! through `misbehave`, plugin_output.rs printing and per-plugin limits;
//! this file adds what a plugin can try through WASI, a budget that is
//! exactly the configured one, and blocking calls.

use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_e2e::{Client, Server, chains};

/// Set in the server's own environment and never granted.
const HOST_SECRET: (&str, &str) = ("SECRET_IN_HOST_ENV", "do-not-leak-7f3a");
/// Set in the server's environment and granted by `[[plugins]] env`.
const GRANTED: (&str, &str) = ("SANDBOX_GRANTED", "granted-value-42");
/// Granted, but not set: a plugin sees nothing for it.
const GRANTED_UNSET: &str = "SANDBOX_GRANTED_BUT_UNSET";

const MEMORY_MIB: u64 = 16;

/// A deadline long enough that a short probe on a loaded two-core machine
/// never hits it by accident.
const DEADLINE_MS: u64 = 1000;

async fn start() -> Server {
    let preamble = format!(
        "[plugin_limits]\nmemory_bytes = {}\ndeadline_ms = {DEADLINE_MS}\n",
        MEMORY_MIB << 20
    );
    Server::builder(&chains::sandbox(&preamble, &[GRANTED.0, GRANTED_UNSET]))
        .env(HOST_SECRET.0, HOST_SECRET.1)
        .env(GRANTED.0, GRANTED.1)
        .start()
        .await
}

/// Sends one probe and returns the whole answer (a `sandbox:result` or an
/// error), checking that it answers this probe.
async fn send_probe(client: &mut Client, probe: &str, arg: &str, n: u64) -> Value {
    let id = format!("{probe}:{arg}:{n}");
    client
        .send_json(json!({
            "event": "sandbox:probe",
            "id": id,
            "data": { "probe": probe, "arg": arg, "n": n },
        }))
        .await;
    let answer = client.recv().await;
    assert_eq!(
        answer["id"],
        id.as_str(),
        "answer to another message: {answer}"
    );
    answer
}

/// A probe the sandbox must let through; returns its `value`.
async fn allowed(client: &mut Client, probe: &str, arg: &str, n: u64) -> Value {
    let answer = send_probe(client, probe, arg, n).await;
    assert_eq!(
        answer["event"], "sandbox:result",
        "{probe} {arg:?}: {answer}"
    );
    assert_eq!(
        answer["data"]["ok"], true,
        "{probe} {arg:?} should work: {answer}"
    );
    answer["data"]["value"].clone()
}

/// A probe the sandbox must refuse: the plugin gets an error and no value.
/// Returns the error the guest saw.
async fn refused(client: &mut Client, probe: &str, arg: &str) -> String {
    let answer = send_probe(client, probe, arg, 0).await;
    assert_eq!(
        answer["event"], "sandbox:result",
        "{probe} {arg:?}: {answer}"
    );
    let data = &answer["data"];
    assert_eq!(data["ok"], false, "{probe} {arg:?} got through: {answer}");
    assert!(data.get("value").is_none(), "{probe} {arg:?}: {answer}");
    data["error"]
        .as_str()
        .unwrap_or_else(|| panic!("refusal without an error: {answer}"))
        .to_owned()
}

/// A probe whose call must fail as a whole: `PLUGIN_ERROR` for it.
async fn plugin_error(client: &mut Client, probe: &str, n: u64) {
    let id = format!("{probe}::{n}");
    client
        .send_json(json!({
            "event": "sandbox:probe",
            "id": id,
            "data": { "probe": probe, "n": n },
        }))
        .await;
    client
        .expect_error("PLUGIN_ERROR", Some(&id), Some("sandbox:probe"))
        .await;
}

#[tokio::test]
async fn files_and_directories_are_unreachable() {
    let server = start().await;
    let mut client = Client::authed(&server, "alice").await;
    // Absolute, relative, and the server's own secrets under /proc.
    for path in [
        "/etc/passwd",
        "/proc/self/environ",
        "/proc/self/cmdline",
        "Cargo.toml",
        "../Cargo.toml",
    ] {
        refused(&mut client, "read-file", path).await;
    }
    for dir in ["/", ".", "/tmp", "/proc/self/fd"] {
        refused(&mut client, "list-dir", dir).await;
    }
}

#[tokio::test]
async fn sockets_are_refused_and_nothing_reaches_the_listener() {
    let server = start().await;
    let mut client = Client::authed(&server, "alice").await;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test listener");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let target = listener.local_addr().expect("listener address").to_string();

    refused(&mut client, "tcp-connect", &target).await;
    // The server's own WebSocket port, too.
    refused(&mut client, "tcp-connect", &server.addr().to_string()).await;
    refused(&mut client, "tcp-listen", "127.0.0.1:0").await;
    refused(&mut client, "resolve", "localhost").await;

    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, from)) => panic!("a plugin's connection reached the test listener from {from}"),
        Err(e) => panic!("accept on the test listener: {e}"),
    }
}

/// `std::net::UdpSocket::bind` reaches a WASI call (`create-udp-socket`)
/// that the host implements by blocking on its async runtime. It must be
/// refused or fail the call, and the connection must live on.
#[tokio::test]
async fn udp_is_refused_and_the_connection_lives_on() {
    let server = start().await;
    let mut client = Client::authed(&server, "alice").await;
    let answer = send_probe(&mut client, "udp-bind", "127.0.0.1:0", 0).await;
    match answer["event"].as_str() {
        Some("sandbox:result") => assert_eq!(answer["data"]["ok"], false, "{answer}"),
        Some("error") => assert_eq!(answer["data"]["code"], "PLUGIN_ERROR", "{answer}"),
        _ => panic!("unexpected answer to udp-bind: {answer}"),
    }
    allowed(&mut client, "clock", "", 0).await;
}

#[tokio::test]
async fn environment_is_exactly_what_the_config_grants() {
    let server = start().await;
    let mut client = Client::authed(&server, "alice").await;

    // Neither the host's own variables (the JWT secret is set by the test
    // harness, the secret here by this test) nor a granted one that is
    // unset: only the granted one with a value.
    let vars = allowed(&mut client, "env-vars", "", 0).await;
    assert_eq!(vars, json!({ GRANTED.0: GRANTED.1 }));
    assert_eq!(
        allowed(&mut client, "env-var", GRANTED.0, 0).await,
        GRANTED.1
    );
    for name in [
        HOST_SECRET.0,
        "SWITCHBOARD_JWT_SECRET",
        "PATH",
        GRANTED_UNSET,
    ] {
        refused(&mut client, "env-var", name).await;
    }
    assert_eq!(allowed(&mut client, "args", "", 0).await, json!([]));
}

/// Reading the clock and getting randomness are allowed: plugins need
/// both (token expiry, ids), and neither reaches anything outside.
#[tokio::test]
async fn clock_and_randomness_are_available() {
    let server = start().await;
    let mut client = Client::authed(&server, "alice").await;

    let plugin_now = allowed(&mut client, "clock", "", 0)
        .await
        .as_u64()
        .expect("clock gives unix ms");
    let test_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    assert!(
        plugin_now.abs_diff(test_now) < 60_000,
        "the plugin's wall clock ({plugin_now}) is not the real one ({test_now})"
    );

    let random = allowed(&mut client, "random", "", 0).await;
    let draws: Vec<&str> = random
        .as_array()
        .and_then(|a| a.iter().map(Value::as_str).collect())
        .unwrap_or_else(|| panic!("random gives two hex strings: {random}"));
    assert_eq!(draws.len(), 2, "{random}");
    assert!(draws.iter().all(|d| d.len() == 32), "{random}");
    assert_ne!(draws[0], draws[1], "two draws of 128 bits were equal");
    assert_ne!(draws[0], "0".repeat(32), "randomness is all zeros");
}

#[tokio::test]
async fn memory_cap_is_the_configured_one_and_the_next_call_works() {
    let server = start().await;
    let mut client = Client::authed(&server, "alice").await;

    // Well under the cap: allowed, so the cap is not lower than configured.
    assert_eq!(allowed(&mut client, "alloc", "", 4).await, 4);
    // Over it: the call fails, only the call.
    plugin_error(&mut client, "alloc", 2 * MEMORY_MIB).await;
    // The same connection, the same plugin, a fresh instance.
    assert_eq!(allowed(&mut client, "alloc", "", 4).await, 4);
    client.assert_open().await;
}

/// A loop that calls into the host on every turn (the clock) is stopped
/// by the deadline all the same.
#[tokio::test]
async fn deadline_stops_a_busy_call_and_the_next_call_works() {
    let server = start().await;
    let mut client = Client::authed(&server, "alice").await;

    allowed(&mut client, "spin", "", 10).await;
    // A minute of spinning answers well within RECV_TIMEOUT, or the
    // deadline did not stop it.
    plugin_error(&mut client, "spin", 60_000).await;
    allowed(&mut client, "spin", "", 10).await;
    client.assert_open().await;
}

/// `std::thread::sleep` waits in a WASI host call (`pollable.block`),
/// where epoch interruption cannot reach. It must not hold its thread past
/// the deadline, and must not take the connection or the room with it.
#[tokio::test]
async fn sleeping_fails_only_its_call_and_leaves_no_ghost() {
    let server = start().await;
    let mut bob = Client::joined(&server, "bob", "r").await;
    let mut alice = Client::joined(&server, "alice", "r").await;
    bob.expect_event("room:peer-joined").await;
    let alice_id = alice.client_id.clone();

    // A minute's sleep answers within RECV_TIMEOUT, or it was not stopped.
    let answer = send_probe(&mut alice, "sleep", "", 60_000).await;
    match answer["event"].as_str() {
        // Sleeping is not a capability a plugin needs: refusing it, or
        // failing the call, are both fine.
        Some("sandbox:result") => assert_eq!(answer["data"]["ok"], false, "{answer}"),
        Some("error") => assert_eq!(answer["data"]["code"], "PLUGIN_ERROR", "{answer}"),
        _ => panic!("unexpected answer to sleep: {answer}"),
    }
    allowed(&mut alice, "clock", "", 0).await;
    alice.assert_open().await;
    bob.expect_silence(Duration::from_millis(200)).await;

    // Membership is intact: alice's clean close reaches bob, and the
    // server counts exactly bob's connection.
    alice.close(1000).await;
    let left = bob.expect_event("room:peer-left").await;
    assert_eq!(left["clientId"], alice_id.as_str());
    server
        .admin()
        .metrics_until("one connection left", Duration::from_secs(5), |m| {
            m.value("switchboard_connections_current") == 1.0
        })
        .await;
    bob.assert_open().await;
}
