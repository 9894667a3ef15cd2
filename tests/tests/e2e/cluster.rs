//! docs/CLUSTER.md: several `switchboard serve` nodes sharing one Redis
//! (and one `[cluster] prefix`) are, to every client, one server. Rooms
//! span nodes, relays and broadcasts cross them in order, room capacity is
//! exact under a race across nodes, a hot swap on one node reaches all of
//! them, and a node killed with SIGKILL leaves no ghost peers or nodes.
//!
//! Every test has a prefix of its own (`sbtest-<random hex>`), so tests run
//! in parallel on the machine's Redis (127.0.0.1:6379), never mocked,
//! without seeing each other's nodes, rooms or plugins; their keys are
//! deleted when the test ends. Nodes heartbeat every 200 ms on a 1 s lease,
//! so that a death is noticed quickly.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_e2e::chains::{self, from_file};
use switchboard_e2e::{Client, Server, ServerBuilder};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

const CHAT_WASM: &str = env!("CHAT_WASM");
const STAMP_V1_WASM: &str = env!("STAMP_WASM");
const STAMP_V2_WASM: &str = env!("STAMP_V2_WASM");

/// The Redis every machine runs.
const REDIS_ADDR: &str = "127.0.0.1:6379";
const HEARTBEAT_MS: u64 = 200;
const LEASE_MS: u64 = 1000;
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// The harness: a cluster of `Server`s under one fresh prefix.

/// Nodes sharing one Redis and one prefix. Dropping it kills the nodes
/// and, on the shared Redis, deletes every key under the prefix.
struct Cluster {
    redis: SocketAddr,
    prefix: String,
    nodes: Vec<Server>,
    /// Whether to delete the prefix's keys on drop: not for a Redis of the
    /// test's own, which dies with it.
    sweep: bool,
}

impl Cluster {
    /// No nodes yet, on the machine's Redis, under a fresh prefix.
    fn new() -> Cluster {
        let redis = REDIS_ADDR.parse().expect("a socket address");
        Cluster::on(redis, true)
    }

    /// No nodes yet, on the Redis at `redis`, under a fresh prefix.
    fn on(redis: SocketAddr, sweep: bool) -> Cluster {
        // A missing Redis should fail here, saying so, rather than as a
        // node that exits before it listens.
        if let Err(e) = Resp::connect(redis).and_then(|mut r| r.expect_pong()) {
            panic!("the cluster tests need Redis on {redis}: {e}");
        }
        Cluster {
            redis,
            prefix: unique_prefix(),
            nodes: Vec::new(),
            sweep,
        }
    }

    /// `n` nodes named `node-1`..`node-n`, started at once (as a deploy
    /// starts them), each with the config `config` makes of its
    /// `[cluster]` table (a preamble for [`chains`]).
    async fn start(n: usize, mut config: impl FnMut(&str) -> String) -> Cluster {
        let mut cluster = Cluster::new();
        let configs: Vec<String> = (1..=n).map(|k| config(&cluster.table(k))).collect();
        cluster
            .launch(configs.iter().map(|c| Server::builder(c)).collect())
            .await;
        cluster
    }

    /// The `[cluster]` table of node `k` (1-based): this cluster's Redis
    /// and prefix, the node id `node-k`, and the fast heartbeat.
    fn table(&self, k: usize) -> String {
        format!(
            "[cluster]\nredis_url = \"redis://{}\"\nprefix = {:?}\nnode_id = \"node-{k}\"\n\
             heartbeat_ms = {HEARTBEAT_MS}\nlease_ms = {LEASE_MS}\n",
            self.redis, self.prefix
        )
    }

    /// Starts one node per builder, all at once, and adds them in order.
    async fn launch(&mut self, builders: Vec<ServerBuilder>) {
        let started = join_all(builders.into_iter().map(ServerBuilder::start)).await;
        self.nodes.extend(started);
    }

    /// Node `k`, 1-based as the tests name them.
    fn node(&self, k: usize) -> &Server {
        &self.nodes[k - 1]
    }

