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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use serde_json::{Value, json};
use switchboard_e2e::admin::Response;
use switchboard_e2e::chains::{self, from_file};
use switchboard_e2e::http::{status_of, upgrade_request};
use switchboard_e2e::soak::{Life, Relays, Rng};
use switchboard_e2e::swap_load::{Build, Handshake, SWAPS, Shape, listed_stamp, sha256_hex};
use switchboard_e2e::{Admin, Client, Incoming, RECV_TIMEOUT, Server, ServerBuilder, max_rooms};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

const CHAT_WASM: &str = env!("CHAT_WASM");
const STAMP_V1_WASM: &str = env!("STAMP_WASM");
const STAMP_V2_WASM: &str = env!("STAMP_V2_WASM");
const STAMP_FLAKY_WASM: &str = env!("STAMP_FLAKY_WASM");

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
    async fn start(n: usize, config: impl FnMut(&str) -> String) -> Cluster {
        Cluster::new().with_nodes(n, config).await
    }

    /// This cluster (with no nodes yet) with `n` nodes, as
    /// [`Cluster::start`] makes them.
    async fn with_nodes(mut self, n: usize, mut config: impl FnMut(&str) -> String) -> Cluster {
        let configs: Vec<String> = (1..=n).map(|k| config(&self.table(k))).collect();
        self.launch(configs.iter().map(|c| Server::builder(c)).collect())
            .await;
        self
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

    /// `DELETE /admin/clients/{id}` on node `asked`, again on 404 for up to
    /// half a second. A node enters its clients in the cluster's directory
    /// from its bus task, a moment after they connect (docs/CLUSTER.md):
    /// with the whole suite running, a DELETE on another node right after
    /// a client's auth once came before its entry. Half a second is well
    /// before a new node's peers learn of it (up to 2 s), and a kick does
    /// not ask them.
    async fn kick(&self, asked: usize, client_id: &str) -> Response {
        let path = format!("/admin/clients/{client_id}");
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let response = self.node(asked).admin().delete(&path).await;
            if response.status != 404 || Instant::now() >= deadline {
                return response;
            }
            sleep(Duration::from_millis(20)).await;
        }
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

/// A `redis-server` of the test's own on a free port, for the tests that
/// must show which Redis the nodes use, or must stop and restart it.
/// Killed when dropped.
struct OwnRedis {
    addr: SocketAddr,
    /// `None` while stopped.
    child: Option<Child>,
    dir: TempDir,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("find a free port")
            .port();
        let mut redis = OwnRedis {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            dir: tempfile::tempdir().expect("redis dir"),
        };
        redis.spawn().await;
        redis
    }

    /// Starts `redis-server` on this Redis's port, empty (it keeps nothing
    /// on disk), and waits until it answers `PING`.
    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server is running already");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn redis-server: {e}"));
        self.child = Some(child);
        let addr = self.addr;
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = Resp::connect(addr).and_then(|mut r| r.expect_pong()) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {addr} not answering within 5 s: {e}"
            );
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash: everything it held is gone. Returns once the
    /// process has been reaped and the port refuses connections.
    async fn kill(&mut self) {
        let mut child = self.child.take().expect("redis-server is running");
        child.start_kill().expect("kill redis-server");
        timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("redis-server reaped within 5 s")
            .expect("wait for redis-server");
        assert!(
            TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err(),
            "{} still accepts connections after redis-server was killed",
            self.addr
        );
    }

    /// A new, empty `redis-server` on the same port, after [`OwnRedis::kill`].
    async fn restart(&mut self) {
        self.spawn().await;
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

/// `limits.max_rooms` counts the cluster's rooms, not one node's (the
/// claim script checks it): with room for two, a third room opened from a
/// third node is `ROOM_FULL`, joining an open room from any node still
/// works, and a room that ends frees its place cluster-wide.
#[tokio::test]
async fn max_rooms_holds_across_nodes() {
    let cluster = Cluster::start(3, |table| {
        chains::with_extra(&format!("{table}[limits]\nmax_rooms = 2\n"), &[])
    })
    .await;
    let nodes = [cluster.node(1), cluster.node(2), cluster.node(3)];
    let (_b, mut c) = max_rooms::fill_then_free_one(nodes).await;
    // The close reaches Redis through the owner's bus, after the answers.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.send_json(json!({ "event": "room:join", "id": "k", "data": { "roomId": "three" } }))
            .await;
        let answer = c.recv().await;
        if answer["event"] == "room:joined" {
            break;
        }
        assert_eq!(answer["data"]["code"], "ROOM_FULL", "{answer}");
        assert!(
            Instant::now() < deadline,
            "room `one` never freed its place"
        );
        sleep(Duration::from_millis(50)).await;
    }
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
        let stamp = listed_stamp(&cluster.node(k).admin()).await;
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
            if seen.is_none() && listed_stamp(&cluster.node(k + 1).admin()).await["hash"] == v2_hash
            {
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
        let stamp = listed_stamp(&cluster.node(k).admin()).await;
        assert_eq!(stamp["version"], "2.0.0", "node {k}: {stamp}");
    }
    // And it is the version that runs, for a room across nodes 1 and 3.
    let (mut a, mut b) = pair_across(cluster.node(1), cluster.node(3), "r").await;
    assert_eq!(stamped_by(&mut a, &mut b).await, "b");

    // A fourth node, whose config names stamp 1.0.0, joins with 2.0.0.
    let config = stamp_config(&cluster.table(4), cache.path());
    cluster.launch(vec![Server::builder(&config)]).await;
    let stamp = listed_stamp(&cluster.node(4).admin()).await;
    assert_eq!(
        (&stamp["hash"], &stamp["version"]),
        (&json!(v2_hash), &json!("2.0.0")),
        "node 4, started after the swap, lists {stamp}"
    );
    let (mut c, mut d) = pair_across(cluster.node(4), cluster.node(1), "r4").await;
    assert_eq!(stamped_by(&mut c, &mut d).await, "b");
    assert_eq!(stamped_by(&mut d, &mut c).await, "b");
}

