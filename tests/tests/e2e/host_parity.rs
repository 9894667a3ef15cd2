//! `TestHost` (guest-sdk/src/testing.rs), the in-memory host plugins are
//! unit-tested against, answers host calls as the real host does.
//!
//! One scenario of host calls goes through the `script` test plugin
//! (tests/plugins/script) twice: on a real server (auth-jwt and script,
//! `limits.max_rooms = 2`) whose clients A and B are authenticated and C
//! only connected, and natively against a `TestHost` set up alike, with
//! the same client ids. Every call's result, everything each client was
//! sent besides the answers to its own messages, and who was kicked must
//! be the same in both.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use script::{RESULT, RUN, Script};
use serde_json::{Value, json};
use switchboard_e2e::chains::{self, builtin, from_file};
use switchboard_e2e::{Client, Incoming, RECV_TIMEOUT, Server};
use switchboard_sdk::testing::{Sent, TestHost, reply};
use switchboard_sdk::{Host, Plugin};
use tokio::time::timeout;

const SCRIPT_WASM: &str = env!("SCRIPT_WASM");
const MAX_ROOMS: usize = 2;
const QUIET: Duration = Duration::from_millis(300);
const KICKED: u16 = 4009;
/// What the script sends with `send` and `broadcast`.
const NOTE: &str = "script:note";
/// No client id at all, where a client's id is expected.
const MALFORMED: &str = "not-a-client-id";

fn config() -> String {
    let preamble = format!("[limits]\nmax_rooms = {MAX_ROOMS}");
    let chain = [builtin("auth-jwt"), from_file("script", SCRIPT_WASM)];
    chains::config(&preamble, &chain)
}

/// The scene's client ids: A (`alice`) and B (`bob`) authenticated, C
/// connected only, U well-formed but no client's.
struct Ids {
    a: String,
    b: String,
    c: String,
    u: String,
}

impl Ids {
    fn new(a: &str, b: &str, c: &str) -> Ids {
        let u = (0u64..)
            .map(|n| format!("{n:016x}"))
            .find(|id| ![a, b, c].contains(&id.as_str()))
            .expect("some id is free");
        let [a, b, c] = [a, b, c].map(str::to_owned);
        Ids { a, b, c, u }
    }
}

#[derive(Clone, Copy)]
enum Sender {
    A,
    B,
}

/// One `script:run`: who sends it and its steps.
type Run = (Sender, Value);

/// The steps of a script, one function per call the script plugin makes.
mod steps {
    use serde_json::{Value, json};

    fn step(call: &str, mut args: Value) -> Value {
        args["call"] = call.into();
        args
    }

    pub fn join(client: &str, room: &str, metadata: &str) -> Value {
        let args = json!({ "client": client, "room": room, "metadata": metadata });
        step("join_room", args)
    }

    pub fn leave(client: &str) -> Value {
        step("leave_room", json!({ "client": client }))
    }

    pub fn members(room: &str) -> Value {
        step("room_members", json!({ "room": room }))
    }

    pub fn info(client: &str) -> Value {
        step("client_info", json!({ "client": client }))
    }

    pub fn kv_set(room: &str) -> Value {
        step("kv_set", json!({ "room": room, "key": "k", "value": room }))
    }

    pub fn kv_get(room: &str) -> Value {
        step("kv_get", json!({ "room": room, "key": "k" }))
    }

    pub fn send(client: &str, event: &str, data: &str) -> Value {
        let args = json!({ "client": client, "event": event, "data": data });
        step("send", args)
    }

    pub fn broadcast(room: &str, event: &str, data: &str, except: Option<&str>) -> Value {
        let args = json!({ "room": room, "event": event, "data": data, "except": except });
        step("broadcast", args)
    }

    /// A timer that tells `tag`, a client, once it fires.
    pub fn timer(room: &str, tag: &str) -> Value {
        step(
            "set_timer",
            json!({ "room": room, "delay_ms": 50, "tag": tag }),
        )
    }

    pub fn kick(client: &str) -> Value {
        step("kick", json!({ "client": client, "reason": "gone" }))
    }
}

/// Data for [`NOTE`].
fn note(n: u32) -> String {
    json!({ "n": n }).to_string()
}

/// The `err` of each `join_room` of [`scenario`]'s main run that fails, as
/// the real host answers: what the scenario is there to compare.
const MAIN_RUN_JOIN_ERRORS: [&str; 8] = [
    "ALREADY_IN_ROOM",
    "INVALID_MESSAGE",
    "INVALID_MESSAGE",
    "NOT_AUTHENTICATED",
    "NOT_AUTHENTICATED",
    "PEER_NOT_FOUND",
    "ROOM_FULL",
    "NOT_AUTHENTICATED",
];

