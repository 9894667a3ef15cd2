//! What a plugin prints goes to the server's log (README, "Plugin
//! output"), and each chain entry may have limits of its own.
//!
//! `noisy` (tests/plugins/) sits in the chain under the names its config
//! gives it; `noisy:act` `{"to", "act", ...}` makes the entry named `to`
//! print (`text`, `times` times, to `stream`), grow its memory by `n` MiB
//! or spin for `n` ms, and reply `noisy:done`. The server logs JSON, so
//! each of its log lines is read as an object.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::{Client, Server, chains};
use tokio::time::{Instant, sleep};

/// The host's bounds on one stream's output per call
/// (host/src/plugins/wasm/output.rs).
const CALL_LINES: usize = 64;

/// How long the log may take to show what a call printed.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// A chain entry for `noisy` under `name`, with `extra` keys (limits).
fn noisy(name: &str, extra: &str) -> String {
    let entry = chains::with_config(
        chains::from_file(name, chains::NOISY_WASM),
        &format!("name = {name:?}"),
    );
    format!("{entry}\n{extra}")
}

async fn start(preamble: &str, entries: &[String]) -> Server {
    Server::builder(&chains::with_extra(preamble, entries))
        .arg("--log-format")
        .arg("json")
        .start()
        .await
}

/// Sends `noisy:act` and returns the whole answer.
async fn act(client: &mut Client, id: &str, data: Value) -> Value {
    client
        .send_json(json!({ "event": "noisy:act", "id": id, "data": data }))
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["id"], id, "answer to another message: {answer}");
    answer
}

/// An act that must succeed: its `noisy:done` reply.
async fn done(client: &mut Client, id: &str, data: Value) {
    let answer = act(client, id, data).await;
    assert_eq!(answer["event"], "noisy:done", "{id}: {answer}");
}

/// An act whose call must fail: `PLUGIN_ERROR` for it.
async fn plugin_error(client: &mut Client, id: &str, data: Value) {
    let answer = act(client, id, data).await;
    assert_eq!(answer["event"], "error", "{id}: {answer}");
    assert_eq!(answer["data"]["code"], "PLUGIN_ERROR", "{id}: {answer}");
}

