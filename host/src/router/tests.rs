//! The router in process: real built-in plugins, real outbound queues, no
//! sockets. Each test feeds text as a connection task would and reads what
//! was queued for each client.

use serde_json::{Value, json};

use super::{Conn, Verdict};
use crate::app::App;
use crate::config::Config;
use crate::net::{Inbox, Outbound, QueueLimits, queue};
use crate::session::ClientIds;
use crate::vocab::CloseCode;

struct Harness {
    app: App,
    ids: ClientIds,
}

/// One connection: its protocol state and the queue its task would write.
struct Client {
    conn: Conn,
    inbox: Inbox,
}

impl Harness {
    /// Auth off (every connection is authenticated as its client id), and
    /// `toml` for the rest of the config.
    fn new(toml: &str) -> Harness {
        Harness::with_config(&format!("[auth]\nrequired = false\n{toml}"))
    }

    fn with_config(toml: &str) -> Harness {
        let mut config = Config::parse(toml).unwrap();
        config.plugin_cache.dir = Some(std::env::temp_dir().join("switchboard-unit-tests-cache"));
        let secret = |name: &str| (name == "SWITCHBOARD_JWT_SECRET").then(|| "unit".to_owned());
        let app = App::build(config, None, secret, None).unwrap();
        Harness {
            app,
            ids: ClientIds::new(),
        }
    }

    fn connect(&self) -> Client {
        let (outbox, inbox) = queue(QueueLimits {
            messages: 64,
            bytes: 1 << 20,
        });
        let conn = self.app.router().connect(self.ids.next(), outbox);
        Client { conn, inbox }
    }

    fn send(&self, client: &mut Client, message: Value) -> Verdict {
        self.app
            .router()
            .handle_text(&mut client.conn, &message.to_string())
    }

    /// Joins `room` and drops what that queued for anyone.
    fn join(&self, room: &str, clients: &mut [&mut Client]) {
        for client in clients.iter_mut() {
            let join = json!({"event": "room:join", "data": {"roomId": room}});
            assert_eq!(self.send(client, join), Verdict::Open);
        }
        for client in clients {
            client.received();
        }
    }
}

impl Client {
    fn id(&self) -> String {
        self.conn.id().to_string()
    }

    /// Every frame queued for this client, oldest first.
    fn received(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(out) = self.inbox.try_recv() {
            match out {
                Outbound::Frame(frame) => frames.push(serde_json::from_str(&frame).unwrap()),
                Outbound::Close(code, reason) => {
                    frames.push(json!({"close": code.as_u16(), "reason": reason}))
                }
            }
        }
        frames
    }

