//! Hostile clients (SECURITY.md, threat model: "clients may be hostile"):
//! malformed frames, absurd JSON, oversized and never-ending frames,
//! floods, stalled and vanishing sockets, and connection churn.
//!
//! Every test runs its attack while two bystanders in a room of their own
//! relay offers to each other (and so answer the heartbeat), then checks
//! that the server recovered: it is still running, the bystanders got
//! every offer, `switchboard_connections_current` and `switchboard_rooms`
//! return to 0, `switchboard_tasks_alive` to its value before the attack,
//! and the server's RSS to within [`RSS_TOLERANCE`] of its baseline.
//!
//! Frames a client library refuses to send are written by hand
//! ([`switchboard_e2e::raw`]).
//!
//! What the server does with input that breaks RFC 6455 itself (invalid
//! UTF-8 in a text frame, unmasked frames, reserved bits or opcodes, a
//! continuation with nothing to continue, oversized or fragmented control
//! frames, a close frame with an invalid code): tungstenite refuses the
//! frame before the router sees it, and the server drops the TCP
//! connection without a close frame (RFC 6455 7.1.7 says it SHOULD send
//! one, 1007 for invalid UTF-8 and 1002 otherwise; the tests accept those
//! too). It counts as an unexpected disconnect.
//!
//! WebSocket ping and pong frames are control frames, not data messages:
//! the rate limit does not count them, nothing closes a connection for
//! sending many, and tungstenite answers every ping with a pong (a pong it
//! could not write yet is replaced by the next, so unread pongs cost no
//! memory).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::raw::{
    Ending, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, client_frame, close_frame,
    frame_header,
};
use switchboard_e2e::token::token;
use switchboard_e2e::{Client, RawWs, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

/// How far above its baseline the server's RSS may stay after an attack.
/// The allocator keeps freed pages for reuse instead of returning them to
/// the kernel, so RSS after an attack sits at about the attack's peak, and
/// a peak of a few thousand concurrent connections costs about that much
/// (an idle connection measured ~9 KiB). The churn below runs 4,000
/// connections through the server: a leak of every connection's state
/// would exceed it, and so would buffering one 10 MB frame three times.
const RSS_TOLERANCE: u64 = 30 << 20;

/// How long a connection may take to end after the input that ends it.
const END_LIMIT: Duration = Duration::from_secs(5);

/// How long gauges get to settle after an attack: an abruptly closed
/// attacker's session lives on for the grace period [`SESSION`] sets, and
/// a loaded machine may take a while to end thousands of connections.
const SETTLE: Duration = Duration::from_secs(30);

/// Prepended to every config here: sessions of abruptly closed attackers
/// end soon after the attack.
const SESSION: &str = "[session]\nresume_grace_ms = 500\n";

/// What the server looked like before the attack.
struct Baseline {
    rss: u64,
    tasks: f64,
}

/// Starts a server with `config`, gives it some ordinary traffic (so
/// plugin instances and buffers exist before the baseline is taken), and
/// measures its baseline once that traffic is gone.
async fn start(config: &str) -> (Server, Baseline) {
    let server = Server::start(&format!("{SESSION}\n{config}")).await;
    let mut a = Client::joined(&server, "warm-a", "warm-up").await;
    let mut b = Client::joined(&server, "warm-b", "warm-up").await;
    a.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "v=0" } }))
        .await;
    b.expect_event("sdp:offer").await;
    a.close(1000).await;
    b.close(1000).await;
    let metrics = server
        .admin()
        .metrics_until("warm-up connections gone", SETTLE, |m| {
            m.value("switchboard_connections_current") == 0.0 && m.value("switchboard_rooms") == 0.0
        })
        .await;
    let baseline = Baseline {
        rss: server.rss_bytes(),
        tasks: metrics.value("switchboard_tasks_alive"),
    };
    (server, baseline)
}

/// Two clients in a room of their own that relay offers for as long as
/// the attack lasts, reading all the while, so that they also answer the
/// heartbeat. Every offer must arrive, in order.
struct Bystanders {
    stop: watch::Sender<bool>,
    task: JoinHandle<(Client, Client, u64)>,
}