/// The plugin output lines of the server's log so far, as
/// `(plugin, stream, level, message)`.
fn output_lines(server: &Server) -> Vec<(String, String, String, String)> {
    server
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| {
            let fields = &entry["fields"];
            Some((
                fields["plugin"].as_str()?.to_owned(),
                fields["stream"].as_str()?.to_owned(),
                entry["level"].as_str()?.to_owned(),
                fields["message"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Waits until the log has an output line of `plugin` on `stream` whose
/// message is `message`; returns every output line then.
async fn wait_for_line(
    server: &Server,
    plugin: &str,
    stream: &str,
    message: &str,
) -> Vec<(String, String, String, String)> {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let lines = output_lines(server);
        if lines
            .iter()
            .any(|(p, s, _, m)| p == plugin && s == stream && m == message)
        {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "no {stream} line {message:?} of `{plugin}` in the log after {LOG_WAIT:?}:\n{}",
            server.log()
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn printed_lines_reach_the_log_with_plugin_and_stream() {
    let server = start("", &[noisy("loud", "")]).await;
    let mut client = Client::authed(&server, "alice").await;

    let print = |stream: &str, text: &str| json!({ "to": "loud", "act": "print", "stream": stream, "text": text });
    done(&mut client, "out", print("stdout", "hello\nworld\n")).await;
    done(&mut client, "err", print("stderr", "something failed\n")).await;
    // No newline: the SDK flushes after the call, the host logs the rest.
    done(&mut client, "partial", print("stdout", "no newline")).await;

    let lines = wait_for_line(&server, "loud", "stdout", "no newline").await;
    let of = |stream: &str| -> Vec<(&str, &str)> {
        lines
            .iter()
            .filter(|(p, s, _, _)| p == "loud" && s == stream)
            .map(|(_, _, level, message)| (level.as_str(), message.as_str()))
            .collect()
    };
    assert_eq!(
        of("stdout"),
        [("INFO", "hello"), ("INFO", "world"), ("INFO", "no newline")]
    );
    assert_eq!(of("stderr"), [("WARN", "something failed")]);
    client.assert_open().await;
}

#[tokio::test]
async fn a_flood_of_output_is_truncated_and_the_server_stays_healthy() {
    // 20,000 lines in one call: about 220 KB, and as many host calls.
    let server = start("", &[noisy("flood", "deadline_ms = 5000")]).await;
    let mut client = Client::authed(&server, "alice").await;
    let flood = json!({
        "to": "flood", "act": "print", "stream": "stdout",
        "text": "flooding\n", "times": 20_000,
    });
    done(&mut client, "flood", flood).await;
    done(
        &mut client,
        "after",
        json!({ "to": "flood", "act": "print", "stream": "stdout", "text": "after the flood\n" }),
    )
    .await;

    let lines = wait_for_line(&server, "flood", "stdout", "after the flood").await;
    let flood: Vec<&str> = lines
        .iter()
        .filter(|(p, _, _, _)| p == "flood")
        .map(|(_, _, _, m)| m.as_str())
        .collect();
    let flooding = flood.iter().filter(|m| **m == "flooding").count();
    assert_eq!(flooding, CALL_LINES, "one call's lines are bounded");
    let notes: Vec<&&str> = flood
        .iter()
        .filter(|m| m.starts_with("[output truncated:"))
        .collect();
    assert_eq!(notes.len(), 1, "the log says it was truncated: {notes:?}");
    assert_eq!(flood.last(), Some(&"after the flood"), "{flood:?}");

    // Healthy: answers its admin API and serves a new client.
    assert_eq!(server.admin().get("/healthz").await.status, 200);
    let mut other = Client::authed(&server, "bob").await;
    done(
        &mut other,
        "again",
        json!({ "to": "flood", "act": "print", "text": "" }),
    )
    .await;
    client.assert_open().await;
}

/// `[plugin_limits]` is the default; `small` has less memory and time,
/// `big` more memory (past the default) and more time.
#[tokio::test]
async fn each_chain_entry_has_its_own_memory_and_deadline() {
    let server = start(
        "[plugin_limits]\nmemory_bytes = 33554432\ndeadline_ms = 1000\n",
        &[
            noisy("small", "memory_bytes = 16777216\ndeadline_ms = 100"),
            noisy("big", "memory_bytes = 100663296\ndeadline_ms = 3000"),
        ],
    )
    .await;
    let mut client = Client::authed(&server, "alice").await;
    let grow = |to: &str, n: u64| json!({ "to": to, "act": "grow", "n": n });
    let spin = |to: &str, n: u64| json!({ "to": to, "act": "spin", "n": n });

    // Memory: 24 MiB is over small's 16 and under the default 32; 48 is
    // over the default and under big's 96.
    plugin_error(&mut client, "small-24", grow("small", 24)).await;
    done(&mut client, "big-48", grow("big", 48)).await;
    done(&mut client, "small-4", grow("small", 4)).await;

    // Time: 400 ms is over small's 100 and under big's 3000.
    plugin_error(&mut client, "small-spin", spin("small", 400)).await;
    done(&mut client, "big-spin", spin("big", 400)).await;
    done(&mut client, "small-spin-short", spin("small", 1)).await;
    client.assert_open().await;
}

/// A hot swap starts the next version under the entry's own limits, not
/// `[plugin_limits]`.
#[tokio::test]
async fn a_swapped_version_keeps_its_entrys_limits() {
    let server = start(
        "",
        &[noisy("big", "memory_bytes = 100663296\ndeadline_ms = 3000")],
    )
    .await;
    let mut client = Client::authed(&server, "alice").await;
    let grow = json!({ "to": "big", "act": "grow", "n": 48 });
    done(&mut client, "before", grow.clone()).await;

    let bytes = std::fs::read(chains::NOISY_WASM).expect("read noisy");
    let response = server.admin().put("/admin/plugins/big", &bytes).await;
    assert_eq!(response.status, 200, "swap: {response}");
    // 48 MiB is past the default 32: only the entry's 96 allows it.
    done(&mut client, "after", grow).await;
}

#[tokio::test]
async fn a_chain_entry_limit_out_of_range_fails_the_start_naming_it() {
    let config = chains::with_extra("", &[noisy("tiny", "memory_bytes = 1024")]);
    let (status, log) = Server::builder(&config)
        .start_expecting_failure(Duration::from_secs(30))
        .await;
    assert!(!status.success());
    assert!(
        log.contains("`[[plugins]]` entry `tiny`: `memory_bytes` is 1024 bytes"),
        "{log}"
    );
}