    fn node_mut(&mut self, k: usize) -> &mut Server {
        &mut self.nodes[k - 1]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.sweep {
            return;
        }
        // The nodes go first (each sends SIGKILL as it drops, printing its
        // log if the test failed), so that none writes after the sweep.
        self.nodes.clear();
        std::thread::sleep(Duration::from_millis(50));
        if let Err(e) = sweep(self.redis, &self.prefix) {
            eprintln!("could not delete the keys under {}: {e}", self.prefix);
        }
    }
}

/// `sbtest-` and 16 random hex digits. Every prefix has the same length,
/// so the sweep's `PREFIX*` matches no other test's keys.
fn unique_prefix() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let random = RandomState::new().hash_one((
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        SystemTime::now(),
    ));
    format!("sbtest-{random:016x}")
}

/// Deletes every key under `prefix` on the Redis at `addr`; returns how
/// many there were.
fn sweep(addr: SocketAddr, prefix: &str) -> io::Result<i64> {
    let mut redis = Resp::connect(addr)?;
    let keys = redis.keys(prefix)?;
    if keys.is_empty() {
        return Ok(0);
    }
    let mut del = vec![b"DEL".to_vec()];
    del.extend(keys);
    match redis.call(&del)? {
        Reply::Integer(deleted) => Ok(deleted),
        other => Err(io::Error::other(format!("DEL answered {other:?}"))),
    }
}

/// A minimal blocking Redis client (RESP2): enough to check that Redis is
/// up, to look at what the nodes wrote, and to sweep a test's keys. The
/// tests crate has no Redis library of its own, and should not share the
/// host's: what the nodes write is checked from outside.
struct Resp {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

#[derive(Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Resp {
    fn connect(addr: SocketAddr) -> io::Result<Resp> {
        let writer = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        writer.set_read_timeout(Some(Duration::from_secs(5)))?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Resp { writer, reader })
    }

    fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            let arg = arg.as_ref();
            request.extend(format!("${}\r\n", arg.len()).as_bytes());
            request.extend(arg);
            request.extend(b"\r\n");
        }
        self.writer.write_all(&request)?;
        match self.read_reply()? {
            Reply::Error(e) => Err(io::Error::other(format!("Redis answered {e}"))),
            reply => Ok(reply),
        }
    }

    fn expect_pong(&mut self) -> io::Result<()> {
        match self.call(&["PING"])? {
            Reply::Simple(pong) if pong == "PONG" => Ok(()),
            other => Err(io::Error::other(format!("PING answered {other:?}"))),
        }
    }

    /// Every key that starts with `prefix` (`SCAN` to the end).
    fn keys(&mut self, prefix: &str) -> io::Result<Vec<Vec<u8>>> {
        let pattern = format!("{prefix}*");
        let mut cursor = b"0".to_vec();
        let mut keys = Vec::new();
        loop {
            let reply = self.call(&[
                b"SCAN".as_slice(),
                &cursor,
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                b"1000",
            ])?;
            let Reply::Array(Some(mut parts)) = reply else {
                return Err(io::Error::other(format!("SCAN answered {reply:?}")));
            };
            let (Some(Reply::Array(Some(batch))), Some(Reply::Bulk(Some(next))), None) =
                (parts.pop(), parts.pop(), parts.pop())
            else {
                return Err(io::Error::other("SCAN answered a malformed array"));
            };
            keys.extend(batch.into_iter().filter_map(|key| match key {
                Reply::Bulk(Some(key)) => Some(key),
                _ => None,
            }));
            if next == b"0" {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line
            .strip_suffix("\r\n")
            .ok_or_else(|| io::Error::other(format!("truncated reply {line:?}")))?;
        let (kind, rest) = line.split_at_checked(1).unwrap_or(("", ""));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| io::Error::other(format!("bad length in {line:?}")))
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Integer(number()?),
            "$" => match usize::try_from(number()?) {
                Err(_) => Reply::Bulk(None),
                Ok(len) => {
                    let mut bulk = vec![0; len + 2];
                    self.reader.read_exact(&mut bulk)?;
                    bulk.truncate(len);
                    Reply::Bulk(Some(bulk))
                }
            },
            "*" => match usize::try_from(number()?) {
                Err(_) => Reply::Array(None),
                Ok(len) => Reply::Array(Some(
                    (0..len)
                        .map(|_| self.read_reply())
                        .collect::<io::Result<_>>()?,
                )),
            },
            _ => return Err(io::Error::other(format!("unknown reply {line:?}"))),
        })
    }
}