impl Bystanders {
    async fn start(server: &Server) -> Bystanders {
        let mut a = Client::joined(server, "bystander-a", "bystanders").await;
        let mut b = Client::joined(server, "bystander-b", "bystanders").await;
        a.expect_event("room:peer-joined").await;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut relayed = 0u64;
            while !*stopped.borrow() {
                let sdp = format!("v={relayed}");
                a.send_json(
                    json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": sdp } }),
                )
                .await;
                let got = b.expect_event("sdp:offer").await;
                assert_eq!(got, json!({ "from": a.client_id, "sdp": sdp }));
                relayed += 1;
                // Reading `a` for a while answers its pings and paces the
                // offers well under the rate limit.
                a.expect_silence(Duration::from_millis(20)).await;
            }
            (a, b, relayed)
        });
        Bystanders { stop, task }
    }

    /// Stops the relaying, checks that some happened, and closes both.
    async fn finish(self) {
        let _ = self.stop.send(true);
        let (a, b, relayed) = self.task.await.expect("the bystanders failed");
        assert!(relayed > 0, "the bystanders relayed nothing");
        a.close(1000).await;
        b.close(1000).await;
    }
}

/// The server is up, serves a new pair from connect to relay, and is back
/// to its baseline: no connection, no room, no task left over, and its RSS
/// within [`RSS_TOLERANCE`].
async fn assert_recovered(server: &mut Server, before: &Baseline) {
    assert!(server.is_running(), "the server died");
    let mut a = Client::joined(server, "after-a", "after").await;
    let mut b = Client::joined(server, "after-b", "after").await;
    a.expect_event("room:peer-joined").await;
    b.send_json(json!({ "event": "sdp:answer", "data": { "to": a.client_id, "sdp": "ok" } }))
        .await;
    assert_eq!(a.expect_event("sdp:answer").await["sdp"], "ok");
    a.close(1000).await;
    b.close(1000).await;

    let tasks = before.tasks;
    let metrics = server
        .admin()
        .metrics_until(
            "no connection, room, queued message, suspended session or extra task left",
            SETTLE,
            |m| {
                m.value("switchboard_connections_current") == 0.0
                    && m.value("switchboard_rooms") == 0.0
                    && m.value("switchboard_outbound_queue_depth") == 0.0
                    && m.value("switchboard_sessions_suspended") == 0.0
                    && m.value("switchboard_tasks_alive") <= tasks
            },
        )
        .await;
    let rooms = server.admin().get_json("/admin/rooms").await;
    assert_eq!(rooms, json!({ "rooms": [] }));
    let rss = server.rss_bytes();
    assert!(
        rss <= before.rss + RSS_TOLERANCE,
        "RSS {} MiB after the attack, baseline {} MiB (tolerance {} MiB); metrics:\n{}",
        rss >> 20,
        before.rss >> 20,
        RSS_TOLERANCE >> 20,
        metrics.summary()
    );
}

/// An `auth:request` for `user`, as text.
fn auth_request(user: &str) -> String {
    json!({ "event": "auth:request", "id": "auth", "data": { "token": token(user) } }).to_string()
}

/// A raw connection that has authenticated as `user`.
async fn raw_authed(addr: SocketAddr, user: &str) -> RawWs {
    let mut ws = RawWs::connect(addr).await;
    ws.send_text(&auth_request(user)).await;
    let reply = ws.expect_text().await;
    assert_eq!(reply["data"]["success"], true, "{reply}");
    ws
}

/// The connection ended with a close frame carrying `code` (1007 or 1002
/// after input that breaks RFC 6455), with no data message first.
async fn assert_closed_without_a_word(ws: &mut RawWs, what: &str, code: u16) {
    let (ending, messages) = ws.expect_end(END_LIMIT).await;
    assert!(messages.is_empty(), "{what}: answered {messages:?}");
    assert_eq!(
        ending,
        Ending::CloseFrame(Some(code)),
        "{what}: how it ended"
    );
}

