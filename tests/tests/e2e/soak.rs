//! A bounded soak: many clients churn at once for a while (connect,
//! authenticate, join and leave rooms, relay to each other, disconnect
//! cleanly and abruptly), then the server must hold nothing of them: no
//! connection, room, queued message, suspended session or extra task; and
//! every relay the server accepted for a peer that stayed to receive it
//! arrived, once, in order.
//!
//! It runs [`DEFAULT_SECS`] seconds; `SWITCHBOARD_SOAK_SECS` sets another
//! length for longer local runs, and `SWITCHBOARD_SOAK_SEED` replays the
//! random choices of an earlier run (each run prints its seed).
//!
//! Relays are accounted for exactly. A sender learns which of its relays
//! the server accepted by following each batch with a `ping`: replies come
//! in order, so once its `pong` is in, every relay without an error was
//! accepted. A receiver that leaves its room with `room:leave` reads up to
//! `room:left`, and the server queued every relay accepted for it before
//! that; so each of those must have arrived. A receiver that disconnects
//! from inside its room may lose what was still queued for it; relays to
//! it are counted, not required.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_e2e::token::token;
use switchboard_e2e::{Client, Incoming, Server};
use tokio::time::{Instant, timeout};

const DEFAULT_SECS: u64 = 60;

/// Clients alive at once.
const WORKERS: usize = 24;

/// Rooms the clients share: few enough that rooms hold several members,
/// and few enough that joins race with leaves.
const ROOMS: u64 = 8;

/// How long one expected message may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// How long the server gets to let go of everything after the soak,
/// suspended sessions' short grace periods included.
const SETTLE: Duration = Duration::from_secs(30);

/// Session resume keeps an abruptly disconnected client's session for
/// `session.resume_grace_ms`; a short one lets them end soon after the run.
const CONFIG: &str = "[session]\nresume_grace_ms = 500\n";

/// A small xorshift generator: the runs must be reproducible from a seed,
/// and the tests have no other use for randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How a client's life ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Exit {
    /// Never authenticates: closes cleanly or vanishes.
    Unauthenticated,
    /// Authenticates, pings, closes; never joins.
    NoRoom,
    /// The room was full.
    RoomFull,
    /// `room:leave`, then a clean close.
    LeaveThenClose,
    /// `room:leave`, then gone without a close frame.
    LeaveThenVanish,
    /// A clean close from inside the room.
    CloseInRoom,
    /// Gone without a close frame from inside the room.
    VanishInRoom,
    /// A TCP reset from inside the room.
    ResetInRoom,
}

impl Exit {
    fn pick(rng: &mut Rng) -> Exit {
        match rng.below(100) {
            0..5 => Exit::Unauthenticated,
            5..10 => Exit::NoRoom,
            10..40 => Exit::LeaveThenClose,
            40..55 => Exit::LeaveThenVanish,
            55..75 => Exit::CloseInRoom,
            75..90 => Exit::VanishInRoom,
            _ => Exit::ResetInRoom,
        }
    }
}

/// One relay: who sent it to whom, and its number among the sender's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Relay {
    from: String,
    to: String,
    seq: u64,
}

/// What every client did, merged at the end of each life.
#[derive(Default)]
struct Ledger {
    lives: HashMap<Exit, u64>,
    /// Relays the server accepted (no error came back).
    accepted: Vec<Relay>,
    /// Relays refused, by error code.
    refused: HashMap<String, u64>,
    /// What each client received, in order of arrival.
    received: HashMap<String, Vec<Relay>>,
    /// Clients that read up to their `room:left`: they got everything the
    /// server accepted for them.
    drained: HashSet<String>,
}

/// The relay events, with where each keeps the payload that carries the
/// relay's identity.
const RELAYS: [&str; 3] = ["sdp:offer", "sdp:answer", "ice:candidate"];

fn relay_message(event: &str, id: &str, relay: &Relay) -> Value {
    let tag = format!("soak {} {} {}", relay.from, relay.to, relay.seq);
    let data = match event {
        "ice:candidate" => {
            json!({ "to": relay.to, "candidate": { "candidate": tag, "sdpMid": "0" } })
        }
        _ => json!({ "to": relay.to, "sdp": tag }),
    };
    json!({ "event": event, "id": id, "data": data })
}