/// A `redis-server` of the test's own on a free port, for the test that
/// must show which Redis the nodes use. Killed when dropped.
struct OwnRedis {
    addr: SocketAddr,
    _child: Child,
    _dir: TempDir,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("find a free port")
            .port();
        let dir = tempfile::tempdir().expect("redis dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn redis-server: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = Resp::connect(addr).and_then(|mut r| r.expect_pong()) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {addr} not answering within 5 s: {e}"
            );
            sleep(Duration::from_millis(20)).await;
        }
        OwnRedis {
            addr,
            _child: child,
            _dir: dir,
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers.

/// The `Peer` a client joined as, without metadata.
fn peer(client: &Client, user: &str) -> Value {
    json!({ "clientId": client.client_id, "userId": user, "metadata": {} })
}

/// The ids in a node's `GET /admin/nodes` (`{"nodes": [{"id", ...}]}`),
/// each listed once.
async fn live_nodes(node: &Server) -> BTreeSet<String> {
    let body = node.admin().get_json("/admin/nodes").await;
    let listed = body["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /admin/nodes without a `nodes` array: {body}"));
    let ids: Vec<&str> = listed
        .iter()
        .map(|n| {
            n["id"]
                .as_str()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| panic!("a node without a string `id`: {body}"))
        })
        .collect();
    let set: BTreeSet<String> = ids.iter().map(|id| id.to_string()).collect();
    assert_eq!(set.len(), ids.len(), "a node listed twice: {body}");
    set
}

/// Polls node's `GET /admin/nodes` until it lists exactly `n` nodes (and
/// `expected`, if given); fails after `limit`. Returns the ids.
async fn wait_for_nodes(
    node: &Server,
    n: usize,
    expected: Option<&BTreeSet<String>>,
    limit: Duration,
) -> BTreeSet<String> {
    let deadline = Instant::now() + limit;
    loop {
        let ids = live_nodes(node).await;
        if ids.len() == n && expected.is_none_or(|e| *e == ids) {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{} does not list {} within {limit:?}; it lists {ids:?}",
            node.admin_addr(),
            expected.map_or_else(|| format!("{n} nodes"), |e| format!("{e:?}")),
        );
        sleep(Duration::from_millis(50)).await;
    }
}

fn node_ids(ks: &[usize]) -> BTreeSet<String> {
    ks.iter().map(|k| format!("node-{k}")).collect()
}

fn sdp_offer(to: &Client, id: &str, sdp: &str) -> Value {
    json!({ "event": "sdp:offer", "id": id, "data": { "to": to.client_id, "sdp": sdp } })
}

// ---------------------------------------------------------------------------
// Rooms, relays and broadcasts across nodes.