/// The connection was dropped without a close frame and with no data
/// message first, as a heartbeat timeout does.
async fn assert_dropped_without_a_word(ws: &mut RawWs, what: &str) {
    let (ending, messages) = ws.expect_end(END_LIMIT).await;
    assert!(messages.is_empty(), "{what}: answered {messages:?}");
    assert_eq!(ending, Ending::Dropped, "{what}: how it ended");
}

// ---- malformed frames ----

#[tokio::test]
async fn malformed_utf8_in_a_text_frame_ends_only_that_connection() {
    let (mut server, baseline) = start("").await;
    let bystanders = Bystanders::start(&server).await;
    let cases: [(&str, Vec<Vec<u8>>); 6] = [
        (
            "a stray continuation byte",
            vec![b"{\"event\":\"ping\",\"id\":\"\x80\"}".to_vec()],
        ),
        (
            "an invalid byte",
            vec![b"{\"event\":\"ping\",\"id\":\"\xff\xfe\"}".to_vec()],
        ),
        (
            "an overlong encoding of `/`",
            vec![b"{\"event\":\"ping\",\"id\":\"\xc0\xaf\"}".to_vec()],
        ),
        (
            "a UTF-16 surrogate",
            vec![b"{\"event\":\"ping\",\"id\":\"\xed\xa0\x80\"}".to_vec()],
        ),
        (
            "a truncated sequence at the end",
            vec![b"{\"event\":\"ping\"}\xe2\x82".to_vec()],
        ),
        (
            "an invalid byte in the second fragment",
            vec![
                b"{\"event\":\"ping\",".to_vec(),
                b"\"id\":\"\xff\"}".to_vec(),
            ],
        ),
    ];
    for (what, fragments) in cases {
        let mut ws = raw_authed(server.addr(), "mallory").await;
        let last = fragments.len() - 1;
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
            ws.send_frame(i == last, opcode, fragment).await;
        }
        assert_closed_without_a_word(&mut ws, what, 1007).await;
    }
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