/// The relay a received relay event carries, checked against its `from`.
fn parse_relay(message: &Value) -> Relay {
    let data = &message["data"];
    let tag = data["sdp"]
        .as_str()
        .or_else(|| data["candidate"]["candidate"].as_str())
        .unwrap_or_else(|| panic!("relay without its tag: {message}"));
    let parts: Vec<&str> = tag.split(' ').collect();
    let [_, from, to, seq] = parts[..] else {
        panic!("malformed relay tag: {message}")
    };
    assert_eq!(data["from"], from, "relay with a forged `from`: {message}");
    Relay {
        from: from.to_owned(),
        to: to.to_owned(),
        seq: seq.parse().expect("relay seq"),
    }
}

/// One client's life and what it saw.
struct Life {
    client: Client,
    id: String,
    peers: HashSet<String>,
    received: Vec<Relay>,
    accepted: Vec<Relay>,
    refused: HashMap<String, u64>,
    /// Relays sent and not yet known to be accepted or refused, by id.
    pending: HashMap<String, Relay>,
    seq: u64,
}

impl Life {
    /// Handles one message that is not the reply being waited for.
    fn on_message(&mut self, message: Value) {
        let event = message["event"].as_str().unwrap_or_default().to_owned();
        match event.as_str() {
            e if RELAYS.contains(&e) => {
                let relay = parse_relay(&message);
                assert_eq!(relay.to, self.id, "a relay for someone else: {message}");
                self.received.push(relay);
            }
            "room:peer-joined" => {
                let peer = message["data"]["peer"]["clientId"]
                    .as_str()
                    .expect("peer id");
                self.peers.insert(peer.to_owned());
            }
            "room:peer-left" => {
                let peer = message["data"]["clientId"].as_str().expect("peer id");
                self.peers.remove(peer);
            }
            "error" => {
                let id = message["id"].as_str().unwrap_or_default();
                let relay = self
                    .pending
                    .remove(id)
                    .unwrap_or_else(|| panic!("an error for no relay: {message}"));
                let code = message["data"]["code"].as_str().unwrap_or_default();
                assert!(
                    ["PEER_NOT_FOUND", "NOT_IN_ROOM"].contains(&code),
                    "relay {relay:?} refused with {message}"
                );
                *self.refused.entry(code.to_owned()).or_default() += 1;
            }
            _ => panic!("{}: unexpected {message}", self.id),
        }
    }

    /// Reads, handling everything else, until `event` with `id` arrives;
    /// returns its data. An `error` with `id` is returned too.
    async fn until_reply(&mut self, event: &str, id: &str) -> Value {
        loop {
            let next = timeout(PATIENCE, self.client.next_incoming())
                .await
                .unwrap_or_else(|_| panic!("{}: no `{event}` ({id}) within {PATIENCE:?}", self.id));
            match next {
                Incoming::Message(message) if message["id"] == id => {
                    let got = message["event"].as_str().unwrap_or_default();
                    assert!(
                        got == event || got == "error",
                        "wanted `{event}`: {message}"
                    );
                    return message;
                }
                Incoming::Message(message) => self.on_message(message),
                other => panic!(
                    "{}: connection ended waiting for `{event}`: {other:?}",
                    self.id
                ),
            }
        }
    }

    /// Reads whatever comes for `window`.
    async fn listen(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        while let Ok(next) = tokio::time::timeout_at(deadline, self.client.next_incoming()).await {
            match next {
                Incoming::Message(message) => self.on_message(message),
                other => panic!("{}: connection ended while listening: {other:?}", self.id),
            }
        }
    }

