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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use switchboard_e2e::soak::{Life, Relays, Rng};
use switchboard_e2e::token::token;
use switchboard_e2e::{Client, Server};
use tokio::time::Instant;

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

/// What every client did, merged at the end of each life.
#[derive(Default)]
struct Ledger {
    lives: HashMap<Exit, u64>,
    relays: Relays,
}

/// Why the server may refuse a relay: the target left after the sender
/// last heard of it, or the sender's room is gone.
const REFUSALS: &[&str] = &["PEER_NOT_FOUND", "NOT_IN_ROOM"];

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

    let mut life = Life::new(client, REFUSALS, PATIENCE);
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
            // A ping's pong comes back behind the relays' errors.
            let peers: Vec<String> = life.peers.iter().cloned().collect();
            life.relay_round(rng, round, &peers, ("ping", "pong")).await;
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
    ledger
        .relays
        .add(life.id, life.accepted, life.refused, life.received, drained);
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
    let (to_drained, to_departed) = ledger.relays.check();
    let (to_drained, to_departed) = (to_drained.len(), to_departed.len());
    let lives: u64 = ledger.lives.values().sum();
    eprintln!(
        "soak: {lives} lives {:?}; relays accepted {} ({to_drained} for peers that stayed, all \
         arrived; {to_departed} for peers that went from their room), refused {:?}; \
         connections_total {}",
        ledger.lives,
        ledger.relays.accepted.len(),
        ledger.relays.refused,
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