#[tokio::test]
async fn frames_that_break_rfc_6455_end_only_their_connection() {
    let (mut server, baseline) = start("").await;
    let bystanders = Bystanders::start(&server).await;
    let unmasked = {
        let mut frame = frame_header(true, OP_TEXT, 2, false);
        frame.extend_from_slice(b"{}");
        frame
    };
    let reserved_bit = {
        let mut frame = client_frame(true, OP_TEXT, b"{}");
        frame[0] |= 0x40;
        frame
    };
    let text_inside_a_fragmented_message = {
        let mut frames = client_frame(false, OP_TEXT, b"{\"event\":");
        frames.extend(client_frame(true, OP_TEXT, b"{}"));
        frames
    };
    let cases: [(&str, Vec<u8>); 10] = [
        ("an unmasked frame", unmasked),
        ("a reserved bit", reserved_bit),
        ("a reserved data opcode", client_frame(true, 0x3, b"{}")),
        ("a reserved control opcode", client_frame(true, 0xB, b"")),
        (
            "a continuation with nothing to continue",
            client_frame(true, OP_CONTINUATION, b"{}"),
        ),
        (
            "a ping of 126 bytes",
            client_frame(true, OP_PING, &[0u8; 126]),
        ),
        ("a fragmented ping", client_frame(false, OP_PING, b"x")),
        (
            "a text frame inside a fragmented message",
            text_inside_a_fragmented_message,
        ),
        (
            "a close frame with code 999",
            client_frame(true, OP_CLOSE, &999u16.to_be_bytes()),
        ),
        (
            "a close frame of one byte",
            client_frame(true, OP_CLOSE, &[3]),
        ),
    ];
    for (what, bytes) in cases {
        let mut ws = raw_authed(server.addr(), "mallory").await;
        ws.write_raw(&bytes).await.expect("write the frame");
        assert_closed_without_a_word(&mut ws, what, 1002).await;
    }
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

/// RFC 6455 5.5.1: "If an endpoint receives a Close frame and did not
/// previously send a Close frame, the endpoint MUST send a Close frame in
/// response." Without it, a browser reports every close its page makes as
/// unclean (code 1006).
#[tokio::test]
async fn a_clients_close_frame_is_answered_with_a_close_frame() {
    let (mut server, baseline) = start("").await;
    for code in [1000u16, 1001, 4321] {
        let mut ws = raw_authed(server.addr(), "alice").await;
        ws.write_raw(&close_frame(code)).await.expect("write close");
        let (ending, messages) = ws.expect_end(END_LIMIT).await;
        assert!(messages.is_empty(), "close {code} answered {messages:?}");
        assert_eq!(
            ending,
            Ending::CloseFrame(Some(code)),
            "the server must answer close {code} with a close frame (echoing the code)"
        );
    }
    assert_recovered(&mut server, &baseline).await;
}

// ---- absurd JSON ----

/// A message limit that lets 100,000 levels of nesting through, so that
/// the JSON parser is what stops them.
const ROOMY: &str = "[limits]\nmax_message_bytes = 1048576\n";

const DEPTH: usize = 100_000;

#[tokio::test]
async fn deeply_nested_json_is_invalid_message() {
    let (mut server, baseline) = start(ROOMY).await;
    let bystanders = Bystanders::start(&server).await;
    let mut client = Client::authed(&server, "mallory").await;
    let arrays = |inner: &str| format!("{}{inner}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}0{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));

    // (input, the `id` and `event` the error must echo)
    let cases: [(String, Option<&str>, Option<&str>); 6] = [
        // Not an object at all, balanced or not.
        (arrays(""), None, None),
        ("[".repeat(DEPTH), None, None),
        // Inside `data`: the envelope is valid, so the error echoes it.
        (
            format!(
                r#"{{"event":"ping","id":"arrays","data":{{"x":{}}}}}"#,
                arrays("")
            ),
            Some("arrays"),
            Some("ping"),
        ),
        (
            format!(r#"{{"event":"ping","id":"objects","data":{objects}}}"#),
            Some("objects"),
            Some("ping"),
        ),
        (
            format!(
                r#"{{"event":"room:join","id":"meta","data":{{"roomId":"r","metadata":{objects}}}}}"#
            ),
            Some("meta"),
            Some("room:join"),
        ),
        // In the `id` position: the event is still echoed, the id is not.
        (
            format!(r#"{{"event":"ping","id":{}}}"#, arrays("\"x\"")),
            None,
            Some("ping"),
        ),
    ];
    for (text, id, event) in cases {
        client.send_text(text).await;
        client.expect_error("INVALID_MESSAGE", id, event).await;
    }
    client.assert_open().await;
    drop(client);
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

#[tokio::test]
async fn huge_numbers_are_answered_per_protocol() {
    let (mut server, baseline) = start("").await;
    let mut a = Client::joined(&server, "alice", "numbers").await;
    let mut b = Client::joined(&server, "bob", "numbers").await;
    a.expect_event("room:peer-joined").await;
    let digits = "9".repeat(300);
    let to = b.client_id.clone();

    // Out of the range of a double: not a number this server can hold.
    for number in ["1e400", "-1e400"] {
        a.send_text(format!(
            r#"{{"event":"ping","id":"n","data":{{"x":{number}}}}}"#
        ))
        .await;
        a.expect_error("INVALID_MESSAGE", Some("n"), Some("ping"))
            .await;
    }
    // A 300-digit integer is valid JSON and `ping` takes any data.
    a.send_text(format!(
        r#"{{"event":"ping","id":"big","data":{{"x":{digits}}}}}"#
    ))
    .await;
    a.expect_reply("pong", "big").await;
    // Numbers where a string id must be.
    for number in ["1e400", digits.as_str()] {
        a.send_text(format!(r#"{{"event":"ping","id":{number}}}"#))
            .await;
        a.expect_error("INVALID_MESSAGE", None, Some("ping")).await;
    }
    // Where a string peer id must be.
    a.send_text(format!(
        r#"{{"event":"sdp:offer","id":"to","data":{{"to":{digits},"sdp":"v=0"}}}}"#
    ))
    .await;
    a.expect_error("INVALID_MESSAGE", Some("to"), Some("sdp:offer"))
        .await;
    // Where an integer must be: beyond 64 bits it is not one.
    for index in [digits.as_str(), "1e400"] {
        a.send_text(format!(
            r#"{{"event":"ice:candidate","id":"idx","data":{{"to":"{to}","candidate":{{"candidate":"c","sdpMLineIndex":{index}}}}}}}"#
        ))
        .await;
        a.expect_error("INVALID_MESSAGE", Some("idx"), Some("ice:candidate"))
            .await;
    }
    // The extremes of 64 bits are integers, relayed exactly.
    for index in ["18446744073709551615", "-9223372036854775808"] {
        a.send_text(format!(
            r#"{{"event":"ice:candidate","data":{{"to":"{to}","candidate":{{"candidate":"c","sdpMLineIndex":{index}}}}}}}"#
        ))
        .await;
        let got = b.expect_event("ice:candidate").await;
        assert_eq!(got["candidate"]["sdpMLineIndex"].to_string(), index);
    }
    b.expect_silence(Duration::from_millis(200)).await;
    a.close(1000).await;
    b.close(1000).await;
    assert_recovered(&mut server, &baseline).await;
}

// ---- oversized and fragmented ----

const TEN_MB: usize = 10 << 20;

#[tokio::test]
async fn a_ten_megabyte_frame_closes_with_1009() {
    let (mut server, baseline) = start("").await;
    let bystanders = Bystanders::start(&server).await;

    // The whole frame, written as fast as the server takes it.
    let mut ws = raw_authed(server.addr(), "mallory").await;
    let frame = client_frame(true, OP_TEXT, &vec![b' '; TEN_MB]);
    let (ending, messages) = ws.write_until_end(&frame, END_LIMIT).await;
    assert!(messages.is_empty(), "answered {messages:?}");
    assert_eq!(ending, Ending::CloseFrame(Some(1009)));

    // Only the header: the length alone closes, without waiting for a
    // payload that never comes. A 63-bit length is no different.
    for len in [TEN_MB as u64, u64::MAX >> 1] {
        let mut ws = raw_authed(server.addr(), "mallory").await;
        ws.write_raw(&frame_header(true, OP_TEXT, len, true))
            .await
            .expect("write a frame header");
        let (ending, messages) = ws.expect_end(END_LIMIT).await;
        assert!(messages.is_empty(), "answered {messages:?}");
        assert_eq!(ending, Ending::CloseFrame(Some(1009)), "header of {len}");
    }
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

#[tokio::test]
async fn fragments_are_reassembled_within_the_limit_and_close_1009_past_it() {
    let (mut server, baseline) = start("").await;
    let bystanders = Bystanders::start(&server).await;

    // A thousand one-byte fragments, a ping between every hundred (control
    // frames may interleave), and a two-byte character split across two
    // fragments: one message.
    let mut ws = raw_authed(server.addr(), "alice").await;
    let text = format!(
        r#"{{"event":"ping","id":"café","data":{{"pad":"{}"}}}}"#,
        "x".repeat(1000)
    );
    let bytes = text.as_bytes();
    let mut frames = Vec::new();
    for (i, byte) in bytes.iter().enumerate() {
        let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
        frames.extend(client_frame(i == bytes.len() - 1, opcode, &[*byte]));
        if i % 100 == 50 {
            frames.extend(client_frame(true, OP_PING, b"between"));
        }
    }
    ws.write_raw(&frames).await.expect("write the fragments");
    let reply = ws.expect_text().await;
    assert_eq!(reply["event"], "pong", "{reply}");
    assert_eq!(reply["id"], "café", "{reply}");
    drop(ws);

    // Past the limit across fragments, each far below it: 1009 as soon as
    // the sum passes it, whether the fragments are large or tiny.
    for fragment in [32 << 10, 1] {
        let mut ws = raw_authed(server.addr(), "mallory").await;
        let payload = vec![b' '; fragment];
        let count = TEN_MB / fragment.max(64);
        let mut frames = client_frame(false, OP_TEXT, b"{");
        for _ in 0..count {
            frames.extend(client_frame(false, OP_CONTINUATION, &payload));
        }
        let (ending, messages) = ws.write_until_end(&frames, END_LIMIT).await;
        assert!(messages.is_empty(), "answered {messages:?}");
        assert_eq!(
            ending,
            Ending::CloseFrame(Some(1009)),
            "{count} fragments of {fragment} bytes"
        );
    }

    // Empty continuation frames never reach the limit: half a million of
    // them are only slow bytes, and the message still completes.
    let mut ws = raw_authed(server.addr(), "alice").await;
    let mut frames = client_frame(false, OP_TEXT, br#"{"event":"ping","id":"empty""#);
    for _ in 0..500_000 {
        frames.extend(client_frame(false, OP_CONTINUATION, b""));
    }
    frames.extend(client_frame(true, OP_CONTINUATION, b"}"));
    ws.write_raw(&frames).await.expect("write the fragments");
    let reply = ws.expect_text().await;
    assert_eq!(reply["id"], "empty", "{reply}");
    drop(ws);

    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

// ---- floods ----

#[tokio::test]
async fn ping_and_pong_floods_are_answered_and_not_limited() {
    let (mut server, baseline) = start("").await;
    let bystanders = Bystanders::start(&server).await;
    const FLOOD: usize = 200_000;

    for (opcode, answered) in [(OP_PING, true), (OP_PONG, false)] {
        let mut ws = raw_authed(server.addr(), "mallory").await;
        let one = client_frame(true, opcode, b"flood");
        let flood: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * FLOOD)
            .collect();
        // Written without reading: the answers pile up unread meanwhile.
        ws.write_raw(&flood).await.expect("write the flood");
        ws.send_text(r#"{"event":"ping","id":"after-flood"}"#).await;

        // What comes back: pongs for pings, then the reply, and nothing
        // else (ping frames are not data: no RATE_LIMITED, no close).
        let mut pongs = 0;
        let reply = loop {
            let frame = timeout(END_LIMIT, ws.read_frame())
                .await
                .expect("the reply to the ping after the flood")
                .expect("read after the flood")
                .expect("the flooder was disconnected");
            match frame.opcode {
                OP_PONG => {
                    assert_eq!(frame.payload, b"flood");
                    pongs += 1;
                }
                OP_TEXT => break serde_json::from_slice::<Value>(&frame.payload).expect("JSON"),
                other => panic!("unexpected frame {other:#x} after the flood"),
            }
        };
        assert_eq!(reply["event"], "pong", "{reply}");
        assert_eq!(reply["id"], "after-flood", "{reply}");
        if answered {
            assert!(
                (1..=FLOOD).contains(&pongs),
                "{pongs} pongs for {FLOOD} pings"
            );
        } else {
            assert_eq!(pongs, 0, "pongs answered to pongs");
        }
    }
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

// ---- stalled and vanishing sockets ----

#[tokio::test]
async fn half_open_connections_are_ended_by_the_heartbeat() {
    let (mut server, baseline) = start("[heartbeat]\ninterval_ms = 300\n").await;
    let bystanders = Bystanders::start(&server).await;
    let before = server.admin().metrics().await;
    let timeouts_before = before.get_or_zero(
        "switchboard_connections_closed_total",
        &[("reason", "heartbeat_timeout")],
    );

    // Connected, some authenticated, then silent: they neither read nor
    // write nor close, as a client behind a dead link would look.
    const SILENT: usize = 50;
    let mut silent = Vec::new();
    for i in 0..SILENT {
        silent.push(if i % 2 == 0 {
            raw_authed(server.addr(), "ghost").await
        } else {
            RawWs::connect(server.addr()).await
        });
    }
    for ws in &mut silent {
        // Reading now only finds out what the server did meanwhile.
        assert_dropped_without_a_word(ws, "a silent client").await;
    }
    server
        .admin()
        .metrics_until(
            "every silent client counted as a heartbeat timeout",
            SETTLE,
            |m| {
                m.get_or_zero(
                    "switchboard_connections_closed_total",
                    &[("reason", "heartbeat_timeout")],
                ) == timeouts_before + SILENT as f64
            },
        )
        .await;
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

#[tokio::test]
async fn slow_and_silent_handshakes_are_cut_while_others_are_served() {
    let (mut server, baseline) =
        start("[limits]\nhandshake_timeout_ms = 500\n[auth]\ntimeout_ms = 500\n").await;
    let bystanders = Bystanders::start(&server).await;
    let addr = server.addr();

    // Slowloris: many connections that never finish their request head.
    let mut slow: Vec<JoinHandle<()>> = Vec::new();
    for i in 0..150 {
        slow.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let head = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Slow: ";
            match i % 3 {
                0 => {}
                1 => stream.write_all(head).await.expect("write half a head"),
                _ => {
                    for byte in head {
                        if stream.write_all(&[*byte]).await.is_err() {
                            break;
                        }
                        sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            let mut rest = Vec::new();
            let _ = timeout(END_LIMIT, stream.read_to_end(&mut rest))
                .await
                .expect("a slow handshake still open after 5 s");
        }));
    }
    // Upgraded, then silent: the auth timeout closes them with 4001.
    let mut unauthed = Vec::new();
    for _ in 0..30 {
        unauthed.push(RawWs::connect(addr).await);
    }
    // Meanwhile, new clients are served from start to finish.
    for _ in 0..5 {
        Client::authed(&server, "newcomer").await.close(1000).await;
    }
    for task in slow {
        task.await.expect("slow handshake task");
    }
    for ws in &mut unauthed {
        let (ending, messages) = ws.expect_end(END_LIMIT).await;
        assert!(messages.is_empty(), "answered {messages:?}");
        assert_eq!(ending, Ending::CloseFrame(Some(4001)));
    }
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

/// What a churning client does before it goes.
#[derive(Clone, Copy, Debug)]
enum Exit {
    /// Close frame 1000, then wait for the server to finish.
    Clean,
    /// A reset (`SO_LINGER` 0) right after `connected`.
    Reset,
    /// FIN without a close frame right after `connected`.
    Fin,
    /// Gone before reading the answer to its upgrade request.
    MidHandshake,
    /// Sends `auth:request` and goes without reading the answer.
    AfterAuth,
    /// Sends invalid UTF-8 and goes.
    Garbage,
}

const EXITS: [Exit; 6] = [
    Exit::Clean,
    Exit::Reset,
    Exit::Fin,
    Exit::MidHandshake,
    Exit::AfterAuth,
    Exit::Garbage,
];

/// The `i`-th of many loopback source addresses (127.1.0.10 onwards), so
/// that thousands of short connections do not wear out one address's
/// ephemeral ports.
fn source(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 200) as u8, (i % 200) as u8 + 10))
}

/// One churning client, start to end. Returns whether it was upgraded.
async fn churn_once(i: u32, addr: SocketAddr) -> std::io::Result<bool> {
    let exit = EXITS[i as usize % EXITS.len()];
    if let Exit::MidHandshake = exit {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source(i), 0))?;
        let mut stream = socket.connect(addr).await?;
        let request = switchboard_e2e::http::upgrade_request("GET", "/ws", addr);
        stream.write_all(request.as_bytes()).await?;
        return Ok(false);
    }
    let mut ws = RawWs::connect_from(source(i), addr).await?;
    match exit {
        Exit::Clean => {
            ws.write_raw(&close_frame(1000)).await?;
            ws.expect_end(END_LIMIT).await;
        }
        // A zero linger resets at once: the drop blocks on nothing, which
        // is what the deprecation warns about.
        #[allow(deprecated)]
        Exit::Reset => ws.stream().set_linger(Some(Duration::ZERO))?,
        Exit::Fin | Exit::MidHandshake => {}
        Exit::AfterAuth => {
            ws.write_raw(&client_frame(
                true,
                OP_TEXT,
                auth_request("churn").as_bytes(),
            ))
            .await?
        }
        Exit::Garbage => {
            ws.write_raw(&client_frame(true, OP_TEXT, b"\xff\xfe"))
                .await?
        }
    }
    Ok(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connects_and_disconnects_a_second() {
    let (mut server, baseline) = start("").await;
    let bystanders = Bystanders::start(&server).await;
    let addr = server.addr();
    const RATE: u32 = 1000;
    const SECONDS: u32 = 4;

    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..RATE * SECONDS {
        sleep_until(started + Duration::from_secs(1) * i / RATE).await;
        clients.push(tokio::spawn(async move {
            timeout(Duration::from_secs(10), churn_once(i, addr)).await
        }));
    }
    let mut upgraded = 0u32;
    for (i, client) in clients.into_iter().enumerate() {
        match client.await.expect("churn task") {
            Ok(Ok(true)) => upgraded += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => panic!("churning client #{i} failed: {e}"),
            Err(_) => panic!("churning client #{i} got no answer within 10 s"),
        }
    }
    let expected = (0..RATE * SECONDS)
        .filter(|i| !matches!(EXITS[*i as usize % EXITS.len()], Exit::MidHandshake))
        .count() as u32;
    assert_eq!(
        upgraded, expected,
        "every client but the vanishing ones was upgraded"
    );
    eprintln!(
        "churn: {} connections in {:?}",
        RATE * SECONDS,
        started.elapsed()
    );
    bystanders.finish().await;
    assert_recovered(&mut server, &baseline).await;
}

/// Thousands of clients in rooms of their own vanish (no close frame, so
/// each session is kept for its 500 ms grace period), all at once. Once
/// the grace periods have ended nothing of them is left: no connection,
/// room, suspended session or task, and most of the memory they took is
/// given back (the tables shrink, the allocator returns its free pages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_sessions_leave_nothing_behind_and_give_their_memory_back() {
    const CLIENTS: usize = 4000;
    const AT_ONCE: usize = 200;
    let (mut server, baseline) = start("").await;
    let mut clients = Vec::with_capacity(CLIENTS);
    for batch in 0..CLIENTS / AT_ONCE {
        let joins = (0..AT_ONCE).map(|i| {
            let n = batch * AT_ONCE + i;
            let server = &server;
            async move { Client::joined(server, &format!("vanishing-{n}"), &format!("v-{n}")).await }
        });
        clients.extend(futures_util::future::join_all(joins).await);
    }
    let metrics = server.admin().metrics().await;
    assert_eq!(metrics.value("switchboard_rooms"), CLIENTS as f64);
    let crowd = server.rss_bytes();
    drop(clients);
    server
        .admin()
        .metrics_until("every vanished session suspended", SETTLE, |m| {
            m.value("switchboard_connections_current") == 0.0
        })
        .await;
    assert_recovered(&mut server, &baseline).await;
    // The server gives memory back on its next look at the client count
    // (every 5 s) after the sessions ended.
    let added = crowd.saturating_sub(baseline.rss);
    let deadline = Instant::now() + SETTLE;
    let mut after = server.rss_bytes();
    while after.saturating_sub(baseline.rss) > added / 3 && Instant::now() < deadline {
        sleep(Duration::from_millis(500)).await;
        after = server.rss_bytes();
    }
    let left = after.saturating_sub(baseline.rss);
    eprintln!(
        "vanished sessions: RSS {} KiB before, {} KiB with {CLIENTS} clients, {} KiB after",
        baseline.rss >> 10,
        crowd >> 10,
        after >> 10
    );
    assert!(
        left <= added / 3,
        "{} KiB of the {} KiB the crowd added are still held",
        left >> 10,
        added >> 10
    );
}