    /// Sends up to five relays to peers, then syncs with a ping: after its
    /// pong, every relay without an error was accepted.
    async fn relay_round(&mut self, rng: &mut Rng, round: u64) {
        let peers: Vec<String> = self.peers.iter().cloned().collect();
        if !peers.is_empty() {
            for _ in 0..1 + rng.below(5) {
                let to = peers[rng.below(peers.len() as u64) as usize].clone();
                self.seq += 1;
                let relay = Relay {
                    from: self.id.clone(),
                    to,
                    seq: self.seq,
                };
                let id = format!("r{}", self.seq);
                let event = RELAYS[rng.below(RELAYS.len() as u64) as usize];
                self.client
                    .send_json(relay_message(event, &id, &relay))
                    .await;
                self.pending.insert(id, relay);
            }
        }
        let sync = format!("sync{round}");
        self.client
            .send_json(json!({ "event": "ping", "id": sync }))
            .await;
        let pong = self.until_reply("pong", &sync).await;
        assert_eq!(pong["event"], "pong", "{pong}");
        self.accepted
            .extend(self.pending.drain().map(|(_, relay)| relay));
    }
}

/// One client from connect to gone; what it saw goes into `ledger`.
async fn live(addr: SocketAddr, rng: &mut Rng, ledger: &Mutex<Ledger>) {
    let exit = Exit::pick(rng);
    let mut client = Client::connect_addr(addr).await;
    if exit == Exit::Unauthenticated {
        *ledger.lock().unwrap().lives.entry(exit).or_default() += 1;
        if rng.chance(50) {
            client.close(1000).await;
        } else {
            client.vanish();
        }
        return;
    }
    let user = format!("user{}", rng.below(1000));
    let response = client.auth(json!({ "token": token(&user) })).await;
    assert_eq!(response["success"], true, "{response}");
    if exit == Exit::NoRoom {
        client.assert_open().await;
        client.close(1000).await;
        *ledger.lock().unwrap().lives.entry(exit).or_default() += 1;
        return;
    }

    let id = client.client_id.clone();
    let mut life = Life {
        client,
        id,
        peers: HashSet::new(),
        received: Vec::new(),
        accepted: Vec::new(),
        refused: HashMap::new(),
        pending: HashMap::new(),
        seq: 0,
    };
    let room = format!("soak-{}", rng.below(ROOMS));
    life.client
        .send_json(json!({ "event": "room:join", "id": "join", "data": { "roomId": room } }))
        .await;
    let joined = life.until_reply("room:joined", "join").await;
    let exit = match joined["event"].as_str() {
        Some("room:joined") => exit,
        _ => {
            assert_eq!(joined["data"]["code"], "ROOM_FULL", "{joined}");
            Exit::RoomFull
        }
    };
    if exit != Exit::RoomFull {
        for peer in joined["data"]["peers"].as_array().expect("peers") {
            life.peers
                .insert(peer["clientId"].as_str().expect("peer id").to_owned());
        }
        for round in 0..1 + rng.below(6) {
            life.relay_round(rng, round).await;
            // Let the others' relays come in.
            life.listen(Duration::from_millis(rng.below(100))).await;
        }
    }

    let mut drained = false;
    match exit {
        Exit::LeaveThenClose | Exit::LeaveThenVanish => {
            life.client
                .send_json(json!({ "event": "room:leave", "id": "leave" }))
                .await;
            let left = life.until_reply("room:left", "leave").await;
            assert_eq!(left["event"], "room:left", "{left}");
            drained = true;
            if exit == Exit::LeaveThenClose {
                life.client.close(1000).await;
            } else {
                life.client.vanish();
            }
        }
        Exit::CloseInRoom | Exit::RoomFull => life.client.close(1000).await,
        Exit::VanishInRoom => life.client.vanish(),
        Exit::ResetInRoom => life.client.reset(),
        Exit::Unauthenticated | Exit::NoRoom => unreachable!(),
    }

    let mut ledger = ledger.lock().unwrap();
    *ledger.lives.entry(exit).or_default() += 1;
    ledger.accepted.extend(life.accepted);
    for (code, n) in life.refused {
        *ledger.refused.entry(code).or_default() += n;
    }
    if drained {
        ledger.drained.insert(life.id.clone());
    }
    ledger.received.insert(life.id, life.received);
}

fn soak_secs() -> u64 {
    std::env::var("SWITCHBOARD_SOAK_SECS")
        .map(|s| {
            s.parse()
                .expect("SWITCHBOARD_SOAK_SECS is a number of seconds")
        })
        .unwrap_or(DEFAULT_SECS)
}