    fn error_code(&mut self) -> String {
        let frames = self.received();
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["event"], "error", "{frames:?}");
        frames[0]["data"]["code"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn before_auth_only_auth_ping_and_resume_pass_the_gate() {
    let harness = Harness::with_config("");
    let mut client = harness.connect();
    let join = json!({"event": "room:join", "id": "j1", "data": {"roomId": "r"}});
    harness.send(&mut client, join);
    let frames = client.received();
    assert_eq!(frames[0]["data"]["code"], "NOT_AUTHENTICATED");
    assert_eq!(frames[0]["id"], "j1");
    harness.send(&mut client, json!({"event": "nope:nope"}));
    assert_eq!(
        client.error_code(),
        "NOT_AUTHENTICATED",
        "unknown events too"
    );
    harness.send(&mut client, json!({"event": "ping", "id": "p"}));
    let pong = client.received();
    assert_eq!(
        (&pong[0]["event"], &pong[0]["id"]),
        (&json!("pong"), &json!("p"))
    );
}

#[tokio::test]
async fn the_third_failed_auth_closes_with_4003() {
    let harness = Harness::new("");
    let mut client = harness.connect();
    let bad = json!({"event": "auth:request", "data": {"token": "not-a-jwt"}});
    assert_eq!(harness.send(&mut client, bad.clone()), Verdict::Open);
    assert_eq!(harness.send(&mut client, bad.clone()), Verdict::Open);
    assert_eq!(
        harness.send(&mut client, bad),
        Verdict::Close(CloseCode::AuthFailures, "too many failed auth attempts")
    );
    let answers = client.received();
    assert_eq!(answers.len(), 3);
    assert!(answers.iter().all(|a| a["data"]["success"] == false));
}

#[tokio::test]
async fn unknown_events_and_bad_data_are_answered_in_order_of_checks() {
    let harness = Harness::new("");
    let mut client = harness.connect();
    harness.send(&mut client, json!({"event": "nope:nope", "id": "x"}));
    assert_eq!(client.error_code(), "UNKNOWN_EVENT");
    harness.send(
        &mut client,
        json!({"event": "room:join", "data": {"roomId": ""}}),
    );
    assert_eq!(client.error_code(), "INVALID_MESSAGE");
    harness.send(&mut client, json!({"event": "room:leave"}));
    assert_eq!(client.error_code(), "NOT_IN_ROOM");
}

#[tokio::test]
async fn a_relay_reaches_its_target_from_its_sender_and_nobody_else() {
    let harness = Harness::new("");
    let (mut a, mut b, mut outsider) = (harness.connect(), harness.connect(), harness.connect());
    harness.join("r", &mut [&mut a, &mut b]);
    harness.join("elsewhere", &mut [&mut outsider]);
    let offer = json!({"event": "sdp:offer", "id": "o", "data": {"to": b.id(), "sdp": "v=0"}});
    assert_eq!(harness.send(&mut a, offer), Verdict::Open);
    assert!(a.received().is_empty(), "nothing back on success");
    let got = b.received();
    assert_eq!(
        got,
        [json!({"event": "sdp:offer", "data": {"from": a.id(), "sdp": "v=0"}})]
    );
    let across = json!({"event": "sdp:offer", "data": {"to": outsider.id(), "sdp": "v=0"}});
    harness.send(&mut a, across);
    assert_eq!(a.error_code(), "PEER_NOT_FOUND");
    assert!(outsider.received().is_empty());
}

#[tokio::test]
async fn a_resume_must_be_the_first_message() {
    let harness = Harness::new("");
    let mut first = harness.connect();
    first.conn.count_message();
    let resume = json!({"event": "session:resume", "id": "r", "data": {"resumeToken": "t"}});
    assert_eq!(
        harness.send(&mut first, resume.clone()),
        Verdict::Resume {
            token: "t".into(),
            cause: crate::ids::CorrelationId::parse("r"),
        }
    );
    let mut late = harness.connect();
    late.conn.count_message();
    late.conn.count_message();
    assert_eq!(harness.send(&mut late, resume), Verdict::Open);
    assert_eq!(late.error_code(), "RESUME_FAILED");
}

#[tokio::test]
async fn an_event_over_its_own_rate_gets_rate_limited_with_its_id() {
    let harness = Harness::new("[limits.events.ping]\nrate_per_sec = 0.001\nrate_burst = 1\n");
    let mut client = harness.connect();
    harness.send(&mut client, json!({"event": "ping", "id": "1"}));
    harness.send(&mut client, json!({"event": "ping", "id": "2"}));
    let frames = client.received();
    assert_eq!(frames[0]["event"], "pong");
    assert_eq!(frames[1]["data"]["code"], "RATE_LIMITED");
    assert_eq!(frames[1]["id"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_timer_fires_on_the_timer_task() {
    let harness = Harness::new(
        "[[plugins]]\nname = \"room-ttl\"\nconfig = { ttl_ms = 50 }\n\
         [[plugins]]\nname = \"rooms\"\n[[plugins]]\nname = \"signaling\"\n",
    );
    let (mut a, mut b) = (harness.connect(), harness.connect());
    harness.join("short", &mut [&mut a, &mut b]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for client in [&mut a, &mut b] {
        let frames = client.received();
        assert_eq!(frames[0]["event"], "room:closed", "{frames:?}");
        assert_eq!(frames[1]["close"], 4009, "{frames:?}");
    }
}