/// The whole life of a room whose three members are on three nodes, as
/// PROTOCOL.md's "Rooms", "Signaling relay" and "Custom events" tell it on
/// one server.
#[tokio::test]
async fn a_room_spans_three_nodes() {
    // The default chain has no chat; `chat` is added from its build.
    let cluster = Cluster::start(3, |table| {
        chains::with_extra(table, &[from_file("chat", CHAT_WASM)])
    })
    .await;
    let mut a = Client::authed(cluster.node(1), "alice").await;
    let mut b = Client::authed(cluster.node(2), "bob").await;
    let mut c = Client::authed(cluster.node(3), "carol").await;
    let ids = BTreeSet::from([&a.client_id, &b.client_id, &c.client_id]);
    assert_eq!(ids.len(), 3, "client ids collide across nodes: {ids:?}");

    // Each joiner sees the earlier members, oldest first, whatever node
    // they are on; the earlier members hear of it.
    assert_eq!(
        a.join("r").await,
        json!({ "roomId": "r", "peers": [], "self": peer(&a, "alice") })
    );
    assert_eq!(
        b.join("r").await,
        json!({ "roomId": "r", "peers": [peer(&a, "alice")], "self": peer(&b, "bob") })
    );
    assert_eq!(
        a.expect_event("room:peer-joined").await,
        json!({ "roomId": "r", "peer": peer(&b, "bob") })
    );
    assert_eq!(
        c.join("r").await,
        json!({
            "roomId": "r",
            "peers": [peer(&a, "alice"), peer(&b, "bob")],
            "self": peer(&c, "carol"),
        })
    );
    let carol = json!({ "roomId": "r", "peer": peer(&c, "carol") });
    assert_eq!(a.expect_event("room:peer-joined").await, carol);
    assert_eq!(b.expect_event("room:peer-joined").await, carol);

    // A relay from node 1 to node 3: `to` becomes `from`.
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n";
    a.send_json(sdp_offer(&c, "o1", sdp)).await;
    assert_eq!(
        c.expect_event("sdp:offer").await,
        json!({ "from": a.client_id, "sdp": sdp })
    );

    // A plugin's broadcast from node 2 reaches nodes 1 and 3, not its sender.
    b.send_json(json!({ "event": "chat:message", "id": "m1", "data": { "text": "hi from 2" } }))
        .await;
    let said = json!({ "from": b.client_id, "text": "hi from 2" });
    assert_eq!(a.expect_event("chat:message").await, said);
    assert_eq!(c.expect_event("chat:message").await, said);

    // Leaving on node 3 tells nodes 1 and 2, with reason `left`.
    c.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    assert_eq!(
        c.expect_reply("room:left", "l").await,
        json!({ "roomId": "r" })
    );
    let left = json!({ "roomId": "r", "clientId": c.client_id, "reason": "left" });
    assert_eq!(a.expect_event("room:peer-left").await, left);
    assert_eq!(b.expect_event("room:peer-left").await, left);
    b.send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    assert_eq!(
        b.expect_reply("room:state", "s").await,
        json!({ "roomId": "r", "peers": [peer(&a, "alice")] })
    );

    // A relay to the one who left is PEER_NOT_FOUND, as on one node
    // (signaling.rs, relay_to_peer_that_left_is_peer_not_found): the
    // sender is in a room and the target is not in it, and the signaling
    // plugin answers NOT_IN_ROOM only when the sender is in no room
    // (PROTOCOL.md: "target unknown or in another room").
    a.send_json(sdp_offer(&c, "x", "v=0")).await;
    a.expect_error("PEER_NOT_FOUND", Some("x"), Some("sdp:offer"))
        .await;

    // Nothing else anywhere: no echo to a sender, nothing twice.
    a.expect_silence(QUIET).await;
    b.expect_silence(Duration::ZERO).await;
    c.expect_silence(Duration::ZERO).await;
}