fn seed() -> u64 {
    std::env::var("SWITCHBOARD_SOAK_SEED")
        .map(|s| s.parse().expect("SWITCHBOARD_SOAK_SEED is a number"))
        .unwrap_or_else(|_| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64
                | 1
        })
}

/// Checks every relay: each one received was sent to its receiver and not
/// refused, arrived once and in order per sender; each one accepted for a
/// client that drained arrived. Returns (accepted for drained clients,
/// accepted for clients that went from inside their room).
fn check_relays(ledger: &Ledger) -> (usize, usize) {
    let accepted: HashSet<&Relay> = ledger.accepted.iter().collect();
    for (receiver, relays) in &ledger.received {
        let mut seen = HashSet::new();
        let mut last: HashMap<&str, u64> = HashMap::new();
        for relay in relays {
            assert_eq!(&relay.to, receiver);
            assert!(
                accepted.contains(relay),
                "{receiver} received {relay:?}, which its sender never saw accepted"
            );
            assert!(seen.insert(relay), "{receiver} received {relay:?} twice");
            let previous = last.insert(&relay.from, relay.seq).unwrap_or(0);
            assert!(
                relay.seq > previous,
                "{receiver} received {relay:?} after seq {previous} from the same sender"
            );
        }
    }
    let (mut to_drained, mut to_departed) = (0, 0);
    for relay in &ledger.accepted {
        if ledger.drained.contains(&relay.to) {
            let arrived = ledger
                .received
                .get(&relay.to)
                .is_some_and(|got| got.contains(relay));
            assert!(
                arrived,
                "{relay:?} was accepted for a peer that stayed to its room:left, and never arrived"
            );
            to_drained += 1;
        } else {
            to_departed += 1;
        }
    }
    (to_drained, to_departed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_clients_leave_nothing_behind_and_lose_no_relay() {
    let mut server = Server::start(CONFIG).await;
    let admin = server.admin();
    let idle = admin
        .metrics_until("an idle server", SETTLE, |m| {
            m.value("switchboard_connections_current") == 0.0
        })
        .await;
    let tasks_before = idle.value("switchboard_tasks_alive");

    let seed = seed();
    let secs = soak_secs();
    eprintln!("soak: {secs} s, {WORKERS} clients at a time, SWITCHBOARD_SOAK_SEED={seed}");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let end = Instant::now() + Duration::from_secs(secs);
    let addr = server.addr();
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|worker| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let mut rng = Rng(seed.wrapping_mul(2 * worker + 1) | 1);
                while Instant::now() < end {
                    live(addr, &mut rng, &ledger).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a soak client failed");
    }

    assert!(server.is_running(), "the server died during the soak");
    let metrics = admin
        .metrics_until("the server holding nothing of the soak", SETTLE, |m| {
            m.value("switchboard_connections_current") == 0.0
                && m.value("switchboard_rooms") == 0.0
                && m.value("switchboard_outbound_queue_depth") == 0.0
                && m.value("switchboard_sessions_suspended") == 0.0
                && m.value("switchboard_tasks_alive") <= tasks_before
        })
        .await;
    assert_eq!(admin.get_json("/admin/rooms").await, json!({ "rooms": [] }));

    let ledger = ledger.lock().unwrap();
    let (to_drained, to_departed) = check_relays(&ledger);
    let lives: u64 = ledger.lives.values().sum();
    eprintln!(
        "soak: {lives} lives {:?}; relays accepted {} ({to_drained} for peers that stayed, all \
         arrived; {to_departed} for peers that went from their room), refused {:?}; \
         connections_total {}",
        ledger.lives,
        ledger.accepted.len(),
        ledger.refused,
        metrics.value("switchboard_connections_total"),
    );
    // A soak that relayed nothing to a peer that stayed proves nothing.
    assert!(to_drained > 0, "no relay was checked");
    assert!(
        ledger
            .lives
            .get(&Exit::LeaveThenClose)
            .copied()
            .unwrap_or(0)
            > 0
            && ledger.lives.get(&Exit::ResetInRoom).copied().unwrap_or(0) > 0,
        "the soak did not exercise every kind of exit: {:?}",
        ledger.lives
    );
}