/// B opens room `r2`; A's main run makes the calls on which the host and
/// `TestHost` could disagree; the next changes who is in `r2` after sending
/// to it within one call (both deliver to the members at the time of the
/// send, though the host does so once the call returns); each later run is
/// one call that the host fails as a whole (`PLUGIN_ERROR`).
fn scenario(ids: &Ids) -> Vec<Run> {
    use steps::*;
    let (a, b, c, u) = (&*ids.a, &*ids.b, &*ids.c, &*ids.u);
    let main = json!([
        join(a, "r2", r#"{"name":"A"}"#),
        join(a, "r3", "{}"),
        // The room id is checked before anything else.
        join(a, "", "{}"),
        join(a, &"r".repeat(129), "{}"),
        // Connected, not authenticated.
        join(c, "r2", "{}"),
        join(u, "r2", "{}"),
        join(MALFORMED, "r2", "{}"),
        members("r2"),
        kv_set("r2"),
        kv_get("r2"),
        // Storage of a room that does not exist keeps nothing.
        kv_set("r9"),
        kv_get("r9"),
        kv_set(""),
        kv_get(""),
        leave(c),
        leave(u),
        leave(MALFORMED),
        leave(a),
        leave(a),
        kv_get("r2"),
        // Opens the second room of two.
        join(a, "r1", "{}"),
        // The room limit is checked before the identity.
        join(c, "r3", "{}"),
        join(c, "r1", "{}"),
        members("r9"),
        members(""),
        info(a),
        info(b),
        info(c),
        info(u),
        info(MALFORMED),
        send(b, NOTE, &note(1)),
        send(c, NOTE, &note(2)),
        send(u, NOTE, &note(3)),
        send(MALFORMED, NOTE, &note(4)),
        broadcast("r2", NOTE, &note(5), Some(b)),
        broadcast("r2", NOTE, &note(6), Some(MALFORMED)),
        broadcast("r1", NOTE, &note(7), None),
        broadcast("r9", NOTE, &note(8), None),
        broadcast("", NOTE, &note(9), None),
        timer("r1", a),
        timer("r9", b),
        timer("", b),
        kick(u),
        kick(MALFORMED),
        kick(c),
    ]);
    let faults = [
        send(a, "Note", "{}"),
        send(a, NOTE, "[]"),
        send(u, NOTE, "{"),
        broadcast("r9", "", "{}", None),
        broadcast("r1", NOTE, "1", None),
        join(b, "r1", "[]"),
        join(u, "r4", ""),
    ];
    let moves = json!([
        leave(a),
        broadcast("r2", NOTE, &note(10), None),
        join(a, "r2", "{}"),
        broadcast("r2", NOTE, &note(11), Some(a)),
        leave(a),
    ]);
    let setup = (Sender::B, json!([join(b, "r2", r#"{"name":"B"}"#)]));
    let faults = faults.map(|fault| (Sender::A, json!([fault])));
    [setup, (Sender::A, main), (Sender::A, moves)]
        .into_iter()
        .chain(faults)
        .collect()
}

/// What one client was sent besides the answers to its own messages, and
/// the close code if the server closed it.
#[derive(Debug, Default, PartialEq)]
struct Heard {
    messages: Vec<Value>,
    closed: Option<u16>,
}

/// What a scenario did: each run's answer (`script:result` data, or
/// `{"error": code}`), and what each client that heard anything heard, by
/// its id.
struct Observed {
    answers: Vec<Value>,
    heard: BTreeMap<String, Heard>,
}

fn plugin_error() -> Value {
    json!({ "error": "PLUGIN_ERROR" })
}

impl Heard {
    fn push(&mut self, message: Value) {
        assert!(message.get("id").is_none(), "unexpected reply: {message}");
        self.messages.push(message);
    }

    /// Reads until `id`'s answer, keeping what comes before it.
    async fn answer(&mut self, client: &mut Client, id: &str) -> Value {
        loop {
            match timeout(RECV_TIMEOUT, client.next_incoming()).await {
                Ok(Incoming::Message(message)) if message["id"] == id => {
                    return match message["event"].as_str() {
                        Some(RESULT) => message["data"].clone(),
                        _ => json!({ "error": message["data"]["code"] }),
                    };
                }
                Ok(Incoming::Message(message)) => self.push(message),
                other => panic!("waiting for the answer to {id}: {other:?}"),
            }
        }
    }

    /// Reads until nothing comes for [`QUIET`] or the server closes.
    async fn until_quiet(&mut self, client: &mut Client) {
        loop {
            match timeout(QUIET, client.next_incoming()).await {
                Err(_) => return,
                Ok(Incoming::Message(message)) => self.push(message),
                Ok(Incoming::Closed(code)) => {
                    self.closed = code;
                    return;
                }
                Ok(Incoming::Failed(why)) => panic!("connection failed: {why}"),
            }
        }
    }
}

async fn on_server(server: &Server) -> (Ids, Observed) {
    let mut a = Client::authed(server, "alice").await;
    let mut b = Client::authed(server, "bob").await;
    let mut c = Client::connect(server).await;
    let ids = Ids::new(&a.client_id, &b.client_id, &c.client_id);
    let mut heard: [Heard; 3] = Default::default();
    let mut answers = Vec::new();
    for (i, (sender, steps)) in scenario(&ids).into_iter().enumerate() {
        let (client, heard) = match sender {
            Sender::A => (&mut a, &mut heard[0]),
            Sender::B => (&mut b, &mut heard[1]),
        };
        let id = format!("run-{i}");
        client
            .send_json(json!({ "event": RUN, "id": id, "data": { "steps": steps } }))
            .await;
        answers.push(heard.answer(client, &id).await);
    }
    for (client, heard) in [&mut a, &mut b, &mut c].into_iter().zip(&mut heard) {
        heard.until_quiet(client).await;
    }
    let heard = [&ids.a, &ids.b, &ids.c]
        .into_iter()
        .cloned()
        .zip(heard)
        .filter(|(_, heard)| *heard != Heard::default())
        .collect();
    (ids, Observed { answers, heard })
}

fn natively(ids: &Ids) -> Observed {
    let host = TestHost::new();
    host.set_max_rooms(MAX_ROOMS);
    host.add_client(&ids.a, "alice");
    host.add_client(&ids.b, "bob");
    host.connect(&ids.c);
    let answers = scenario(ids)
        .into_iter()
        .map(|(sender, steps)| {
            let sender = match sender {
                Sender::A => &ids.a,
                Sender::B => &ids.b,
            };
            let data = json!({ "steps": steps }).to_string();
            // What the host fails a call for, TestHost panics on.
            let call = || Script.on_event(&host, &host.client(sender), RUN, &data);
            match panic::catch_unwind(AssertUnwindSafe(call)) {
                Ok(outcome) => reply(outcome).1,
                Err(_) => plugin_error(),
            }
        })
        .collect();
    // The host calls a timer's plugin once its delay has passed, if its
    // room exists then.
    for timer in host.timers() {
        if !host.room_members(&timer.room).is_empty() {
            Script.on_timer(&host, &timer.room, &timer.tag);
        }
    }
    let mut heard: BTreeMap<String, Heard> = BTreeMap::new();
    for Sent { to, event, data } in host.sent() {
        let message = json!({ "event": event, "data": data });
        heard.entry(to).or_default().messages.push(message);
    }
    for (id, _reason) in host.kicks() {
        heard.entry(id).or_default().closed = Some(KICKED);
    }
    Observed { answers, heard }
}

#[tokio::test]
async fn test_host_answers_host_calls_as_the_real_host_does() {
    let server = Server::start(&config()).await;
    let (ids, real) = on_server(&server).await;

    let main_run = real.answers[1]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("the main run failed: {}", real.answers[1]));
    let join_errors: Vec<&str> = main_run
        .iter()
        .filter_map(|result| result["err"].as_str())
        .collect();
    assert_eq!(join_errors, MAIN_RUN_JOIN_ERRORS);
    // Setup, main and moves succeed; every later run is a fault.
    assert!(real.answers[2]["results"].is_array(), "{}", real.answers[2]);
    assert!(
        real.answers[3..]
            .iter()
            .all(|answer| *answer == plugin_error())
    );

    assert_same(&scenario(&ids), &natively(&ids), &real);
}

/// Fails on the first step whose result differs, then on the first client
/// that heard something else.
fn assert_same(scenario: &[Run], native: &Observed, real: &Observed) {
    assert_eq!(native.answers.len(), real.answers.len());
    let runs = scenario
        .iter()
        .zip(native.answers.iter().zip(&real.answers));
    for (i, ((_, steps), (native, real))) in runs.enumerate() {
        let steps = steps.as_array().expect("steps are an array");
        let results = (native["results"].as_array(), real["results"].as_array());
        let (Some(native), Some(real)) = results else {
            assert_eq!(
                native, real,
                "run {i}: TestHost (left) and the host (right) differ"
            );
            continue;
        };
        assert_eq!(native.len(), real.len(), "run {i}");
        for (step, (native, real)) in steps.iter().zip(native.iter().zip(real)) {
            assert_eq!(
                native, real,
                "run {i}, step {step}: TestHost (left) and the host (right) differ"
            );
        }
    }
    let listeners = |observed: &Observed| observed.heard.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        listeners(native),
        listeners(real),
        "who heard anything from TestHost (left) and from the host (right)"
    );
    for (client, native) in &native.heard {
        assert_eq!(
            native, &real.heard[client],
            "what {client} heard from TestHost (left) and from the host (right)"
        );
    }
}