/// `rooms` capacity is decided on one node for the whole room
/// (CLUSTER.md: joins of one room are decided one after the other on its
/// owner), so a race of joins from three nodes lets exactly `capacity` in.
#[tokio::test]
async fn capacity_is_exact_under_a_race_across_nodes() {
    const CAPACITY: usize = 16;
    const CONTENDERS: usize = 40;
    let cluster = Cluster::start(3, |table| chains::rooms_capped(table, CAPACITY)).await;
    let mut clients = Vec::new();
    let mut users = HashMap::new();
    for i in 0..CONTENDERS {
        let user = format!("user-{i}");
        let client = Client::authed(cluster.node(i % 3 + 1), &user).await;
        users.insert(client.client_id.clone(), user);
        clients.push(client);
    }

    // Every join is on the wire before any answer is read.
    for client in &mut clients {
        client
            .send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "crowded" } }))
            .await;
    }
    // A client is a member only once its own join is decided, so the
    // first thing each gets is its answer.
    let mut admitted = Vec::new();
    let mut refused = 0;
    for (i, client) in clients.iter_mut().enumerate() {
        let answer = client.recv().await;
        assert_eq!(answer["id"], "j", "contender {i}: {answer}");
        match answer["event"].as_str() {
            Some("room:joined") => {
                let joined = answer["data"].clone();
                assert_eq!(joined["roomId"], "crowded", "contender {i}: {answer}");
                assert_eq!(
                    joined["self"],
                    peer(client, &users[&client.client_id]),
                    "contender {i}: {answer}"
                );
                admitted.push((i, joined));
            }
            Some("error") => {
                let data = &answer["data"];
                assert_eq!(data["code"], "ROOM_FULL", "contender {i}: {answer}");
                assert_eq!(data["event"], "room:join", "contender {i}: {answer}");
                refused += 1;
            }
            _ => panic!("contender {i} got neither room:joined nor an error: {answer}"),
        }
    }
    assert_eq!(
        (admitted.len(), refused),
        (CAPACITY, CONTENDERS - CAPACITY),
        "room:joined and ROOM_FULL answers"
    );

    // One order of joins for the whole cluster: the k-th member admitted
    // saw exactly the k before it, oldest first, with their user ids.
    let mut admitted: Vec<(usize, Vec<String>)> = admitted
        .into_iter()
        .map(|(i, joined)| {
            let peers = joined["peers"]
                .as_array()
                .unwrap_or_else(|| panic!("contender {i}: peers is not an array: {joined}"))
                .iter()
                .map(|p| {
                    let id = p["clientId"].as_str().unwrap_or_default().to_owned();
                    assert_eq!(
                        *p,
                        json!({ "clientId": id, "userId": users.get(&id), "metadata": {} }),
                        "contender {i}: a peer that is not one of the contenders"
                    );
                    id
                })
                .collect();
            (i, peers)
        })
        .collect();
    admitted.sort_by_key(|(_, peers)| peers.len());
    let (last, before_last) = admitted.last().expect("someone was admitted");
    let mut order = before_last.clone();
    order.push(clients[*last].client_id.clone());
    for (k, (i, peers)) in admitted.iter().enumerate() {
        assert_eq!(
            peers,
            &order[..k],
            "contender {i} is not the {k}-th of one order of joins"
        );
        assert_eq!(order[k], clients[*i].client_id);
    }

    // And each member hears of every later one, in that order.
    for (k, (i, _)) in admitted.iter().enumerate() {
        for later in &order[k + 1..] {
            let joined = clients[*i].expect_event("room:peer-joined").await;
            assert_eq!(
                joined["peer"]["clientId"],
                later.as_str(),
                "contender {i}: peer-joined out of the order of joins"
            );
        }
    }
    // Nothing more for anyone, members or not.
    sleep(QUIET).await;
    for client in &mut clients {
        client.expect_silence(Duration::ZERO).await;
    }
}

/// PROTOCOL.md, "Signaling relay": messages from one sender to one target
/// arrive in the order sent, and a relay the server has read is delivered
/// before the sender's `room:peer-left`, here with sender and target on
/// two nodes.
///
/// The sender leaves with a clean close (1000), not a vanish or a reset:
/// the close frame follows the last relay on the same socket, so the node
/// has read all 300 before it sees the close, and the session ends at once
/// (`peer-left` with reason `disconnected`, no resume grace to wait out).
/// An abrupt drop proves less: a TCP reset may discard relays the node had
/// not read yet, which the protocol does not promise to deliver, and the
/// `peer-left` would come only after the grace period.
#[tokio::test]
async fn relays_across_nodes_arrive_in_order_and_before_peer_left() {
    const RELAYS: usize = 300;
    // 300 messages at once are over the default burst of 200.
    const UNLIMITED: &str = "[limits]\nrate_per_sec = 100000\nrate_burst = 100000\n";
    let cluster = Cluster::start(2, |table| {
        chains::with_extra(&format!("{table}{UNLIMITED}"), &[])
    })
    .await;
    let mut a = Client::joined(cluster.node(1), "alice", "r").await;
    let mut b = Client::joined(cluster.node(2), "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    let a_id = a.client_id.clone();

    let candidate = |i: usize| format!("candidate:{i} 1 udp 2122260223 192.0.2.1 {i} typ host");
    for i in 0..RELAYS {
        a.send_json(json!({
            "event": "ice:candidate",
            "data": { "to": b.client_id, "candidate": { "candidate": candidate(i) } },
        }))
        .await;
    }
    a.close(1000).await;

    for i in 0..RELAYS {
        let got = b.recv().await;
        assert_eq!(
            got,
            json!({
                "event": "ice:candidate",
                "data": { "from": a_id, "candidate": { "candidate": candidate(i) } },
            }),
            "relay #{i} of {RELAYS} missing, out of order or not relayed as sent"
        );
    }
    assert_eq!(
        b.expect_event("room:peer-left").await,
        json!({ "roomId": "r", "clientId": a_id, "reason": "disconnected" })
    );
    b.expect_silence(QUIET).await;
}

// ---------------------------------------------------------------------------
// Hot swap (the plugin and bytes of hot_swap.rs: `stamp` 1.0.0, then 2.0.0).

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `stamp` entry of a node's `GET /admin/plugins`.
async fn listed_stamp(node: &Server) -> Value {
    let listing = node.admin().get_json("/admin/plugins").await;
    listing["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugins array: {listing}"))
        .iter()
        .find(|p| p["name"] == "stamp")
        .unwrap_or_else(|| panic!("stamp not listed: {listing}"))
        .clone()
}