/// `path` on `node`'s admin API until `done` holds of it, for at most 10 s
/// (`what` says what was awaited); returns the last answer.
async fn admin_until(
    node: &Server,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = node.admin().get_json(path).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 10 s: {answer}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// Uploads `bytes` as a version of `stamp` through `admin`, expecting 201.
async fn upload_stamp(admin: &Admin, bytes: &[u8]) {
    let uploaded = admin
        .request("POST", "/admin/plugins/stamp/versions", bytes)
        .await;
    assert_eq!(uploaded.status, 201, "{uploaded}");
}

/// `GET path` on `node`'s admin API until it answers `status`, for at most
/// 10 s (`what` says what was awaited); returns that answer.
async fn status_until(node: &Server, path: &str, status: u16, what: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = node.admin().get(path).await;
        if answer.status == status {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 10 s: {answer}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a rollout answer shows the canary `hash` (`None`: no canary).
fn canary_is(rollout: &Value, hash: Option<&str>) -> bool {
    match hash {
        Some(hash) => rollout["canary"]["hash"] == hash,
        None => rollout["canary"].is_null(),
    }
}

/// A canary set on one node runs on every node (each owns some rooms,
/// and decides them as the others would); aborted on another node, it
/// ends everywhere, and rooms go back to stable; a node that starts later
/// takes the canary up before it serves; a promote reaches every node as
/// a hot swap does, and a node that starts after it loads the promoted
/// version.
#[tokio::test]
async fn a_canary_set_aborted_or_promoted_on_one_node_holds_on_every_node() {
    let v2 = std::fs::read(STAMP_V2_WASM).expect("read stamp 2.0.0");
    let v2_hash = sha256_hex(&v2);
    let cache = tempfile::tempdir().expect("cache dir");
    let mut cluster = Cluster::start(2, |table| stamp_config(table, cache.path())).await;
    let admin = cluster.node(1).admin();
    upload_stamp(&admin, &v2).await;
    let policy = json!({ "canary": v2_hash, "percent": 100 }).to_string();
    let set = admin
        .put("/admin/plugins/stamp/rollout", policy.as_bytes())
        .await;
    assert_eq!(set.status, 200, "{set}");
    let rollout = "/admin/plugins/stamp/rollout";
    let on_2 = admin_until(cluster.node(2), rollout, "node 2 runs the canary", |r| {
        canary_is(r, Some(&v2_hash))
    })
    .await;
    assert_eq!(on_2["canary"]["percent"], 100, "{on_2}");

    // Node 1 owns the first room (its first member joined there), node 2
    // the second: both open on the canary.
    let (mut a, mut b) = pair_across(cluster.node(1), cluster.node(2), "on-1").await;
    assert_eq!(stamped_by(&mut a, &mut b).await, "b");
    let (mut c, mut d) = pair_across(cluster.node(2), cluster.node(1), "on-2").await;
    assert_eq!(stamped_by(&mut c, &mut d).await, "b");

    let aborted = cluster
        .node(2)
        .admin()
        .post("/admin/plugins/stamp/abort")
        .await;
    assert_eq!(aborted.status, 200, "{aborted}");
    admin_until(cluster.node(1), rollout, "node 1 ends the canary", |r| {
        canary_is(r, None)
    })
    .await;
    assert_eq!(stamped_by(&mut a, &mut b).await, "a");
    assert_eq!(stamped_by(&mut c, &mut d).await, "a");

    // Set again, for rooms opening from now on: a node starting later
    // has it before it serves.
    let set = admin
        .put("/admin/plugins/stamp/rollout", policy.as_bytes())
        .await;
    assert_eq!(set.status, 200, "{set}");
    admin_until(
        cluster.node(2),
        rollout,
        "node 2 runs the canary again",
        |r| canary_is(r, Some(&v2_hash)),
    )
    .await;
    let config = stamp_config(&cluster.table(3), cache.path());
    cluster.launch(vec![Server::builder(&config)]).await;
    let on_3 = cluster.node(3).admin().get_json(rollout).await;
    assert!(canary_is(&on_3, Some(&v2_hash)), "node 3: {on_3}");
    let (mut e, mut f) = pair_across(cluster.node(3), cluster.node(1), "on-3").await;
    assert_eq!(stamped_by(&mut e, &mut f).await, "b");
    assert_eq!(
        stamped_by(&mut a, &mut b).await,
        "a",
        "pinned before the canary"
    );

    let promoted = admin.post("/admin/plugins/stamp/promote").await;
    assert_eq!(promoted.status, 200, "{promoted}");
    for node in [2, 3] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while listed_stamp(&cluster.node(node).admin()).await["hash"] != v2_hash {
            assert!(
                Instant::now() < deadline,
                "node {node} does not list the promoted stamp 10 s after the promote"
            );
            sleep(Duration::from_millis(10)).await;
        }
        let after = cluster.node(node).admin().get_json(rollout).await;
        assert!(canary_is(&after, None), "node {node}: {after}");
    }
    assert_eq!(stamped_by(&mut c, &mut d).await, "b");
    assert_eq!(stamped_by(&mut b, &mut a).await, "b");

    let config = stamp_config(&cluster.table(4), cache.path());
    cluster.launch(vec![Server::builder(&config)]).await;
    let stamp = listed_stamp(&cluster.node(4).admin()).await;
    assert_eq!(stamp["hash"], v2_hash.as_str(), "node 4 lists {stamp}");
    let on_4 = cluster.node(4).admin().get_json(rollout).await;
    assert!(canary_is(&on_4, None), "node 4: {on_4}");
}

/// A canary that overdraws its error budget in a room one node owns is
/// rolled back there, and so on every node.
#[tokio::test]
async fn a_canary_its_budget_ends_on_one_node_ends_on_every_node() {
    let flaky = std::fs::read(STAMP_FLAKY_WASM).expect("read stamp 3.0.0");
    let flaky_hash = sha256_hex(&flaky);
    let cache = tempfile::tempdir().expect("cache dir");
    let cluster = Cluster::start(2, |table| stamp_config(table, cache.path())).await;
    let admin = cluster.node(1).admin();
    upload_stamp(&admin, &flaky).await;
    let budget = json!({ "errorPercent": 1, "minCalls": 40 });
    let policy = json!({ "canary": flaky_hash, "percent": 100, "budget": budget }).to_string();
    let set = admin
        .put("/admin/plugins/stamp/rollout", policy.as_bytes())
        .await;
    assert_eq!(set.status, 200, "{set}");
    let rollout = "/admin/plugins/stamp/rollout";
    admin_until(cluster.node(2), rollout, "node 2 runs the canary", |r| {
        canary_is(r, Some(&flaky_hash))
    })
    .await;

    // A room node 2 owns: the canary fails `seq` 0 and 20 of 40, 5%.
    let (mut a, mut b) = pair_across(cluster.node(2), cluster.node(1), "flaky").await;
    for seq in 0..40u64 {
        let message = json!({ "event": "stamp:msg", "id": format!("s{seq}"), "data": { "to": b.client_id, "seq": seq } });
        a.send_json(message).await;
        if seq % 20 == 0 {
            a.expect_error("PLUGIN_ERROR", Some(&format!("s{seq}")), Some("stamp:msg"))
                .await;
        } else {
            let got = b.expect_event("stamp:msg").await;
            assert_eq!(
                (got["seq"].as_u64(), got["version"].as_str()),
                (Some(seq), Some("c"))
            );
        }
    }
    let on_2 = admin_until(
        cluster.node(2),
        rollout,
        "node 2 rolls the canary back",
        |r| canary_is(r, None),
    )
    .await;
    assert_eq!(on_2["rolledBack"]["hash"], flaky_hash.as_str(), "{on_2}");
    admin_until(cluster.node(1), rollout, "node 1 ends the canary", |r| {
        canary_is(r, None)
    })
    .await;
    assert_eq!(stamped_by(&mut a, &mut b).await, "a");
}

/// `GET /admin/recordings` on `node` until the recording `id` is listed
/// (`true`) or not (`false`); returns the listing.
async fn recording_listed(node: &Server, id: u64, listed: bool) -> Value {
    let what = format!("recording {id} listed: {listed}");
    admin_until(node, "/admin/recordings", &what, |answer| {
        let recordings = answer["recordings"].as_array().cloned().unwrap_or_default();
        recordings.iter().any(|r| r["id"] == id) == listed
    })
    .await
}

/// A recording started on node 1 of a room node 2 owns: node 2 follows
/// it and sends the room's calls to node 1's file; stopped through node 2
/// (202: node 1 writes the file), it ends on both, and the file holds
/// every call of the room, in order, and replays alike on its version.
#[tokio::test]
async fn a_recording_started_on_one_node_holds_the_calls_another_node_made() {
    let (dir, cache) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let recordings = format!(
        "[recordings]\ndir = {:?}\n",
        dir.path().display().to_string()
    );
    let cluster = Cluster::start(2, |table| {
        stamp_config(&format!("{table}{recordings}"), cache.path())
    })
    .await;
    // Node 2 owns the room: its first member joins there.
    let (mut a, mut b) = pair_across(cluster.node(2), cluster.node(1), "rec").await;

    let body = json!({ "rooms": ["rec"] }).to_string();
    let response = (cluster.node(1).admin())
        .request("POST", "/admin/recordings", body.as_bytes())
        .await;
    assert_eq!(response.status, 201, "{response}");
    let started = response.json();
    let id = started["id"].as_u64().expect("an id");
    let writer = started["node"]
        .as_str()
        .expect("the writing node")
        .to_owned();
    let path = std::path::PathBuf::from(started["path"].as_str().expect("a path"));
    let on_2 = recording_listed(cluster.node(2), id, true).await;
    assert_eq!(on_2["recordings"][0]["node"], writer.as_str(), "{on_2}");

    for _ in 0..3 {
        assert_eq!(stamped_by(&mut a, &mut b).await, "a");
        assert_eq!(stamped_by(&mut b, &mut a).await, "a");
    }
    let stopped = (cluster.node(2).admin())
        .delete(&format!("/admin/recordings/{id}"))
        .await;
    assert_eq!(stopped.status, 202, "{stopped}");
    recording_listed(cluster.node(1), id, false).await;

    // Every call of the room was made on node 2, and is in the file, once
    // node 1 has written its end.
    let deadline = Instant::now() + Duration::from_secs(10);
    let file = loop {
        let file = std::fs::read_to_string(&path).expect("read the recording");
        if file.lines().last().is_some_and(|l| l.contains(r#""end""#)) {
            break file;
        }
        assert!(
            Instant::now() < deadline,
            "the file has no end 10 s after the stop: {file}"
        );
        sleep(Duration::from_millis(10)).await;
    };
    let lines: Vec<Value> = (file.lines())
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let calls: Vec<&Value> = lines.iter().filter_map(|l| l.get("call")).collect();
    assert_eq!(stopped.json()["calls"], calls.len(), "{stopped}\n{file}");
    let seqs: Vec<u64> = calls.iter().filter_map(|c| c["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=calls.len() as u64).collect::<Vec<_>>(), "{file}");
    assert!(calls.iter().all(|c| c["room"] == "rec"), "{file}");
    let stamps: Vec<&&Value> = calls.iter().filter(|c| c["entry"] == "stamp").collect();
    assert_eq!(stamps.len(), 6, "{file}");
    for call in stamps {
        assert_eq!(call["input"]["event"]["event"], "stamp:msg", "{call}");
    }
    let end = &lines.last().expect("lines")["end"];
    assert_eq!(
        (&end["calls"], &end["dropped"]),
        (&json!(calls.len()), &json!(0)),
        "{file}"
    );
    let replayed = Command::new(switchboard_e2e::server::binary_path())
        .arg("replay")
        .arg(&path)
        .args(["--plugin", STAMP_V1_WASM])
        .output()
        .await
        .expect("run switchboard replay");
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replayed.stdout)
    );
}

/// A shadow started on node 1 runs on node 2 too, against the rooms each
/// owns; node 1's figures add node 2's; stopped on node 2, it ends on
/// both.
#[tokio::test]
async fn a_shadow_started_on_one_node_compares_every_nodes_calls() {
    let v2 = std::fs::read(STAMP_V2_WASM).expect("read stamp 2.0.0");
    let v2_hash = sha256_hex(&v2);
    let cache = TempDir::new().unwrap();
    let cluster = Cluster::start(2, |table| stamp_config(table, cache.path())).await;
    let admin = cluster.node(1).admin();
    upload_stamp(&admin, &v2).await;
    let body = json!({ "candidate": v2_hash }).to_string();
    let started = admin
        .put("/admin/plugins/stamp/shadow", body.as_bytes())
        .await;
    assert_eq!(started.status, 200, "{started}");
    let shadow = "/admin/plugins/stamp/shadow";
    let on_2 = status_until(cluster.node(2), shadow, 200, "node 2 shadows stamp").await;
    assert_eq!(on_2.json()["candidate"]["hash"], v2_hash.as_str(), "{on_2}");

    // One room each node owns, two messages in each.
    let (mut a, mut b) = pair_across(cluster.node(1), cluster.node(2), "on-1").await;
    let (mut c, mut d) = pair_across(cluster.node(2), cluster.node(1), "on-2").await;
    for _ in 0..2 {
        assert_eq!(stamped_by(&mut a, &mut b).await, "a");
        assert_eq!(stamped_by(&mut c, &mut d).await, "a");
    }
    let figures = admin_until(
        cluster.node(1),
        shadow,
        "node 1 adds node 2's figures",
        |s| s["events"]["stamp:msg"]["calls"] == 4,
    )
    .await;
    assert_eq!(
        (
            &figures["nodes"],
            &figures["events"]["stamp:msg"]["differences"]
        ),
        (&json!(2), &json!(4)),
        "{figures}"
    );
    let rooms: BTreeSet<&str> = (figures["sample"].as_array().into_iter().flatten())
        .filter(|d| d["event"] == "stamp:msg")
        .filter_map(|d| d["room"].as_str())
        .collect();
    assert_eq!(rooms, BTreeSet::from(["on-1", "on-2"]), "{figures}");

    let stopped = cluster.node(2).admin().delete(shadow).await;
    assert_eq!(stopped.status, 200, "{stopped}");
    status_until(cluster.node(1), shadow, 404, "node 1 ends the shadow").await;
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
    // A measurement for BENCHMARKS.md, not an assertion beyond the bound.
    eprintln!(
        "node death to the survivors' peer-left: {} ms (lease {LEASE_MS} ms, heartbeat {HEARTBEAT_MS} ms)",
        died.elapsed().as_millis()
    );
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

/// The sessions of a killed node's clients are suspended, as on one node:
/// each can be resumed on any survivor, keeping its id and room, and the
/// room hears nothing of it meanwhile. Carol resumes at once, while node 3
/// still holds its lease (the resume does not wait on the dead node);
/// Erin after the survivors have taken the room over, and gets what Alice
/// relayed to her meanwhile, in order. Dave never comes back: everyone
/// hears he left once lease + grace have passed since the death.
#[tokio::test]
async fn a_dead_nodes_sessions_resume_on_survivors() {
    const LEASE: u64 = 4000;
    const GRACE: u64 = 3000;
    let bound = Duration::from_millis(LEASE + GRACE) + Duration::from_secs(2);
    let mut cluster = Cluster::start(3, |table| {
        let lease = format!("lease_ms = {LEASE}\n");
        let table = table.replace(&format!("lease_ms = {LEASE_MS}\n"), &lease);
        let session = format!("[session]\nresume_grace_ms = {GRACE}\n");
        chains::with_extra(&format!("{table}{session}"), &[])
    })
    .await;
    wait_until_acquainted(&cluster).await;
    // Node 3's clients join first: node 3 owns the room.
    let mut c = Client::joined(cluster.node(3), "carol", "r").await;
    let mut e = Client::joined(cluster.node(3), "erin", "r").await;
    c.expect_event("room:peer-joined").await;
    let mut d = Client::joined(cluster.node(3), "dave", "r").await;
    c.expect_event("room:peer-joined").await;
    e.expect_event("room:peer-joined").await;
    let mut a = Client::joined(cluster.node(1), "alice", "r").await;
    for member in [&mut c, &mut e, &mut d] {
        member.expect_event("room:peer-joined").await;
    }
    // The mirror, written after each session's record, lists all four.
    wait_for_listing(cluster.node(1), "r", 4).await;
    let (carol, erin, dave) = (
        c.client_id.clone(),
        e.client_id.clone(),
        d.client_id.clone(),
    );
    let (carol_token, erin_token) = (c.resume_token(), e.resume_token());

    cluster.node_mut(3).kill9().await;
    let died = Instant::now();
    drop((c, e, d));

    let (mut c, answer) = Client::resuming(cluster.node(1), &carol_token).await;
    assert_resumed(&answer, &carol, json!("r"), 0);
    eprintln!(
        "node death to a resume on a survivor: {} ms",
        died.elapsed().as_millis()
    );
    assert!(
        live_nodes(cluster.node(1)).await.contains("node-3"),
        "Carol's resume waited for node 3's lease to run out"
    );

    // Once the room is taken over, Carol is a member through node 1.
    let deadline = Instant::now() + bound;
    loop {
        let (_, body) = room_listing(cluster.node(1), "r").await;
        let peers = body["peers"].as_array().cloned().unwrap_or_default();
        if peers.contains(&listed(&c, "carol", 1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Carol is not listed on node 1: {body}"
        );
        sleep(Duration::from_millis(50)).await;
    }
    relay_both_ways(&mut a, &mut c, "carol").await;

    // Erin's session waits on the room's new owner, with what is sent her.
    let tags = ["queued-1", "queued-2"];
    for tag in tags {
        a.send_json(ice(&erin, tag)).await;
    }
    a.expect_silence(QUIET).await;
    let (mut e, answer) = Client::resuming(cluster.node(2), &erin_token).await;
    // Replayed with the answer if node 2 owns the room now; right after it
    // from the owner otherwise.
    let replayed = answer["data"]["replayed"].as_u64().unwrap_or(u64::MAX);
    assert!(replayed == 0 || replayed == 2, "{answer}");
    assert_resumed(&answer, &erin, json!("r"), replayed as usize);
    for tag in tags {
        assert_eq!(
            e.expect_event("ice:candidate").await,
            ice_from(&a.client_id, tag),
            "the relays sent to Erin while her node was dead, in order"
        );
    }
    relay_both_ways(&mut a, &mut e, "erin").await;
    relay_both_ways(&mut c, &mut e, "carol and erin").await;

    // Dave's session ends unresumed: the first thing anyone hears since.
    let left = json!({ "event": "room:peer-left", "data": { "roomId": "r", "clientId": dave, "reason": "disconnected" } });
    for (who, client) in [("alice", &mut a), ("carol", &mut c), ("erin", &mut e)] {
        let limit = bound.saturating_sub(died.elapsed());
        assert_eq!(client.recv_within(limit).await, left, "{who}");
    }
    eprintln!(
        "node death to the peer-left of a session not resumed: {} ms (lease {LEASE} ms, grace {GRACE} ms)",
        died.elapsed().as_millis()
    );
    assert_eq!(
        room_state(&mut a).await,
        json!({ "roomId": "r", "peers": [peer(&c, "carol"), peer(&e, "erin")] })
    );
    a.expect_silence(QUIET).await;
    c.expect_silence(Duration::ZERO).await;
    e.expect_silence(Duration::ZERO).await;
}

/// PROTOCOL.md: a suspended session whose queue overflows `replay_limit`
/// has ended, and its resume is `RESUME_FAILED`; so for a session of a
/// dead node, queued on its room's owner. Carol's node dies; Bob relays to
/// her until her queue on node 1 overflows (the relays before node 1
/// buried node 2 went to the dead node), which ends her session with
/// `room:peer-left` long before her grace would; then her resume fails.
#[tokio::test]
async fn a_dead_nodes_session_whose_queue_overflowed_cannot_be_resumed() {
    const SESSION: &str = "[session]\nresume_grace_ms = 20000\nreplay_limit = 2\n";
    let mut cluster = Cluster::start(2, |table| {
        chains::with_extra(&format!("{table}{SESSION}"), &[])
    })
    .await;
    let mut b = Client::joined(cluster.node(1), "bob", "r").await;
    let c = Client::joined(cluster.node(2), "carol", "r").await;
    b.expect_event("room:peer-joined").await;
    wait_for_listing(cluster.node(1), "r", 2).await;
    let (carol, token) = (c.client_id.clone(), c.resume_token());

    cluster.node_mut(2).kill9().await;
    drop(c);
    let left = json!({ "event": "room:peer-left", "data": { "roomId": "r", "clientId": carol, "reason": "disconnected" } });
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in 0.. {
        assert!(
            Instant::now() < deadline,
            "Carol's session did not end on overflow"
        );
        b.send_json(ice(&carol, &format!("c{n}"))).await;
        match timeout(Duration::from_millis(100), b.recv()).await {
            Ok(message) => {
                assert_eq!(message, left);
                break;
            }
            Err(_) => continue,
        }
    }
    let (_, answer) = Client::resuming(cluster.node(1), &token).await;
    assert_eq!(answer["event"], "error", "expected RESUME_FAILED: {answer}");
    assert_eq!(answer["data"]["code"], "RESUME_FAILED", "{answer}");
    assert_eq!(answer["data"]["event"], "session:resume", "{answer}");
}

/// A room's plugin timers outlive its owner. Node 2 owns the room (Alice
/// joined first) and holds the `room-ttl` timer set when the room opened;
/// node 2 is killed; node 1, taking the room over, fires the timer from the
/// room's mirror, not early, and Bob sees the room close.
#[tokio::test]
async fn a_rooms_timers_fire_after_its_owner_died() {
    const TTL_MS: u64 = 4000;
    let ttl = chains::with_config(chains::builtin("room-ttl"), &format!("ttl_ms = {TTL_MS}"));
    let chain = [
        chains::builtin("auth-jwt"),
        ttl,
        chains::builtin("rooms"),
        chains::builtin("signaling"),
    ];
    let mut cluster = Cluster::start(2, |table| {
        chains::config(
            &format!("{table}[session]\nresume_grace_ms = 300\n"),
            &chain,
        )
    })
    .await;
    // Before alice's join: the room opens on the server before her client
    // reads `room:joined`, so an instant taken after it could make a TTL
    // that fired on time look early (it did, by 2 ms).
    let opened = Instant::now();
    let a = Client::joined(cluster.node(2), "alice", "r").await;
    let mut b = Client::joined(cluster.node(1), "bob", "r").await;
    wait_for_listing(cluster.node(1), "r", 2).await;
    let alice = a.client_id.clone();

    cluster.node_mut(2).kill9().await;
    drop(a);
    let left = json!({ "roomId": "r", "clientId": alice, "reason": "disconnected" });
    let limit = Duration::from_millis(TTL_MS);
    assert_eq!(b.expect_event_within("room:peer-left", limit).await, left);
    let closed = b
        .expect_event_within("room:closed", Duration::from_millis(TTL_MS))
        .await;
    let fired = opened.elapsed();
    assert_eq!(closed, json!({ "roomId": "r", "reason": "ttl" }));
    assert!(
        fired >= limit,
        "the TTL fired early, {fired:?} after the room opened"
    );
    b.expect_close(4009).await;
    eprintln!(
        "room-ttl of {TTL_MS} ms fired {} ms after the room opened, across a takeover",
        fired.as_millis()
    );
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

// ---------------------------------------------------------------------------
// Session resume, operator kicks and room listings across nodes.

/// A grace period no test here outlives by accident.
const RESUME_GRACE: &str = "[session]\nresume_grace_ms = 10000\n";

/// The default chain with [`RESUME_GRACE`].
fn resume_config(table: &str) -> String {
    chains::with_extra(&format!("{table}{RESUME_GRACE}"), &[])
}

/// `ice:candidate` to `to` whose candidate string is `tag`.
fn ice(to: &str, tag: &str) -> Value {
    json!({ "event": "ice:candidate", "data": { "to": to, "candidate": { "candidate": tag } } })
}

/// What `to` receives for [`ice`] from `from`.
fn ice_from(from: &str, tag: &str) -> Value {
    json!({ "from": from, "candidate": { "candidate": tag } })
}

/// A relay each way between `a` and `b`, tagged `tag`.
async fn relay_both_ways(a: &mut Client, b: &mut Client, tag: &str) {
    a.send_json(ice(&b.client_id, tag)).await;
    assert_eq!(
        b.expect_event("ice:candidate").await,
        ice_from(&a.client_id, tag),
        "{tag}: a → b"
    );
    b.send_json(ice(&a.client_id, tag)).await;
    assert_eq!(
        a.expect_event("ice:candidate").await,
        ice_from(&b.client_id, tag),
        "{tag}: b → a"
    );
}

/// `room:state` from `client`: its `data`.
async fn room_state(client: &mut Client) -> Value {
    client
        .send_json(json!({ "event": "room:state", "id": "state" }))
        .await;
    client.expect_reply("room:state", "state").await
}

/// Polls `node`'s `/metrics` until the gauge `name` reads `value`.
async fn wait_for_gauge(node: &Server, name: &str, value: f64) {
    let what = format!("{} to read {name} = {value}", node.admin_addr());
    node.admin()
        .metrics_until(&what, Duration::from_secs(5), |m| {
            m.get_or_zero(name, &[]) == value
        })
        .await;
}

/// Waits until every node has seen every other's lease at a heartbeat
/// (`switchboard_cluster_nodes` is the count of its last one). A node
/// acts on that view (a resume asks the token's issuer only if it is in
/// it, a kick goes to the client's node only if it is), and for up to a
/// heartbeat after a start the view lacks the nodes that started later:
/// see `a_client_of_a_node_that_just_started_can_be_removed_and_resumed`.
async fn wait_until_acquainted(cluster: &Cluster) {
    let n = cluster.nodes.len() as f64;
    for node in &cluster.nodes {
        wait_for_gauge(node, "switchboard_cluster_nodes", n).await;
    }
}

/// Asserts `answer` is exactly the documented `session:resumed` (to the
/// `session:resume` [`Client::resuming`] sends) and returns its new token.
fn assert_resumed(answer: &Value, client_id: &str, room: Value, replayed: usize) -> String {
    let token = answer["data"]["resumeToken"]
        .as_str()
        .unwrap_or_else(|| panic!("session:resumed without a string resumeToken: {answer}"));
    let expected = json!({
        "event": "session:resumed",
        "id": "resume",
        "data": { "clientId": client_id, "roomId": room, "replayed": replayed, "resumeToken": token },
    });
    assert_eq!(answer, &expected);
    token.to_owned()
}

/// `GET /admin/rooms/{room}` on `node`: its status and body.
async fn room_listing(node: &Server, room: &str) -> (u16, Value) {
    let response = node.admin().get(&format!("/admin/rooms/{room}")).await;
    let body = if response.status == 200 {
        response.json()
    } else {
        Value::Null
    };
    (response.status, body)
}

/// Polls `GET /admin/rooms/{room}` on `node` until it lists `n` members
/// (404 for 0); returns the last body. The mirror it reads is written a
/// moment after a member sees its own answer, so this waits for the count,
/// and the caller checks the contents.
async fn wait_for_listing(node: &Server, room: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = room_listing(node, room).await;
        let listed = body["peers"].as_array().map_or(0, Vec::len);
        if (n == 0 && status == 404) || (n > 0 && status == 200 && listed == n) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{} does not list {n} members of {room} within 5 s: HTTP {status} {body}",
            node.admin_addr()
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// A listed member: [`peer`] and the node it is connected to.
fn listed(client: &Client, user: &str, node: usize) -> Value {
    let mut peer = peer(client, user);
    peer["node"] = json!(format!("node-{node}"));
    peer
}

/// Alice (node 1) and Bob (node 2) in room `r`; `alice_first` says who
/// joined first, and so whose node owns the room (the first joiner's node
/// claims it). Alice drops abruptly; while she is away Bob relays three
/// candidates to her; she resumes on node 3.
async fn resume_on_another_node(alice_first: bool) {
    let cluster = Cluster::start(3, resume_config).await;
    wait_until_acquainted(&cluster).await;
    let (mut a, mut b) = if alice_first {
        let mut a = Client::joined(cluster.node(1), "alice", "r").await;
        let b = Client::joined(cluster.node(2), "bob", "r").await;
        a.expect_event("room:peer-joined").await;
        (a, b)
    } else {
        let mut b = Client::joined(cluster.node(2), "bob", "r").await;
        let a = Client::joined(cluster.node(1), "alice", "r").await;
        b.expect_event("room:peer-joined").await;
        (a, b)
    };
    let (alice, token) = (a.client_id.clone(), a.resume_token());
    assert!(
        token.ends_with(".node-1"),
        "a token node 1 issued does not name it: {token}"
    );
    relay_both_ways(&mut a, &mut b, "before").await;

    // Abruptly: a reset in one run, a FIN without a close frame in the other.
    if alice_first {
        a.reset();
    } else {
        a.vanish();
    }
    wait_for_gauge(cluster.node(1), "switchboard_sessions_suspended", 1.0).await;

    // Accepted while she is away (no error to Bob), and queued on node 1
    // for her: her session's queue is the only one that can fill there.
    let tags = ["away-1", "away-2", "away-3"];
    for tag in tags {
        b.send_json(ice(&alice, tag)).await;
    }
    wait_for_gauge(cluster.node(1), "switchboard_outbound_queue_depth", 3.0).await;
    b.expect_silence(QUIET).await;

    let (mut a, answer) = Client::resuming(cluster.node(3), &token).await;
    let new_token = assert_resumed(&answer, &alice, json!("r"), 3);
    assert!(
        new_token.ends_with(".node-3"),
        "the token node 3 issued with the resume does not name it: {new_token}"
    );
    for tag in tags {
        assert_eq!(
            a.expect_event("ice:candidate").await,
            ice_from(&b.client_id, tag),
            "the relays queued while she was away, replayed in order"
        );
    }
    // The room saw no peer-left (nor a peer-joined).
    b.expect_silence(QUIET).await;
    a.expect_silence(Duration::ZERO).await;
    wait_for_gauge(cluster.node(1), "switchboard_sessions_suspended", 0.0).await;

    relay_both_ways(&mut a, &mut b, "after").await;
    assert_eq!(
        room_state(&mut a).await,
        json!({ "roomId": "r", "peers": [peer(&b, "bob")] })
    );
    let members = if alice_first {
        json!([peer(&a, "alice"), peer(&b, "bob")])
    } else {
        json!([peer(&b, "bob"), peer(&a, "alice")])
    };
    let without_bob: Vec<Value> = members
        .as_array()
        .expect("an array")
        .iter()
        .filter(|p| p["clientId"] != b.client_id.as_str())
        .cloned()
        .collect();
    assert_eq!(
        room_state(&mut b).await,
        json!({ "roomId": "r", "peers": without_bob })
    );
    a.expect_silence(QUIET).await;
    b.expect_silence(Duration::ZERO).await;
}

/// PROTOCOL.md, "Session resume", across nodes: a client that dropped on
/// node 1 resumes on node 3 with its id, room and the relays queued for it,
/// in order, and the room never sees it leave. Here its own node owned the
/// room (it joined first), so node 1 keeps the room and Alice becomes a
/// member there through node 3.
#[tokio::test]
async fn a_session_resumes_on_another_node() {
    resume_on_another_node(true).await;
}

/// The same, when the room is owned by a third party's node (Bob's, node
/// 2): node 1 hands the session over and node 2 must learn that Alice's
/// edge is node 3 now.
#[tokio::test]
async fn a_session_resumes_on_another_node_when_its_room_lives_elsewhere() {
    resume_on_another_node(false).await;
}

/// "If the old connection still looks open, the server closes it with
/// 4000 and the new one takes over", with the two connections on two
/// nodes; the room sees nothing, and the client can move again.
#[tokio::test]
async fn a_resume_elsewhere_closes_the_old_socket_with_4000() {
    let cluster = Cluster::start(3, resume_config).await;
    wait_until_acquainted(&cluster).await;
    let mut old = Client::joined(cluster.node(1), "alice", "r").await;
    let mut b = Client::joined(cluster.node(2), "bob", "r").await;
    old.expect_event("room:peer-joined").await;
    let alice = old.client_id.clone();

    let (mut a, answer) = Client::resuming(cluster.node(2), &old.resume_token()).await;
    let token = assert_resumed(&answer, &alice, json!("r"), 0);
    old.expect_close(4000).await;
    b.expect_silence(QUIET).await;
    relay_both_ways(&mut a, &mut b, "on node 2").await;
    assert_eq!(
        room_state(&mut a).await,
        json!({ "roomId": "r", "peers": [peer(&b, "bob")] })
    );
    wait_for_gauge(cluster.node(1), "switchboard_sessions_suspended", 0.0).await;
    wait_for_gauge(cluster.node(2), "switchboard_sessions_suspended", 0.0).await;

    // Once more, from node 2 to node 3, with the token node 2 handed out.
    let (mut c, answer) = Client::resuming(cluster.node(3), &token).await;
    assert_resumed(&answer, &alice, json!("r"), 0);
    a.expect_close(4000).await;
    b.expect_silence(QUIET).await;
    relay_both_ways(&mut c, &mut b, "on node 3").await;
    c.expect_silence(QUIET).await;
}

/// The mirror of a room (what `GET /admin/rooms/{id}` lists, and what a
/// takeover rebuilds the room from) names each member's node. A member
/// that resumed on another node is connected there now. (Bob joins first,
/// so that his node owns the room and the owner is neither of Alice's
/// nodes.)
#[tokio::test]
async fn a_resumed_member_is_listed_on_its_new_node() {
    let cluster = Cluster::start(3, resume_config).await;
    wait_until_acquainted(&cluster).await;
    let mut b = Client::joined(cluster.node(2), "bob", "r").await;
    let a = Client::joined(cluster.node(1), "alice", "r").await;
    b.expect_event("room:peer-joined").await;
    let before = json!({ "roomId": "r", "peers": [listed(&b, "bob", 2), listed(&a, "alice", 1)] });
    assert_eq!(wait_for_listing(cluster.node(3), "r", 2).await, before);

    let (mut a2, answer) = Client::resuming(cluster.node(3), &a.resume_token()).await;
    assert_resumed(&answer, &a.client_id, json!("r"), 0);
    drop(a);
    relay_both_ways(&mut a2, &mut b, "resumed").await;
    let after = json!({ "roomId": "r", "peers": [listed(&b, "bob", 2), listed(&a2, "alice", 3)] });
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (_, body) = room_listing(cluster.node(1), "r").await;
        if body == after {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "3 s after Alice resumed on node 3, the room's mirror still says {body}, \
             expected {after}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// A node that has just joined the cluster is a node like the others at
/// once: a client of it can be removed from another node's admin API, and
/// its session resumed on another node. The heartbeat here is 2 s, so that
/// the others learn of the new node at their next heartbeat, up to 2 s
/// after it started, while the test takes a few milliseconds.
#[tokio::test]
async fn a_client_of_a_node_that_just_started_can_be_removed_and_resumed() {
    let slow = |cluster: &Cluster, k: usize| {
        let table = cluster
            .table(k)
            .replace(
                &format!("heartbeat_ms = {HEARTBEAT_MS}\n"),
                "heartbeat_ms = 2000\n",
            )
            .replace(&format!("lease_ms = {LEASE_MS}\n"), "lease_ms = 6000\n");
        assert!(table.contains("heartbeat_ms = 2000"), "{table}");
        resume_config(&table)
    };
    let mut cluster = Cluster::new();
    let configs: Vec<String> = (1..=2).map(|k| slow(&cluster, k)).collect();
    cluster
        .launch(configs.iter().map(|c| Server::builder(c)).collect())
        .await;
    wait_until_acquainted(&cluster).await;

    let config = slow(&cluster, 3);
    cluster.launch(vec![Server::builder(&config)]).await;
    let mut kicked = Client::authed(cluster.node(3), "carol").await;
    let resumed = Client::authed(cluster.node(3), "dave").await;
    let response = cluster.kick(1, &kicked.client_id).await;
    let (mut moved, answer) = Client::resuming(cluster.node(2), &resumed.resume_token()).await;
    let seen = cluster.node(1).admin().metrics().await;
    eprintln!(
        "node 1 counted {} live nodes when asked",
        seen.value("switchboard_cluster_nodes")
    );
    assert!(
        response.status == 204 && answer["event"] == "session:resumed",
        "just after node 3 started: DELETE on node 1 of a client of node 3 answered \
         {response}; a resume on node 2 of a session of node 3 answered {answer}"
    );
    kicked.expect_close(4009).await;
    assert_resumed(&answer, &resumed.client_id, Value::Null, 0);
    moved.assert_open().await;
}

/// `DELETE /admin/clients/{id}` on any node closes the client with 4009 on
/// whichever node holds its socket: one in a room another node owns, one
/// in no room, one not even authenticated; its room hears `peer-left`, a
/// second delete and an id nobody has are 404.
#[tokio::test]
async fn an_operator_removes_a_client_from_any_node() {
    let cluster = Cluster::start(3, |table| chains::with_extra(table, &[])).await;
    wait_until_acquainted(&cluster).await;
    let mut a = Client::joined(cluster.node(1), "alice", "r").await;
    let mut b = Client::joined(cluster.node(2), "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    let bob = b.client_id.clone();

    // Bob is on node 2, in a room node 1 owns; node 1 is asked.
    let response = cluster
        .node(1)
        .admin()
        .delete(&format!("/admin/clients/{bob}"))
        .await;
    assert_eq!(response.status, 204, "DELETE Bob on node 1: {response}");
    assert!(response.body.is_empty(), "204 with a body: {response}");
    b.expect_close(4009).await;
    assert_eq!(
        a.expect_event("room:peer-left").await,
        json!({ "roomId": "r", "clientId": bob, "reason": "disconnected" })
    );
    assert_eq!(
        wait_for_listing(cluster.node(3), "r", 1).await,
        json!({ "roomId": "r", "peers": [listed(&a, "alice", 1)] })
    );
    // Gone for good, as seen from every node.
    for k in 1..=3 {
        let response = cluster
            .node(k)
            .admin()
            .delete(&format!("/admin/clients/{bob}"))
            .await;
        assert_eq!(
            response.status, 404,
            "DELETE Bob again on node {k}: {response}"
        );
    }

    // Outside any room (node 3, asked on node 2), and before auth (node 1,
    // asked on node 3).
    let mut carol = Client::authed(cluster.node(3), "carol").await;
    let mut fresh = Client::connect(cluster.node(1)).await;
    for (client, asked) in [(&mut carol, 2), (&mut fresh, 3)] {
        let response = cluster.kick(asked, &client.client_id).await;
        assert_eq!(response.status, 204, "DELETE on node {asked}: {response}");
        client.expect_close(4009).await;
    }

    // A well-formed id nobody has.
    let known = [&a.client_id, &bob, &carol.client_id, &fresh.client_id];
    let unknown = (0..)
        .map(|i| format!("{i:016x}"))
        .find(|id| !known.contains(&id))
        .expect("an unused id");
    for k in 1..=3 {
        let response = cluster
            .node(k)
            .admin()
            .delete(&format!("/admin/clients/{unknown}"))
            .await;
        assert_eq!(
            response.status, 404,
            "DELETE {unknown} on node {k}: {response}"
        );
    }
    a.expect_silence(QUIET).await;
    a.assert_open().await;
}

/// `GET /admin/rooms/{id}` on any node lists the members on every node,
/// oldest first, each with its node, the same from all three; it follows
/// a leave, and is 404 once the room has closed.
#[tokio::test]
async fn room_members_are_listed_with_their_node_from_any_node() {
    let cluster = Cluster::start(3, |table| chains::with_extra(table, &[])).await;
    // Carol joins first, from node 3 (so node 3 owns the room), with
    // metadata; then Alice from node 1 and Bob from node 2.
    let mut c = Client::authed(cluster.node(3), "carol").await;
    c.send_json(json!({
        "event": "room:join", "id": "join",
        "data": { "roomId": "r", "metadata": { "role": "host", "n": 1 } },
    }))
    .await;
    c.expect_reply("room:joined", "join").await;
    let mut a = Client::joined(cluster.node(1), "alice", "r").await;
    c.expect_event("room:peer-joined").await;
    let mut b = Client::joined(cluster.node(2), "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    c.expect_event("room:peer-joined").await;

    let mut carol = listed(&c, "carol", 3);
    carol["metadata"] = json!({ "role": "host", "n": 1 });
    let all = json!({
        "roomId": "r",
        "peers": [carol, listed(&a, "alice", 1), listed(&b, "bob", 2)],
    });
    for k in 1..=3 {
        assert_eq!(
            wait_for_listing(cluster.node(k), "r", 3).await,
            all,
            "GET /admin/rooms/r on node {k}"
        );
    }
    let (status, _) = room_listing(cluster.node(2), "no-such-room").await;
    assert_eq!(status, 404, "a room nobody is in");

    // Alice leaves: every node stops listing her.
    a.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    a.expect_reply("room:left", "l").await;
    b.expect_event("room:peer-left").await;
    c.expect_event("room:peer-left").await;
    let two = json!({ "roomId": "r", "peers": [carol, listed(&b, "bob", 2)] });
    for k in 1..=3 {
        assert_eq!(
            wait_for_listing(cluster.node(k), "r", 2).await,
            two,
            "GET /admin/rooms/r on node {k} after Alice left"
        );
    }

    // The others close: the room is gone everywhere.
    b.close(1000).await;
    c.close(1000).await;
    for k in 1..=3 {
        wait_for_listing(cluster.node(k), "r", 0).await;
    }
    a.expect_silence(Duration::ZERO).await;
}

// ---------------------------------------------------------------------------
// A Redis restart.

/// One side of a relay exchange that must carry nothing but relays from
/// its peer: every `ice:candidate` tag it receives, in order.
struct Side {
    client: Client,
    peer: String,
    got: Vec<String>,
}

impl Side {
    /// Files one incoming message; anything but a relay from the peer (a
    /// `room:peer-left`, an error, a close) fails the test.
    fn take(&mut self, incoming: Incoming, what: &str) {
        let message = match incoming {
            Incoming::Message(message) => message,
            other => panic!(
                "{} ({what}): the connection ended: {other:?}",
                self.client.client_id
            ),
        };
        let tag = message["data"]["candidate"]["candidate"].as_str();
        match tag {
            Some(tag)
                if message["event"] == "ice:candidate"
                    && message.get("id").is_none()
                    && message["data"]["from"] == self.peer.as_str() =>
            {
                self.got.push(tag.to_owned())
            }
            _ => panic!(
                "{} ({what}): expected only relays from {}, got {message}",
                self.client.client_id, self.peer
            ),
        }
    }

    /// Reads for `window`, filing everything.
    async fn listen(&mut self, window: Duration, what: &str) {
        let deadline = Instant::now() + window;
        while let Ok(incoming) =
            tokio::time::timeout_at(deadline, self.client.next_incoming()).await
        {
            self.take(incoming, what);
        }
    }

    /// Sends `ping` and files everything up to its `pong`: the connection
    /// is open and answering.
    async fn ping(&mut self, what: &str) {
        let id = format!("ping-{}", self.got.len());
        self.client
            .send_json(json!({ "event": "ping", "id": id }))
            .await;
        loop {
            let incoming = timeout(RECV_TIMEOUT, self.client.next_incoming())
                .await
                .unwrap_or_else(|_| panic!("{what}: no pong within {RECV_TIMEOUT:?}"));
            match &incoming {
                Incoming::Message(m) if m["event"] == "pong" && m["id"] == id.as_str() => return,
                _ => self.take(incoming, what),
            }
        }
    }

    fn has(&self, prefix: &str) -> bool {
        self.got.iter().any(|tag| tag.starts_with(prefix))
    }
}

/// Alice on node 1 (which then owns room `r`) and Bob on node 2, in `r`,
/// after one relay each way (tagged `before`, which each side has got).
async fn relaying_across(cluster: &Cluster) -> (Side, Side) {
    let (mut a, mut b) = pair_across(cluster.node(1), cluster.node(2), "r").await;
    relay_both_ways(&mut a, &mut b, "before").await;
    let (a_id, b_id) = (a.client_id.clone(), b.client_id.clone());
    let side = |client, peer| Side {
        client,
        peer,
        got: vec!["before".to_owned()],
    };
    (side(a, b_id), side(b, a_id))
}

/// Sends probes each way, one every 100 ms, until each way has delivered
/// one: how long after `since` each way flowed again (Alice's to Bob's,
/// Bob's to Alice's), and how many probes went at most. Fails the test if
/// that takes `limit`.
async fn until_relays_flow(
    a: &mut Side,
    b: &mut Side,
    since: Instant,
    limit: Duration,
) -> (Duration, Duration, usize) {
    let (mut a_to_b, mut b_to_a) = (None, None);
    let mut n = 0;
    loop {
        if let (Some(a_to_b), Some(b_to_a)) = (a_to_b, b_to_a) {
            return (a_to_b, b_to_a, n);
        }
        assert!(
            since.elapsed() < limit,
            "{limit:?} on, relays across nodes do not flow: \
             node 1 → node 2 {a_to_b:?}, node 2 → node 1 {b_to_a:?}; \
             Alice got {:?}, Bob got {:?}",
            a.got,
            b.got
        );
        if a_to_b.is_none() {
            a.client
                .send_json(ice(&a.peer, &format!("probe-{n}")))
                .await;
        }
        if b_to_a.is_none() {
            b.client
                .send_json(ice(&b.peer, &format!("probe-{n}")))
                .await;
        }
        n += 1;
        let tick = Instant::now() + Duration::from_millis(100);
        while Instant::now() < tick {
            tokio::select! {
                incoming = a.client.next_incoming() => a.take(incoming, "recovering"),
                incoming = b.client.next_incoming() => b.take(incoming, "recovering"),
                _ = tokio::time::sleep_until(tick) => {}
            }
            if a_to_b.is_none() && b.has("probe-") {
                a_to_b = Some(since.elapsed());
            }
            if b_to_a.is_none() && a.has("probe-") {
                b_to_a = Some(since.elapsed());
            }
        }
    }
}

/// Checks what one side received across the restart: the tags before the
/// outage, then perhaps some of the outage's and probes (each kind in the
/// order sent), then the whole burst in order.
fn check_across_restart(side: &Side, who: &str, burst: usize) {
    let numbered = |kind: &str| -> Vec<u64> {
        side.got
            .iter()
            .filter_map(|tag| tag.strip_prefix(kind)?.parse().ok())
            .collect()
    };
    for kind in ["outage-", "probe-"] {
        let seen = numbered(kind);
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "{who}: {kind}* out of order or twice: {:?}",
            side.got
        );
    }
    assert_eq!(
        numbered("burst-"),
        (0..burst as u64).collect::<Vec<_>>(),
        "{who}: the burst after the recovery is not complete and in order: {:?}",
        side.got
    );
    let first_burst = side.got.iter().position(|t| t.starts_with("burst-"));
    let last_other = side.got.iter().rposition(|t| !t.starts_with("burst-"));
    assert!(
        last_other < first_burst,
        "{who}: a relay sent before the burst arrived inside it: {:?}",
        side.got
    );
    assert_eq!(
        side.got.first().map(String::as_str),
        Some("before"),
        "{who}"
    );
}

/// Redis restarts empty (it keeps nothing on disk) while two nodes serve a
/// room across them. No client connection is dropped; relays sent while
/// Redis is down may be lost; relays across the nodes flow again within
/// seconds of the restart, complete and in order; every node counts the
/// reconnect and sees the other again; an operator on one node can still
/// remove a client of the other (the client directory was written back).
#[tokio::test]
async fn a_redis_restart_drops_no_client() {
    const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
    const BURST: usize = 20;
    let mut redis = OwnRedis::start().await;
    let cluster = Cluster::on(redis.addr, false)
        .with_nodes(2, |table| chains::with_extra(table, &[]))
        .await;
    wait_until_acquainted(&cluster).await;
    // Alice joins first: node 1 owns the room, Bob's events go there.
    let (mut a, mut b) = relaying_across(&cluster).await;
    let (a_id, b_id) = (b.peer.clone(), a.peer.clone());

    // Down for about a second, with relays sent meanwhile each way.
    redis.kill().await;
    let killed = Instant::now();
    for i in 0..4 {
        a.client.send_json(ice(&b_id, &format!("outage-{i}"))).await;
        b.client.send_json(ice(&a_id, &format!("outage-{i}"))).await;
        a.listen(Duration::from_millis(125), "Redis down").await;
        b.listen(Duration::from_millis(125), "Redis down").await;
    }
    redis.restart().await;
    let restarted = Instant::now();
    let outage = restarted - killed;

    // Nobody was dropped: both answer at once.
    a.ping("just after the restart").await;
    b.ping("just after the restart").await;

    let (a_to_b, b_to_a, n) = until_relays_flow(&mut a, &mut b, restarted, RECOVERY_LIMIT).await;

    // A burst each way: all of it, in order.
    for i in 0..BURST {
        a.client.send_json(ice(&b_id, &format!("burst-{i}"))).await;
        b.client.send_json(ice(&a_id, &format!("burst-{i}"))).await;
    }
    let last = format!("burst-{}", BURST - 1);
    let deadline = Instant::now() + RECV_TIMEOUT;
    while !(a.got.contains(&last) && b.got.contains(&last)) {
        assert!(
            Instant::now() < deadline,
            "the burst did not arrive: Alice got {:?}, Bob got {:?}",
            a.got,
            b.got
        );
        tokio::select! {
            incoming = a.client.next_incoming() => a.take(incoming, "burst"),
            incoming = b.client.next_incoming() => b.take(incoming, "burst"),
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
    a.listen(QUIET, "after the burst").await;
    b.listen(Duration::ZERO, "after the burst").await;
    for k in 1..=2 {
        let metrics = cluster.node(k).admin().metrics().await;
        eprintln!(
            "redis restart: node {k}: published {}, received {}, reconnects {}, lost {}, \
             node deaths {}, takeovers {}",
            metrics.value("switchboard_cluster_published_total"),
            metrics.value("switchboard_cluster_received_total"),
            metrics.value("switchboard_cluster_reconnects_total"),
            metrics.value("switchboard_cluster_lost_total"),
            metrics.value("switchboard_cluster_node_deaths_total"),
            metrics.value("switchboard_cluster_takeovers_total"),
        );
    }
    check_across_restart(&b, "Bob (node 2) from Alice", BURST);
    check_across_restart(&a, "Alice (node 1) from Bob", BURST);
    let recovery = a_to_b.max(b_to_a);
    eprintln!(
        "redis restart: down {outage:?}; relays across nodes again {recovery:?} after the \
         restart (node 1 → node 2 {a_to_b:?}, node 2 → node 1 {b_to_a:?}, {n} probes each way \
         at most); of 4 relays each way sent while down, Bob got {:?}, Alice got {:?}",
        b.got
            .iter()
            .filter(|t| t.starts_with("outage-"))
            .collect::<Vec<_>>(),
        a.got
            .iter()
            .filter(|t| t.starts_with("outage-"))
            .collect::<Vec<_>>(),
    );

    // Every node reconnected, sees the other, buried nobody.
    for k in 1..=2 {
        let metrics = cluster
            .node(k)
            .admin()
            .metrics_until(
                &format!("node {k} counting 2 live nodes after the restart"),
                Duration::from_secs(5),
                |m| m.value("switchboard_cluster_nodes") == 2.0,
            )
            .await;
        assert!(
            metrics.value("switchboard_cluster_reconnects_total") >= 1.0,
            "node {k} did not count the reconnect: {}",
            metrics.summary()
        );
        wait_for_nodes(cluster.node(k), 2, Some(&node_ids(&[1, 2])), RECV_TIMEOUT).await;
    }
    // (Whether the room keeps one owner across the restart is
    // `after_a_redis_restart_a_room_is_still_one_room`'s question.)

    // And still nobody dropped, nothing else received.
    a.ping("at the end").await;
    b.ping("at the end").await;
    let (a_got, b_got) = (a.got.len(), b.got.len());
    a.listen(QUIET, "at the end").await;
    b.listen(Duration::ZERO, "at the end").await;
    assert_eq!((a.got.len(), b.got.len()), (a_got, b_got), "late relays");

    // The client directory was written back too: an operator on node 1
    // can still remove Bob, on node 2.
    let response = cluster
        .node(1)
        .admin()
        .delete(&format!("/admin/clients/{b_id}"))
        .await;
    assert_eq!(
        response.status, 204,
        "DELETE Bob on node 1 after the restart: {response}"
    );
    b.client.expect_close(4009).await;
    assert_eq!(
        a.client.expect_event("room:peer-left").await,
        json!({ "roomId": "r", "clientId": b_id, "reason": "disconnected" })
    );
}

/// Relays stream both ways across two nodes, one every 5 ms each way,
/// while Redis is killed and restarted twice. Some may be lost while Redis
/// is away, but what arrives arrives once and in the order sent, and the
/// stream flows again after each restart: every node reconnects one
/// connection at a time and sends nothing on a new connection before the
/// old one's writes have settled.
#[tokio::test]
async fn relays_streamed_across_redis_restarts_arrive_once_and_in_order() {
    const EVERY: Duration = Duration::from_millis(5);
    let mut redis = OwnRedis::start().await;
    let cluster = Cluster::on(redis.addr, false)
        .with_nodes(2, |table| {
            let limits = "[limits]\nrate_per_sec = 100000\nrate_burst = 100000\n";
            chains::with_extra(&format!("{table}{limits}"), &[])
        })
        .await;
    wait_until_acquainted(&cluster).await;
    let mut a = Client::joined(cluster.node(1), "alice", "r").await;
    let b = Client::joined(cluster.node(2), "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    let (a_id, b_id) = (a.client_id.clone(), b.client_id.clone());
    let mut a = Side {
        client: a,
        peer: b_id.clone(),
        got: Vec::new(),
    };
    let mut b = Side {
        client: b,
        peer: a_id.clone(),
        got: Vec::new(),
    };

    // Down at 0.3 s for 0.5 s, and at 1.5 s for 0.2 s; streaming until 3 s.
    let started = Instant::now();
    let mut outages = vec![
        (Duration::from_millis(300), Duration::from_millis(800)),
        (Duration::from_millis(1500), Duration::from_millis(1700)),
    ]
    .into_iter()
    .peekable();
    let mut down = false;
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(EVERY);
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(&(kill_at, restart_at)) = outages.peek() {
            let elapsed = started.elapsed();
            if !down && elapsed >= kill_at {
                redis.kill().await;
                down = true;
            } else if down && elapsed >= restart_at {
                redis.restart().await;
                down = false;
                outages.next();
            }
        }
        tokio::select! {
            _ = tick.tick() => {
                a.client.send_json(ice(&b_id, &format!("s-{sent}"))).await;
                b.client.send_json(ice(&a_id, &format!("s-{sent}"))).await;
                sent += 1;
            }
            incoming = a.client.next_incoming() => a.take(incoming, "streaming"),
            incoming = b.client.next_incoming() => b.take(incoming, "streaming"),
        }
    }

    // A last relay each way proves the stream flows again.
    a.client.send_json(ice(&b_id, "last")).await;
    b.client.send_json(ice(&a_id, "last")).await;
    let deadline = Instant::now() + RECV_TIMEOUT;
    while !(a.has("last") && b.has("last")) {
        assert!(
            Instant::now() < deadline,
            "the stream did not flow again after the restarts: Alice's last {:?}, Bob's last {:?}",
            a.got.last(),
            b.got.last()
        );
        tokio::select! {
            incoming = a.client.next_incoming() => a.take(incoming, "after the restarts"),
            incoming = b.client.next_incoming() => b.take(incoming, "after the restarts"),
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
    for (side, who) in [
        (&a, "Alice (node 1) from Bob"),
        (&b, "Bob (node 2) from Alice"),
    ] {
        let numbered: Vec<u64> = side
            .got
            .iter()
            .filter_map(|tag| tag.strip_prefix("s-")?.parse().ok())
            .collect();
        let broken = numbered.windows(2).find(|w| w[0] >= w[1]);
        assert!(
            broken.is_none(),
            "{who}: {broken:?} out of order or twice, in {} of {sent} relays",
            numbered.len()
        );
        eprintln!(
            "streamed across two Redis restarts: {who}: {} of {sent} relays arrived",
            numbered.len()
        );
    }
}

/// Polls `GET /admin/nodes` on `node` until it lists exactly `expected`,
/// right after a Redis restart: until some node has written its lease
/// again the list is empty, which is answered with a 503 (see
/// `an_empty_node_list_is_a_list`); those answers are counted, not failed.
async fn wait_for_nodes_after_restart(node: &Server, expected: &BTreeSet<String>) -> usize {
    let deadline = Instant::now() + RECV_TIMEOUT;
    let mut unavailable = 0;
    loop {
        let response = node.admin().get("/admin/nodes").await;
        if response.status == 503 {
            unavailable += 1;
        } else {
            assert_eq!(response.status, 200, "GET /admin/nodes: {response}");
            if live_nodes(node).await == *expected {
                return unavailable;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} does not list {expected:?} within {RECV_TIMEOUT:?} of the restart: {response}",
            node.admin_addr()
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// After Redis restarts empty, each node re-asserts the rooms it owns and
/// writes their mirror back, and declares no node dead for a lease after
/// the reconnect: so a room is still one room, owned by the node that
/// owned it. Here node 1 owns the room and nodes 2 to 4 each have a member
/// in it (any of them could mistake node 1 for dead); after each of three
/// restarts, the owner key names node 1 again, the mirror lists the four
/// members with their nodes, no node counts a takeover, and a newcomer
/// joining from node 4 joins that room, seeing the four.
#[tokio::test]
async fn after_a_redis_restart_a_room_is_still_one_room() {
    const ROUNDS: usize = 3;
    let mut redis = OwnRedis::start().await;
    let cluster = Cluster::on(redis.addr, false)
        .with_nodes(4, |table| chains::with_extra(table, &[]))
        .await;
    wait_until_acquainted(&cluster).await;
    let users = ["alice", "bob", "carol", "dave"];
    let mut members: Vec<Client> = Vec::new();
    for (k, user) in users.iter().enumerate() {
        let client = Client::joined(cluster.node(k + 1), user, "r").await;
        for earlier in &mut members {
            earlier.expect_event("room:peer-joined").await;
        }
        members.push(client);
    }
    let peers: Vec<Value> = members
        .iter()
        .zip(users)
        .enumerate()
        .map(|(k, (client, user))| listed(client, user, k + 1))
        .collect();
    let mirror = json!({ "roomId": "r", "peers": peers });
    // What a newcomer's `room:joined` lists: the same, as `Peer`s.
    let joined_peers: Vec<Value> = members
        .iter()
        .zip(users)
        .map(|(client, user)| peer(client, user))
        .collect();
    assert_eq!(wait_for_listing(cluster.node(4), "r", 4).await, mirror);
    let owner_key = format!("{}:room:r:owner", cluster.prefix);

    for round in 1..=ROUNDS {
        redis.kill().await;
        sleep(Duration::from_millis(1200)).await;
        redis.restart().await;
        let restarted = Instant::now();

        // Back to normal: every node sees the four, and the owner and the
        // mirror are written back.
        for k in 1..=4 {
            wait_for_nodes_after_restart(cluster.node(k), &node_ids(&[1, 2, 3, 4])).await;
        }
        let mut own = Resp::connect(redis.addr).expect("connect to the test's redis-server");
        let owner = loop {
            let owner = match own.call(&["GET", &owner_key]).expect("GET the owner") {
                Reply::Bulk(owner) => owner.map(|o| String::from_utf8_lossy(&o).into_owned()),
                other => panic!("GET {owner_key}: {other:?}"),
            };
            if owner.is_some() || restarted.elapsed() > RECV_TIMEOUT {
                break owner;
            }
            sleep(Duration::from_millis(50)).await;
        };
        let mut takeovers = Vec::new();
        for k in 1..=4 {
            let metrics = cluster.node(k).admin().metrics().await;
            takeovers.push(metrics.value("switchboard_cluster_takeovers_total"));
        }
        let (_, listing) = room_listing(cluster.node(3), "r").await;

        // A newcomer on node 4 joins the one room `r`.
        let mut erin = Client::authed(cluster.node(4), "erin").await;
        let joined = erin.join("r").await;
        eprintln!(
            "redis restart round {round}: owner {owner:?}, takeovers per node {takeovers:?}, \
             newcomer saw {} peers",
            joined["peers"].as_array().map_or(0, Vec::len)
        );
        assert_eq!(
            (
                owner.as_deref(),
                takeovers.as_slice(),
                &listing,
                &joined["peers"]
            ),
            (
                Some("node-1"),
                [0.0; 4].as_slice(),
                &mirror,
                &json!(joined_peers)
            ),
            "after restart {round}: (the room's owner in Redis, takeovers on nodes 1..4, \
             the mirror as node 3 lists it, the peers a newcomer joining on node 4 sees)"
        );
        for member in &mut members {
            member.expect_event("room:peer-joined").await;
        }
        erin.close(1000).await;
        for member in &mut members {
            member.expect_event("room:peer-left").await;
        }
    }
    for member in &mut members {
        member.assert_open().await;
    }
}

/// `GET /admin/nodes` lists the nodes that hold a lease; when none is
/// listed (right after Redis restarted empty, until the first heartbeat
/// writes one back) that is an empty list, not an error. The node's
/// heartbeat is 2 s here, so that the test deletes the node list between
/// two of them.
#[tokio::test]
async fn an_empty_node_list_is_a_list() {
    let mut cluster = Cluster::new();
    let table = cluster
        .table(1)
        .replace(
            &format!("heartbeat_ms = {HEARTBEAT_MS}\n"),
            "heartbeat_ms = 2000\n",
        )
        .replace(&format!("lease_ms = {LEASE_MS}\n"), "lease_ms = 6000\n");
    let config = chains::with_extra(&table, &[]);
    cluster.launch(vec![Server::builder(&config)]).await;
    wait_for_nodes(cluster.node(1), 1, Some(&node_ids(&[1])), RECV_TIMEOUT).await;

    let mut redis = Resp::connect(cluster.redis).expect("connect to Redis");
    let nodes_key = format!("{}:nodes", cluster.prefix);
    // The node's next heartbeat lists it again; a heartbeat that lands
    // between the DEL and the GET makes the answer a list of one, which is
    // right too: try again.
    for _ in 0..5 {
        redis.call(&["DEL", &nodes_key]).expect("DEL the node list");
        let response = cluster.node(1).admin().get("/admin/nodes").await;
        assert_eq!(response.status, 200, "GET /admin/nodes: {response}");
        if response.json() == json!({ "nodes": [] }) {
            return;
        }
    }
    panic!("GET /admin/nodes never answered an empty list");
}

// ---------------------------------------------------------------------------
// A soak across nodes.

/// Seconds the cross-node soak runs unless `SWITCHBOARD_SOAK_SECS` says
/// otherwise (soak.rs reads the same variable).
const SOAK_DEFAULT_SECS: u64 = 15;
const SOAK_NODES: usize = 3;
/// Clients alive at once on each node... at the start: each life picks
/// its node at random.
const SOAK_WORKERS_PER_NODE: usize = 4;
/// Few rooms, so that each has members on several nodes, and joins race
/// with leaves and with rooms closing and reopening on other owners.
const SOAK_ROOMS: u64 = 4;
/// How long one expected answer may take.
const SOAK_PATIENCE: Duration = Duration::from_secs(10);
/// A client that vanishes is a suspended session this long.
const SOAK_SESSION: &str = "[session]\nresume_grace_ms = 500\n";

/// How a soak client's life ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SoakExit {
    /// `room:leave`, read up to `room:left`, then a clean close.
    LeaveThenClose,
    /// `room:leave`, read up to `room:left`, then gone without a close
    /// frame (its session outlives it for the grace period).
    LeaveThenVanish,
    /// A clean close from inside the room.
    CloseInRoom,
    /// Gone without a close frame from inside the room.
    VanishInRoom,
}

impl SoakExit {
    fn pick(rng: &mut Rng) -> SoakExit {
        match rng.below(100) {
            0..60 => SoakExit::LeaveThenClose,
            60..75 => SoakExit::LeaveThenVanish,
            75..90 => SoakExit::CloseInRoom,
            _ => SoakExit::VanishInRoom,
        }
    }

    /// Whether the client read up to its `room:left`: every relay the
    /// room's owner accepted for it was queued before that answer, so each
    /// must have arrived. The others may lose what was on its way.
    fn drains(self) -> bool {
        matches!(self, SoakExit::LeaveThenClose | SoakExit::LeaveThenVanish)
    }
}

/// Everything the soak's clients did, merged at the end of each life.
#[derive(Default)]
struct SoakLedger {
    lives: HashMap<SoakExit, u64>,
    relays: Relays,
    /// The node (1-based) each client was connected to.
    node_of: HashMap<String, usize>,
}

/// Why a room's owner may refuse a relay: the target left (or its room
/// closed and reopened elsewhere) after the sender last heard of it.
const SOAK_REFUSALS: &[&str] = &["PEER_NOT_FOUND"];

/// Sends up to five relays, to peers on other nodes when there are some,
/// then `room:state`. That goes to the room's owner behind the relays, and
/// its answer comes back behind theirs, so once it is in, every relay
/// without an error was accepted. (A `ping` would not do: the client's own
/// node answers it at once.) The answer also says who is in the room now.
async fn soak_relay_round(
    life: &mut Life,
    rng: &mut Rng,
    round: u64,
    node_of: &Mutex<HashMap<String, usize>>,
) {
    let targets: Vec<String> = {
        let node_of = node_of.lock().unwrap();
        let mine = node_of.get(&life.id).copied();
        let elsewhere: Vec<String> = life
            .peers
            .iter()
            .filter(|p| node_of.get(*p).copied() != mine)
            .cloned()
            .collect();
        if elsewhere.is_empty() {
            life.peers.iter().cloned().collect()
        } else {
            elsewhere
        }
    };
    let state = life
        .relay_round(rng, round, &targets, ("room:state", "room:state"))
        .await;
    life.peers = state["data"]["peers"]
        .as_array()
        .unwrap_or_else(|| panic!("room:state without peers: {state}"))
        .iter()
        .map(|p| p["clientId"].as_str().expect("peer id").to_owned())
        .collect();
}

/// One client from connect to gone, on a node picked at random.
async fn soak_life(
    nodes: &[SocketAddr],
    rng: &mut Rng,
    ledger: &Mutex<SoakLedger>,
    node_of: &Mutex<HashMap<String, usize>>,
) {
    let exit = SoakExit::pick(rng);
    let node = rng.below(nodes.len() as u64) as usize;
    let user = format!("user{}", rng.below(1000));
    let client = Client::authed_addr(nodes[node], &user).await;
    node_of
        .lock()
        .unwrap()
        .insert(client.client_id.clone(), node + 1);
    let mut life = Life::new(client, SOAK_REFUSALS, SOAK_PATIENCE);
    let room = format!("soak-{}", rng.below(SOAK_ROOMS));
    life.client
        .send_json(json!({ "event": "room:join", "id": "join", "data": { "roomId": room } }))
        .await;
    let joined = life.until_reply("room:joined", "join").await;
    assert_eq!(joined["event"], "room:joined", "{}: {joined}", life.id);
    for peer in joined["data"]["peers"].as_array().expect("peers") {
        life.peers
            .insert(peer["clientId"].as_str().expect("peer id").to_owned());
    }
    for round in 0..1 + rng.below(4) {
        soak_relay_round(&mut life, rng, round, node_of).await;
        life.listen(Duration::from_millis(rng.below(100))).await;
    }

    match exit {
        SoakExit::LeaveThenClose | SoakExit::LeaveThenVanish => {
            life.client
                .send_json(json!({ "event": "room:leave", "id": "leave" }))
                .await;
            let left = life.until_reply("room:left", "leave").await;
            assert_eq!(left["event"], "room:left", "{}: {left}", life.id);
            if exit == SoakExit::LeaveThenClose {
                life.client.close(1000).await;
            } else {
                life.client.vanish();
            }
        }
        SoakExit::CloseInRoom => life.client.close(1000).await,
        SoakExit::VanishInRoom => life.client.vanish(),
    }

    let mut ledger = ledger.lock().unwrap();
    *ledger.lives.entry(exit).or_default() += 1;
    ledger.node_of.insert(life.id.clone(), node + 1);
    ledger.relays.add(
        life.id,
        life.accepted,
        life.refused,
        life.received,
        exit.drains(),
    );
}

/// [`Relays::check`], and how many relays accepted went between two
/// nodes: (accepted for clients that read up to their `room:left`,
/// accepted for the others, accepted between two nodes).
fn check_soak_relays(ledger: &SoakLedger) -> (usize, usize, usize) {
    let (to_drained, to_departed) = ledger.relays.check();
    let across = ledger
        .relays
        .accepted
        .iter()
        .filter(|relay| ledger.node_of.get(&relay.from) != ledger.node_of.get(&relay.to))
        .count();
    (to_drained.len(), to_departed.len(), across)
}

/// The keys under `prefix` that are not the nodes' own (their leases, the
/// node list, the plugin versions and components): what clients and rooms
/// left behind.
fn leftover_keys(redis: SocketAddr, prefix: &str, nodes: usize) -> Vec<String> {
    let mut own: HashSet<String> = (1..=nodes)
        .map(|k| format!("{prefix}:node:node-{k}"))
        .collect();
    own.insert(format!("{prefix}:nodes"));
    let mut resp = Resp::connect(redis).expect("connect to Redis");
    let mut left: Vec<String> = resp
        .keys(prefix)
        .expect("SCAN the prefix")
        .into_iter()
        .map(|key| String::from_utf8_lossy(&key).into_owned())
        .filter(|key| {
            !own.contains(key)
                && !key.starts_with(&format!("{prefix}:plugin:"))
                && !key.starts_with(&format!("{prefix}:component:"))
        })
        .collect();
    left.sort();
    left
}

/// For `SWITCHBOARD_SOAK_SECS` seconds (15 by default), clients churn over
/// three nodes: each connects to a node picked at random, authenticates,
/// joins one of four rooms, relays numbered messages to peers (on other
/// nodes where there are some) and leaves, cleanly or not. Every relay the
/// rooms' owners accepted for a peer that stayed to its `room:left`
/// arrived exactly once, and none arrived twice or out of order anywhere;
/// afterwards the nodes hold no connection, room or session, and Redis
/// holds nothing under the prefix but the nodes' own keys: no room, no
/// room count, no client directory entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_node_soak_delivers_every_relay_once_and_leaves_nothing_in_redis() {
    let mut cluster = Cluster::start(SOAK_NODES, |table| {
        chains::with_extra(&format!("{table}{SOAK_SESSION}"), &[])
    })
    .await;
    wait_until_acquainted(&cluster).await;
    let secs: u64 = std::env::var("SWITCHBOARD_SOAK_SECS")
        .map(|s| {
            s.parse()
                .expect("SWITCHBOARD_SOAK_SECS is a number of seconds")
        })
        .unwrap_or(SOAK_DEFAULT_SECS);
    let seed: u64 = std::env::var("SWITCHBOARD_SOAK_SEED")
        .map(|s| s.parse().expect("SWITCHBOARD_SOAK_SEED is a number"))
        .unwrap_or_else(|_| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64
                | 1
        });
    let workers = SOAK_WORKERS_PER_NODE * SOAK_NODES;
    eprintln!(
        "cluster soak: {secs} s, {workers} clients at a time over {SOAK_NODES} nodes, \
         SWITCHBOARD_SOAK_SEED={seed}"
    );

    let addrs: Arc<Vec<SocketAddr>> = Arc::new(cluster.nodes.iter().map(Server::addr).collect());
    let ledger = Arc::new(Mutex::new(SoakLedger::default()));
    let node_of = Arc::new(Mutex::new(HashMap::new()));
    let end = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..workers as u64)
        .map(|worker| {
            let (addrs, ledger, node_of) = (
                Arc::clone(&addrs),
                Arc::clone(&ledger),
                Arc::clone(&node_of),
            );
            tokio::spawn(async move {
                let mut rng = Rng(seed.wrapping_mul(2 * worker + 1) | 1);
                while Instant::now() < end {
                    soak_life(&addrs, &mut rng, &ledger, &node_of).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a soak client failed");
    }

    for k in 1..=SOAK_NODES {
        assert!(
            cluster.node_mut(k).is_running(),
            "node {k} died during the soak"
        );
    }
    let mut connections = Vec::new();
    for node in &cluster.nodes {
        let metrics = node
            .admin()
            .metrics_until(
                &format!("{} holding nothing of the soak", node.admin_addr()),
                SOAK_PATIENCE,
                |m| {
                    m.value("switchboard_connections_current") == 0.0
                        && m.value("switchboard_rooms") == 0.0
                        && m.value("switchboard_sessions_suspended") == 0.0
                        && m.value("switchboard_outbound_queue_depth") == 0.0
                },
            )
            .await;
        connections.push(metrics.value("switchboard_connections_total"));
    }

    // What is left in Redis once the nodes have let go, waited for a
    // moment: the last writes go through each node's bus after the
    // metrics above settle.
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        let left = leftover_keys(cluster.redis, &cluster.prefix, SOAK_NODES);
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        sleep(Duration::from_millis(100)).await;
    };

    let ledger = ledger.lock().unwrap();
    let (to_drained, to_departed, across) = check_soak_relays(&ledger);
    let lives: u64 = ledger.lives.values().sum();
    eprintln!(
        "cluster soak: {lives} lives {:?}; relays accepted {} ({across} between two nodes; \
         {to_drained} for peers that stayed to their room:left, each arrived once; \
         {to_departed} for peers that went from their room), refused {:?}; \
         connections per node {connections:?}",
        ledger.lives,
        ledger.relays.accepted.len(),
        ledger.relays.refused,
    );
    assert!(
        left.is_empty(),
        "keys under {} left behind by the soak's clients and rooms ({}): {left:#?}",
        cluster.prefix,
        left.len()
    );
    // A soak that checked nothing across nodes proves nothing.
    assert!(to_drained > 0 && across > 0, "no relay was checked");
    assert!(
        [SoakExit::LeaveThenClose, SoakExit::VanishInRoom]
            .iter()
            .all(|exit| ledger.lives.get(exit).copied().unwrap_or(0) > 0),
        "the soak did not exercise every kind of exit: {:?}",
        ledger.lives
    );
}

// ---------------------------------------------------------------------------
// Hot swaps under load across nodes (hot_swap.rs's
// `twenty_swaps_under_load_drop_nothing_and_switch_at_the_answer`, with the
// clients spread over three nodes and the swaps made through each node's
// admin API in turn).

/// Rooms of 3, each member on another node, so that most messages cross
/// nodes; the rooms' owners (their first members' nodes) are spread over
/// the three. A client knows it has everything by a `room:state`, which
/// its room's owner answers (see [`Handshake::RoomState`]).
const LOAD: Shape = Shape {
    name: "hot swaps across nodes",
    rooms: 18,
    per_room: 3,
    churners: 6,
    handshake: Handshake::RoomState,
    drain: Duration::from_secs(30),
    finish: Duration::from_secs(90),
    min_sent: 3_000,
    min_per_window: 50,
    min_after_last: 50,
};

/// 20 hot swaps of `stamp` (2.0.0, 1.0.0, 2.0.0, ...) made through nodes
/// 1, 2, 3, 1, ... in turn while 54 clients over three nodes send
/// `stamp:msg` 20 times a second each and churners come and go: nothing
/// is dropped or duplicated, the room counters (host storage, on the
/// rooms' owners) run on without a gap, every message was stamped by a
/// version that may have been live on its room's owner between its send
/// and its receipt, and every message sent after the last swap reached
/// every node was stamped by the final version.
///
/// A node's version switches when the swap announcement reaches it, after
/// the swapping node's answer; so a version's run ends not at the next
/// swap's answer (as on one node) but when every node lists the next
/// version. The nodes share one compile cache, as in
/// `a_hot_swap_reaches_every_node_within_a_second` (see there why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swaps_under_load_across_nodes_drop_nothing() {
    let (v1, v2) = (
        Build::read(STAMP_V1_WASM, "1.0.0", "a"),
        Build::read(STAMP_V2_WASM, "2.0.0", "b"),
    );
    let cache = tempfile::tempdir().expect("cache dir");
    let cluster = Cluster::start(3, |table| stamp_config(table, cache.path())).await;
    wait_until_acquainted(&cluster).await;
    let addrs: Vec<SocketAddr> = cluster.nodes.iter().map(Server::addr).collect();

    // Each swap through the next node, awaited until every node lists it.
    let mut propagation = Vec::new();
    let run = LOAD
        .run(&addrs, &v1, &v2, async |i, next| {
            let via = i % 3 + 1;
            let response = cluster
                .node(via)
                .admin()
                .put("/admin/plugins/stamp", &next.bytes)
                .await;
            let answered = Instant::now();
            assert_eq!(
                response.status, 200,
                "swap {i} through node {via}: {response}"
            );
            assert_eq!(
                response.json()["hash"],
                next.hash.as_str(),
                "swap {i}: {response}"
            );
            let deadline = answered + Duration::from_secs(10);
            for k in 1..=3 {
                while listed_stamp(&cluster.node(k).admin()).await["hash"] != next.hash.as_str() {
                    assert!(
                        Instant::now() < deadline,
                        "swap {i} (through node {via}) has not reached node {k} 10 s after its answer"
                    );
                    sleep(Duration::from_millis(10)).await;
                }
            }
            let everywhere = Instant::now();
            propagation.push(everywhere - answered);
            everywhere
        })
        .await;

    LOAD.check(&run);
    eprintln!(
        "hot swaps across nodes: propagation after each answer (ms) {:?}",
        propagation
            .iter()
            .map(Duration::as_millis)
            .collect::<Vec<_>>()
    );
    // 20 swaps end on 1.0.0, everywhere.
    for k in 1..=3 {
        let stamp = listed_stamp(&cluster.node(k).admin()).await;
        assert_eq!(
            (&stamp["hash"], &stamp["version"]),
            (&json!(v1.hash), &json!(v1.version)),
            "node {k} after {SWAPS} swaps: {stamp}"
        );
    }
}

/// A TCP proxy in front of Redis that can stall: the connections it
/// carries at that moment stay open but carry nothing more either way, as
/// over a link that died without a word; connections made afterwards work.
struct StallingProxy {
    addr: SocketAddr,
    /// Bumped by [`StallingProxy::stall`]; a connection carries bytes only
    /// while it matches the one it was accepted under.
    generation: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl StallingProxy {
    async fn start(to: SocketAddr) -> StallingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let generation = Arc::new(AtomicU64::new(0));
        let current = Arc::clone(&generation);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(to).await else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(pump(in_read, out_write, Arc::clone(&current), born));
                tokio::spawn(pump(out_read, in_write, Arc::clone(&current), born));
            }
        });
        StallingProxy {
            addr,
            generation,
            accept,
        }
    }

    fn stall(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to` until either ends, or, once the proxy stalls,
/// holds both open and copies nothing.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: Arc<AtomicU64>,
    born: u64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if generation.load(Ordering::SeqCst) != born {
            let _held = (from, to);
            return std::future::pending().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Two nodes on the machine's Redis with leases of `lease_ms`, node 1
/// reaching it through a [`StallingProxy`] (returned, to stall it).
async fn two_nodes_one_behind_a_proxy(lease_ms: u64) -> (StallingProxy, Cluster) {
    let redis: SocketAddr = REDIS_ADDR.parse().expect("a socket address");
    let proxy = StallingProxy::start(redis).await;
    let mut k = 0;
    let cluster = Cluster::new()
        .with_nodes(2, |table| {
            k += 1;
            let mut table = table.replace(
                &format!("lease_ms = {LEASE_MS}"),
                &format!("lease_ms = {lease_ms}"),
            );
            if k == 1 {
                table = table.replace(REDIS_ADDR, &proxy.addr.to_string());
            }
            chains::with_extra(&table, &[])
        })
        .await;
    (proxy, cluster)
}

/// A node's connections to Redis stall without closing (a dead link, a
/// host gone without a word): relays across the nodes flow again within
/// seconds both ways, because the node pings its subscription and
/// subscribes again when the pings go unanswered; its writes and its
/// heartbeat time out and reconnect by themselves. Nobody is dropped.
#[tokio::test]
async fn a_subscription_that_stalls_is_renewed() {
    const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
    // Leases outlast the stall, so that nobody is buried while node 1's
    // heartbeat reconnects.
    let (proxy, cluster) = two_nodes_one_behind_a_proxy(10_000).await;
    wait_until_acquainted(&cluster).await;
    let (mut a, mut b) = relaying_across(&cluster).await;

    proxy.stall();
    let stalled = Instant::now();
    let (a_to_b, b_to_a, n) = until_relays_flow(&mut a, &mut b, stalled, RECOVERY_LIMIT).await;
    eprintln!(
        "stalled subscription: relays across nodes again after node 1 → node 2 {a_to_b:?}, \
         node 2 → node 1 {b_to_a:?} ({n} probes each way at most)"
    );
    a.ping("after the stall").await;
    b.ping("after the stall").await;
    let metrics = cluster.node(1).admin().metrics().await;
    assert!(
        metrics.value("switchboard_cluster_reconnects_total") >= 1.0,
        "node 1 counted no reconnect"
    );
}

/// A node cut off from Redis for longer than its lease is dead to the
/// others, so it answers new clients 503 (as a full server does) until a
/// heartbeat gets through again, and then takes them again.
#[tokio::test]
async fn a_node_past_its_lease_refuses_new_clients_until_redis_answers() {
    const LIMIT: Duration = Duration::from_secs(10);
    let (proxy, cluster) = two_nodes_one_behind_a_proxy(LEASE_MS).await;
    wait_until_acquainted(&cluster).await;
    let addr = cluster.node(1).addr();
    let upgrade = || upgrade_request("GET", "/ws", addr);
    assert_eq!(status_of(addr, &upgrade()).await, 101);
    let admin = cluster.node(1).admin();
    assert_eq!(admin.get("/readyz").await.status, 200);

    // The heartbeat stalls for its response timeout (2 s), longer than
    // the lease (LEASE_MS); then the node connects again.
    proxy.stall();
    let stalled = Instant::now();
    let mut statuses = Vec::new();
    while !statuses.contains(&503) {
        assert!(
            stalled.elapsed() < LIMIT,
            "no 503 within {LIMIT:?} of the stall: {statuses:?}"
        );
        statuses.push(status_of(addr, &upgrade()).await);
        sleep(Duration::from_millis(25)).await;
    }
    // When the lease ran out depends on the last heartbeat before the
    // stall, so only the order is checked: 101, some 503s, 101.
    let refused = stalled.elapsed();
    let ready = admin.get("/readyz").await;
    assert_eq!(ready.status, 503, "/readyz while refusing: {ready}");
    while statuses.last() != Some(&101) {
        assert!(
            stalled.elapsed() < LIMIT,
            "still refusing {LIMIT:?} after the stall: {statuses:?}"
        );
        sleep(Duration::from_millis(25)).await;
        statuses.push(status_of(addr, &upgrade()).await);
    }
    eprintln!(
        "past its lease: 503 from {refused:?} after the stall, 101 again after {:?}",
        stalled.elapsed()
    );
}