/// The chain auth-jwt, rooms, stamp 1.0.0 (from its build), signaling,
/// compiling into `cache`.
fn stamp_config(table: &str, cache: &Path) -> String {
    let preamble = format!(
        "{table}[plugin_cache]\ndir = {:?}\n",
        cache.display().to_string()
    );
    chains::with_extra(&preamble, &[from_file("stamp", STAMP_V1_WASM)])
}

/// `stamp:msg` from `a` to `b`, who are in one room; returns the version
/// that stamped it (`a` for 1.0.0, `b` for 2.0.0).
async fn stamped_by(a: &mut Client, b: &mut Client) -> String {
    a.send_json(json!({ "event": "stamp:msg", "data": { "to": b.client_id, "seq": 1 } }))
        .await;
    let got = b.expect_event("stamp:msg").await;
    assert_eq!(got["from"], a.client_id.as_str(), "{got}");
    got["version"]
        .as_str()
        .unwrap_or_else(|| panic!("version is not a string: {got}"))
        .to_owned()
}

/// Two clients on `first` and `second`, in `room`.
async fn pair_across(first: &Server, second: &Server, room: &str) -> (Client, Client) {
    let mut a = Client::joined(first, "alice", room).await;
    let b = Client::joined(second, "bob", room).await;
    a.expect_event("room:peer-joined").await;
    (a, b)
}

/// A swap through node 2's admin API is live on every node within a
/// second of node 2's answer, and a node that starts later loads the
/// swapped version, not its config's.
///
/// The bound is on propagation: the clock starts at node 2's answer, by
/// which node 2 has compiled the new version, and the nodes share one
/// compile cache (the test's own, cold at the start), so the others find
/// that compilation rather than each compile it again. Compiling is what
/// the hot_swap.rs tests are about; here, with a cache per node, two nodes
/// compiling at once on a 2-core machine under the parallel suite's load
/// take from 0.5 s to over 1 s, which would time the machine, not the
/// cluster.
#[tokio::test]
async fn a_hot_swap_reaches_every_node_within_a_second() {
    const PROPAGATION: Duration = Duration::from_secs(1);
    let v1 = std::fs::read(STAMP_V1_WASM).expect("read stamp 1.0.0");
    let v2 = std::fs::read(STAMP_V2_WASM).expect("read stamp 2.0.0");
    let (v1_hash, v2_hash) = (sha256_hex(&v1), sha256_hex(&v2));

    let cache = tempfile::tempdir().expect("cache dir");
    let mut cluster = Cluster::start(3, |table| stamp_config(table, cache.path())).await;
    for k in 1..=3 {
        let stamp = listed_stamp(cluster.node(k)).await;
        assert_eq!(stamp["hash"], v1_hash.as_str(), "node {k} before: {stamp}");
    }

    let asked = Instant::now();
    let response = cluster
        .node(2)
        .admin()
        .put("/admin/plugins/stamp", &v2)
        .await;
    let answered = Instant::now();
    assert_eq!(response.status, 200, "swap on node 2: {response}");
    assert_eq!(response.json()["hash"], v2_hash.as_str(), "{response}");

    // When each node first lists the new hash, after node 2's answer.
    let mut live_after: Vec<Option<Duration>> = vec![None; 3];
    let deadline = answered + Duration::from_secs(10);
    while live_after.iter().any(Option::is_none) {
        for (k, seen) in live_after.iter_mut().enumerate() {
            if seen.is_none() && listed_stamp(cluster.node(k + 1)).await["hash"] == v2_hash {
                *seen = Some(answered.elapsed());
            }
        }
        assert!(
            Instant::now() < deadline,
            "not every node lists the swapped stamp 10 s after the swap: {live_after:?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
    let slowest = live_after
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_default();
    assert!(
        slowest < PROPAGATION,
        "the swap took {slowest:?} to reach every node (nodes 1..3: {live_after:?}; \
         node 2's own PUT took {:?})",
        answered - asked
    );
    for k in 1..=3 {
        let stamp = listed_stamp(cluster.node(k)).await;
        assert_eq!(stamp["version"], "2.0.0", "node {k}: {stamp}");
    }
    // And it is the version that runs, for a room across nodes 1 and 3.
    let (mut a, mut b) = pair_across(cluster.node(1), cluster.node(3), "r").await;
    assert_eq!(stamped_by(&mut a, &mut b).await, "b");

    // A fourth node, whose config names stamp 1.0.0, joins with 2.0.0.
    let config = stamp_config(&cluster.table(4), cache.path());
    cluster.launch(vec![Server::builder(&config)]).await;
    let stamp = listed_stamp(cluster.node(4)).await;
    assert_eq!(
        (&stamp["hash"], &stamp["version"]),
        (&json!(v2_hash), &json!("2.0.0")),
        "node 4, started after the swap, lists {stamp}"
    );
    let (mut c, mut d) = pair_across(cluster.node(4), cluster.node(1), "r4").await;
    assert_eq!(stamped_by(&mut c, &mut d).await, "b");
    assert_eq!(stamped_by(&mut d, &mut c).await, "b");
}

// ---------------------------------------------------------------------------
// Node death and the node directory.

/// A node killed with SIGKILL says goodbye to no one: its clients' peers
/// on the surviving nodes get `room:peer-left` (reason `disconnected`)
/// once its lease is over, the survivors stop listing it, and the room
/// lives on among the survivors.
///
/// CLUSTER.md makes the dead node's clients suspended sessions that end no
/// later than lease + resume grace after the death; the grace is set to
/// 300 ms here, so that the bound this test holds the cluster to, lease +
/// 3 s, leaves room for either reading.
#[tokio::test]
async fn a_killed_node_leaves_no_ghosts() {
    const GRACE: &str = "[session]\nresume_grace_ms = 300\n";
    let bound = Duration::from_millis(LEASE_MS) + Duration::from_secs(3);
    let mut cluster = Cluster::start(3, |table| {
        chains::with_extra(&format!("{table}{GRACE}"), &[])
    })
    .await;
    // Carol, on node 3, joins first: if the first joiner's node claims the
    // room, the node that dies owns it and a survivor must take it over.
    let mut c = Client::joined(cluster.node(3), "carol", "r").await;
    let mut a = Client::joined(cluster.node(1), "alice", "r").await;
    c.expect_event("room:peer-joined").await;
    let mut b = Client::joined(cluster.node(2), "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    c.expect_event("room:peer-joined").await;
    wait_for_nodes(cluster.node(1), 3, Some(&node_ids(&[1, 2, 3])), bound).await;
    let c_id = c.client_id.clone();

    cluster.node_mut(3).kill9().await;
    let died = Instant::now();
    let left = json!({ "roomId": "r", "clientId": c_id, "reason": "disconnected" });
    for (who, client) in [("alice (node 1)", &mut a), ("bob (node 2)", &mut b)] {
        let limit = bound.saturating_sub(died.elapsed());
        let message = client.recv_within(limit).await;
        assert_eq!(
            message,
            json!({ "event": "room:peer-left", "data": left }),
            "{who}, after node 3 was killed"
        );
    }
    drop(c);

    for k in [1, 2] {
        let limit = bound.saturating_sub(died.elapsed());
        wait_for_nodes(cluster.node(k), 2, Some(&node_ids(&[1, 2])), limit).await;
    }

    // The room is the two survivors, oldest first, and works.
    let mut d = Client::authed(cluster.node(1), "dave").await;
    assert_eq!(
        d.join("r").await,
        json!({
            "roomId": "r",
            "peers": [peer(&a, "alice"), peer(&b, "bob")],
            "self": peer(&d, "dave"),
        })
    );
    let dave = json!({ "roomId": "r", "peer": peer(&d, "dave") });
    assert_eq!(a.expect_event("room:peer-joined").await, dave);
    assert_eq!(b.expect_event("room:peer-joined").await, dave);
    a.send_json(sdp_offer(&b, "o", "v=0 after the death")).await;
    assert_eq!(
        b.expect_event("sdp:offer").await,
        json!({ "from": a.client_id, "sdp": "v=0 after the death" })
    );
    // A relay to the dead node's client is refused as for any non-member.
    a.send_json(json!({ "event": "sdp:offer", "id": "x", "data": { "to": c_id, "sdp": "v=0" } }))
        .await;
    a.expect_error("PEER_NOT_FOUND", Some("x"), Some("sdp:offer"))
        .await;
    a.expect_silence(QUIET).await;
    b.expect_silence(Duration::ZERO).await;
    d.expect_silence(Duration::ZERO).await;
}

/// `GET /admin/nodes` on any node lists every live node, the same on all
/// of them, and keeps listing them while their heartbeats go on (for
/// longer than a lease).
///
/// The nodes use a `redis-server` of this test's own, named only by the
/// `--redis` flag (their `[cluster]` table has no `redis_url`, and no
/// `node_id`: the ids are the nodes' own random ones). That they wrote to
/// it, and nothing under the prefix reached the machine's Redis, shows the
/// flag is what chose the Redis.
#[tokio::test]
async fn nodes_lists_every_live_node() {
    let redis = OwnRedis::start().await;
    let mut cluster = Cluster::on(redis.addr, false);
    let table = format!(
        "[cluster]\nprefix = {:?}\nheartbeat_ms = {HEARTBEAT_MS}\nlease_ms = {LEASE_MS}\n",
        cluster.prefix
    );
    let url = format!("redis://{}", redis.addr);
    let builders = (0..3)
        .map(|_| Server::builder(&table).arg("--redis").arg(&url))
        .collect();
    cluster.launch(builders).await;

    let limit = Duration::from_millis(2 * LEASE_MS);
    let ids = wait_for_nodes(cluster.node(1), 3, None, limit).await;
    for k in [2, 3] {
        wait_for_nodes(cluster.node(k), 3, Some(&ids), limit).await;
    }
    let hold = Instant::now() + Duration::from_millis(LEASE_MS * 3 / 2);
    while Instant::now() < hold {
        for k in 1..=3 {
            assert_eq!(
                live_nodes(cluster.node(k)).await,
                ids,
                "node {k} changed its listing while every node was alive"
            );
        }
        sleep(Duration::from_millis(100)).await;
    }

    let mut own = Resp::connect(redis.addr).expect("connect to the test's redis-server");
    let written = own
        .keys(&cluster.prefix)
        .expect("SCAN the test's redis-server");
    assert!(
        !written.is_empty(),
        "the nodes wrote nothing under {} to the Redis --redis named",
        cluster.prefix
    );
    let shared = REDIS_ADDR.parse().expect("a socket address");
    let mut machine = Resp::connect(shared).expect("connect to the machine's Redis");
    let stray = machine
        .keys(&cluster.prefix)
        .expect("SCAN the machine's Redis");
    assert!(
        stray.is_empty(),
        "{} keys under {} on {REDIS_ADDR}, which --redis did not name",
        stray.len(),
        cluster.prefix
    );
}
