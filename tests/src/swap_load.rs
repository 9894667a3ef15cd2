//! DESIGN.md, "Hot swap", under load: hot swaps of a chain entry between
//! two builds (`stamp` 2.0.0, 1.0.0, 2.0.0, ...; or the Rust and the
//! JavaScript `rooms`) while every client of many rooms sends `stamp:msg`
//! 20 times a second and churners come and go. Nothing is dropped or
//! duplicated, the room counters (host storage) run on without a gap, every
//! message was stamped by a version that may have been live between its
//! send and its receipt, and every churner's join was admitted or refused
//! as a version that may have been live between the request and its answer
//! decides.
//!
//! One run serves both the single-node test (hot_swap.rs) and the cluster
//! one (cluster.rs): a [`Shape`] says how many rooms, clients and churners
//! there are and how a client knows it has everything; the servers' addresses
//! say where they connect (member `m` of room `r` on server `(r + m) % n`,
//! so that with several nodes most messages cross nodes); and the test
//! makes each swap itself, saying when the previous version's run ended.
//!
//! `stamp` (tests/plugins/) relays `stamp:msg` `{"to", "seq"}` to `to` as
//! `{"from", "seq", "version", "count"}`: `version` is `"a"` for its 1.0.0
//! build and `"b"` for its 2.0.0 build, and `count` is the room's message
//! counter, kept in host storage.
//!
//! Traffic clients' tokens carry the role [`MEMBER`], and every other
//! churner's [`GUEST`]: a build of `rooms` may refuse guests (a role check),
//! which churners then see as `FORBIDDEN` while it is live.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Barrier, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, timeout};

use crate::{Admin, Client, Incoming};

/// How many swaps a run makes: an even number, so it ends on the first
/// build.
pub const SWAPS: usize = 20;
/// Every traffic client sends one `stamp:msg` this often (20/s: well under
/// the default rate limit).
pub const SEND_EVERY: Duration = Duration::from_millis(50);
/// Traffic before the first swap, and between the end of one version's run
/// (see [`Shape::run`]) and the next swap's request: the windows in which
/// exactly one version is live.
pub const SETTLE: Duration = Duration::from_millis(300);

/// The role of every traffic client and of every other churner.
pub const MEMBER: &str = "member";
/// The role of the other churners, which a build may refuse to let join.
pub const GUEST: &str = "guest";

/// One build of the entry a run swaps: its bytes and what it is known by.
#[derive(Clone)]
pub struct Build {
    pub bytes: Arc<Vec<u8>>,
    pub hash: String,
    /// `describe()`'s version, as `/admin/plugins` shows it.
    pub version: &'static str,
    /// What a relayed `stamp:msg` carries in `version` while it is live: a
    /// build of `stamp` stamps its own; beside a build of another entry,
    /// the `stamp` of the chain does.
    pub mark: &'static str,
    /// Whether a [`GUEST`] may join a room while it is live.
    pub admits_guests: bool,
}

impl Build {
    /// The component at `path`, which describes itself as `version`, is
    /// live while `stamp:msg` is stamped `mark`, and lets anyone join.
    pub fn read(path: &str, version: &'static str, mark: &'static str) -> Build {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        Build {
            hash: sha256_hex(&bytes),
            bytes: Arc::new(bytes),
            version,
            mark,
            admits_guests: true,
        }
    }

    /// This build, which answers a [`GUEST`]'s join with `FORBIDDEN`.
    pub fn refusing_guests(self) -> Build {
        Build {
            admits_guests: false,
            ..self
        }
    }
}

/// The `stamp` entry of a server's `GET /admin/plugins`.
pub async fn listed_stamp(admin: &Admin) -> Value {
    listed(admin, "stamp").await
}

/// The chain entry `name` of a server's `GET /admin/plugins`.
pub async fn listed(admin: &Admin, name: &str) -> Value {
    let listing = admin.get_json("/admin/plugins").await;
    listing["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugins array: {listing}"))
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {listing}"))
        .clone()
}

/// The lowercase hex SHA-256 of `bytes`, as the admin API names a plugin.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a client makes sure, at the end, that what it sent has been handled
/// and what was sent to it has arrived: a request whose answer comes back
/// behind both.
#[derive(Clone, Copy)]
pub enum Handshake {
    /// `ping`, answered `pong` by the client's server, which also handles
    /// its room's events: enough on one node.
    Ping,
    /// `room:state`, handled on the room's owner, behind this client's
    /// earlier messages, and coming back behind what the owner sent this
    /// client before it. Across nodes a `ping` would not do: the client's
    /// own node answers it at once.
    RoomState,
}

impl Handshake {
    /// The event to send, and the event of its answer.
    fn events(self) -> (&'static str, &'static str) {
        match self {
            Handshake::Ping => ("ping", "pong"),
            Handshake::RoomState => ("room:state", "room:state"),
        }
    }
}

/// The size of a run and what it must at least have tested.
#[derive(Clone, Copy)]
pub struct Shape {
    /// What the run's summary line is headed.
    pub name: &'static str,
    pub rooms: usize,
    pub per_room: usize,
    /// Clients that join, send one `stamp:msg`, leave, and reconnect, all
    /// along.
    pub churners: usize,
    pub handshake: Handshake,
    /// How long the end-of-run handshakes may take.
    pub drain: Duration,
    /// How long all the clients may take to finish once told to stop.
    pub finish: Duration,
    /// The fewest messages a run may send.
    pub min_sent: usize,
    /// The fewest messages that must fall wholly inside each live window.
    pub min_per_window: usize,
    /// The fewest messages that must be sent after the last version's run
    /// began everywhere.
    pub min_after_last: usize,
}

/// One `stamp:msg` a client sent.
pub struct Sent {
    pub to: String,
    pub seq: u64,
    /// Just before it was written to the socket.
    pub at: Instant,
}

/// One `stamp:msg` a client received.
pub struct Got {
    pub from: String,
    pub seq: u64,
    pub version: String,
    pub count: u64,
    /// Just after it was read from the socket.
    pub at: Instant,
}

/// A churner's `room:join` and its answer.
pub struct Join {
    /// The role its token carries.
    pub role: &'static str,
    /// Just before it was written to the socket.
    pub sent: Instant,
    /// Just after its answer was read from the socket.
    pub answered: Instant,
    /// The code of the error that refused it; `None`: it joined.
    pub refused: Option<String>,
}

/// What one connection saw over the whole run (a traffic client), or over
/// one visit to a room (a churner).
#[derive(Default)]
pub struct Record {
    pub client_id: String,
    pub room: usize,
    /// A churner's join of the room it visited.
    pub join: Option<Join>,
    pub sent: Vec<Sent>,
    pub got: Vec<Got>,
    /// `error` messages received.
    pub errors: Vec<Value>,
    /// Anything else that should not have arrived.
    pub unexpected: Vec<Value>,
    /// How the connection ended, if it ended.
    pub disconnected: Option<String>,
}

impl Record {
    /// Files one received message; `false` if the connection is gone.
    fn take(&mut self, incoming: Incoming) -> bool {
        match incoming {
            Incoming::Message(message) => {
                self.file(message);
                true
            }
            Incoming::Closed(code) => {
                self.disconnected = Some(format!("closed with {code:?}"));
                false
            }
            Incoming::Failed(why) => {
                self.disconnected = Some(why);
                false
            }
        }
    }

    fn file(&mut self, message: Value) {
        let at = Instant::now();
        let data = &message["data"];
        match message["event"].as_str() {
            Some("stamp:msg") if message.get("id").is_none() => {
                let fields = (
                    data["from"].as_str(),
                    data["seq"].as_u64(),
                    data["version"].as_str(),
                    data["count"].as_u64(),
                );
                match fields {
                    (Some(from), Some(seq), Some(version), Some(count))
                        if data.as_object().map(|o| o.len()) == Some(4) =>
                    {
                        self.got.push(Got {
                            from: from.to_owned(),
                            seq,
                            version: version.to_owned(),
                            count,
                            at,
                        })
                    }
                    _ => self.unexpected.push(message),
                }
            }
            // Churners coming and going.
            Some("room:peer-joined" | "room:peer-left") if message.get("id").is_none() => {}
            Some("error") => self.errors.push(message),
            _ => self.unexpected.push(message),
        }
    }

    /// Files a failure of the run's choreography.
    fn note(&mut self, outcome: Result<(), String>) {
        if let Err(why) = outcome {
            self.unexpected.push(json!(why));
        }
    }

    /// Sends the handshake's request with `id` and files everything up to
    /// its answer.
    async fn sync(&mut self, client: &mut Client, id: &str, shape: &Shape) {
        if self.disconnected.is_some() {
            return;
        }
        let (request, answer) = shape.handshake.events();
        client
            .send_json(json!({ "event": request, "id": id }))
            .await;
        let done = timeout(shape.drain, async {
            loop {
                match client.next_incoming().await {
                    Incoming::Message(m) if m["event"] == answer && m["id"] == id => return,
                    incoming => {
                        if !self.take(incoming) {
                            return;
                        }
                    }
                }
            }
        })
        .await;
        if done.is_err() {
            self.disconnected = Some(format!("no {answer} for {id} within {:?}", shape.drain));
        }
    }
}

/// One live-version interval: the build may handle events from `from`
/// (the request that started its swap) until `until` (the end of its run:
/// the next swap's answer on one node, the moment every node lists the
/// next version in a cluster).
pub struct Live {
    /// The build's version, for the reports.
    pub version: &'static str,
    pub mark: &'static str,
    pub admits_guests: bool,
    pub from: Option<Instant>,
    pub until: Option<Instant>,
}

impl Live {
    fn of(build: &Build, from: Option<Instant>) -> Live {
        Live {
            version: build.version,
            mark: build.mark,
            admits_guests: build.admits_guests,
            from,
            until: None,
        }
    }

    /// Whether a client with `role` may join a room while it is live.
    fn admits(&self, role: &str) -> bool {
        self.admits_guests || role != GUEST
    }
}

/// The windows of `live` that may have been live at some moment between
/// `sent` and `received`.
fn live_between(live: &[Live], sent: Instant, received: Instant) -> Vec<usize> {
    live.iter()
        .enumerate()
        .filter(|(_, l)| {
            l.from.is_none_or(|from| from <= received) && l.until.is_none_or(|until| until >= sent)
        })
        .map(|(i, _)| i)
        .collect()
}

/// What a run saw: every connection's record and the live windows.
pub struct Run {
    pub records: Vec<Record>,
    pub live: Vec<Live>,
}

impl Shape {
    /// Fills the rooms on `servers`, starts the traffic and the churners,
    /// and makes [`SWAPS`] swaps to `second`, `first`, `second`, ... (the
    /// servers start on `first`) with [`SETTLE`] of traffic before, between
    /// and after them; then stops the clients and collects their records.
    ///
    /// `swap(i, build)` makes swap `i` and returns when the previous
    /// version's run ended: the version is live from the moment `swap` is
    /// called until that instant of the next swap.
    pub async fn run(
        &self,
        servers: &[SocketAddr],
        first: &Build,
        second: &Build,
        swap: impl AsyncFnMut(usize, &Build) -> Instant,
    ) -> Run {
        self.run_swaps(SWAPS, servers, first, second, swap).await
    }

    /// [`Shape::run`] with `swaps` swaps: a change that can be made only
    /// once a run (a canary's abort) is one.
    pub async fn run_swaps(
        &self,
        swaps: usize,
        servers: &[SocketAddr],
        first: &Build,
        second: &Build,
        mut swap: impl AsyncFnMut(usize, &Build) -> Instant,
    ) -> Run {
        let shape = *self;
        // Each room's members join in turn, the rooms at once.
        let mut joining = JoinSet::new();
        for room in 0..shape.rooms {
            let servers = servers.to_vec();
            joining.spawn(async move {
                let mut clients = Vec::new();
                for member in 0..shape.per_room {
                    let addr = servers[(room + member) % servers.len()];
                    let mut client =
                        Client::authed_as_addr(addr, &format!("user-{room}-{member}"), MEMBER)
                            .await;
                    client.join(&format!("load-{room}")).await;
                    clients.push(client);
                }
                (room, clients)
            });
        }
        let mut rooms: BTreeMap<usize, Vec<Client>> = BTreeMap::new();
        while let Some(joined) = joining.join_next().await {
            let (room, clients) = joined.expect("a room failed to fill");
            rooms.insert(room, clients);
        }
        let members: Arc<Vec<Vec<String>>> = Arc::new(
            rooms
                .values()
                .map(|clients| clients.iter().map(|c| c.client_id.clone()).collect())
                .collect(),
        );

        let (stop_tx, stop) = watch::channel(false);
        let barrier = Arc::new(Barrier::new(shape.rooms * shape.per_room + shape.churners));
        let mut tasks = JoinSet::new();
        let mut n = 0u32;
        for (room, clients) in rooms {
            for client in clients {
                let peers: Vec<String> = members[room]
                    .iter()
                    .filter(|id| **id != client.client_id)
                    .cloned()
                    .collect();
                // Spread the sends over the period.
                let phase = SEND_EVERY * (n % 10) / 10;
                n += 1;
                let (stop, barrier) = (stop.clone(), Arc::clone(&barrier));
                tasks.spawn(async move {
                    vec![traffic(shape, client, room, peers, stop, barrier, phase).await]
                });
            }
        }
        for index in 0..shape.churners {
            let (stop, barrier, members) =
                (stop.clone(), Arc::clone(&barrier), Arc::clone(&members));
            let addr = servers[index % servers.len()];
            tasks.spawn(churn(shape, addr, index, members, stop, barrier));
        }

        // The swaps, each awaited, with traffic in between.
        let mut live = vec![Live::of(first, None)];
        sleep(SETTLE).await;
        for i in 0..swaps {
            let next = if i % 2 == 0 { second } else { first };
            let requested = Instant::now();
            let ended = swap(i, next).await;
            live.last_mut().expect("one live version").until = Some(ended);
            live.push(Live::of(next, Some(requested)));
            sleep(SETTLE).await;
        }
        stop_tx.send(true).expect("clients are listening");

        let mut records = Vec::new();
        let all_done = timeout(shape.finish, async {
            while let Some(done) = tasks.join_next().await {
                records.extend(done.expect("a client task panicked"));
            }
        })
        .await;
        assert!(all_done.is_ok(), "the clients did not finish");
        Run { records, live }
    }

    /// Every check of the run at once, so that one failure report says all.
    pub fn check(&self, run: &Run) {
        let Run { records, live } = run;
        let mut problems: Vec<String> = Vec::new();
        let mut report = |problem: String| {
            if problems.len() < 40 {
                problems.push(problem);
            }
        };

        for record in records {
            if let Some(how) = &record.disconnected {
                report(format!("client {} disconnected: {how}", record.client_id));
            }
            for error in &record.errors {
                report(format!("client {} got an error: {error}", record.client_id));
            }
            for message in &record.unexpected {
                report(format!("client {} got {message}", record.client_id));
            }
        }

        // The last version, and when every server ran it.
        let last = live.last().expect("one live version");
        let last_everywhere = live
            .iter()
            .rev()
            .nth(1)
            .and_then(|l| l.until)
            .expect("the last swap's end");

        // When each message was sent: (from, to, seq) → time.
        let mut sent_at: HashMap<(&str, &str, u64), Instant> = HashMap::new();
        // What each target should have received from each sender, in order.
        let mut expected: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
        for record in records {
            for sent in &record.sent {
                sent_at.insert((&record.client_id, &sent.to, sent.seq), sent.at);
                expected
                    .entry((&record.client_id, &sent.to))
                    .or_default()
                    .push(sent.seq);
            }
        }
        let mut received: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
        let mut counts: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        let mut strict_per_window = vec![0usize; live.len()];
        let (mut total, mut after_last) = (0usize, 0usize);
        for record in records {
            for got in &record.got {
                total += 1;
                received
                    .entry((&got.from, &record.client_id))
                    .or_default()
                    .push(got.seq);
                counts.entry(record.room).or_default().push(got.count);
                let Some(sent) =
                    sent_at.get(&(got.from.as_str(), record.client_id.as_str(), got.seq))
                else {
                    report(format!(
                        "client {} got seq {} from {}, which was never sent to it",
                        record.client_id, got.seq, got.from
                    ));
                    continue;
                };
                if *sent > last_everywhere {
                    after_last += 1;
                    if got.version != last.mark {
                        report(format!(
                            "{} → {} seq {}, sent after the last swap reached every server, \
                             stamped {:?}, not {:?}",
                            got.from, record.client_id, got.seq, got.version, last.mark
                        ));
                    }
                }
                // The versions that may have been live (on some server) at
                // some moment between the send and the receipt.
                let possible = live_between(live, *sent, got.at);
                let marks: Vec<&str> = possible.iter().map(|&i| live[i].mark).collect();
                if !marks.contains(&got.version.as_str()) {
                    report(format!(
                        "{} → {} seq {} stamped {:?}, but only {marks:?} could be live between \
                         its send and its receipt",
                        got.from, record.client_id, got.seq, got.version
                    ));
                }
                if let [only] = possible[..] {
                    strict_per_window[only] += 1;
                }
            }
        }

        for (pair, sent) in &expected {
            let got = received.get(pair).map(Vec::as_slice).unwrap_or_default();
            if got != sent.as_slice() {
                report(format!(
                    "{} → {}: sent {} messages, received {} (first difference at index {}): \
                     sent {:?}…, received {:?}…",
                    pair.0,
                    pair.1,
                    sent.len(),
                    got.len(),
                    sent.iter().zip(got).take_while(|(s, g)| s == g).count(),
                    &sent[..sent.len().min(10)],
                    &got[..got.len().min(10)],
                ));
            }
        }
        for pair in received.keys() {
            if !expected.contains_key(pair) {
                report(format!("{} → {}: received but never sent", pair.0, pair.1));
            }
        }

        // The room counter lives in host storage (on the room's owner):
        // across all swaps every message of a room got its own count, 1, 2,
        // 3, ... with no gap.
        for (room, mut room_counts) in counts {
            room_counts.sort_unstable();
            let n = room_counts.len() as u64;
            if room_counts != (1..=n).collect::<Vec<u64>>() {
                let dups = room_counts.windows(2).filter(|w| w[0] == w[1]).count();
                report(format!(
                    "room load-{room}: the {n} counts are not 1..={n} ({dups} duplicates, max {:?})",
                    room_counts.last()
                ));
            }
        }

        // Every churner's join was answered as a version that may have been
        // live between the request and the answer decides.
        let mut guests_per_window = vec![0usize; live.len()];
        for record in records {
            let Some(join) = &record.join else { continue };
            let possible = live_between(live, join.sent, join.answered);
            let admitted = join.refused.is_none();
            if !possible
                .iter()
                .any(|&i| live[i].admits(join.role) == admitted)
            {
                let versions: Vec<&str> = possible.iter().map(|&i| live[i].version).collect();
                report(format!(
                    "{} ({}) was {} joining load-{}, unlike every version that could be live \
                     between its request and the answer: {versions:?}",
                    record.client_id,
                    join.role,
                    join.refused.as_deref().unwrap_or("admitted"),
                    record.room
                ));
            }
            if let Some(code) = join.refused.as_deref().filter(|code| *code != "FORBIDDEN") {
                report(format!(
                    "{} ({}) was refused joining load-{} with {code}, not FORBIDDEN",
                    record.client_id, join.role, record.room
                ));
            }
            if join.role == GUEST
                && let [only] = possible[..]
            {
                guests_per_window[only] += 1;
            }
        }

        // The run must have tested something: traffic in every window in
        // which exactly one version can have been live, and, when the builds
        // differ on guests, guests' joins decided wholly inside windows of
        // each.
        let sent_total: usize = expected.values().map(Vec::len).sum();
        if sent_total < self.min_sent {
            report(format!("only {sent_total} messages were sent"));
        }
        // Each churner visit is one record beyond the traffic clients' (and
        // each churner's closing record).
        let visits = records
            .len()
            .saturating_sub(self.rooms * self.per_room + self.churners);
        if visits < self.churners * 3 {
            report(format!("only {visits} churner visits to rooms"));
        }
        for (i, strict) in strict_per_window.iter().enumerate() {
            if *strict < self.min_per_window {
                report(format!(
                    "only {strict} messages fell wholly inside live window {i} ({})",
                    live[i].mark
                ));
            }
        }
        // On a busy machine a window may see no guest at all: a test that
        // needs each swap's policy checked asks it itself.
        if live
            .iter()
            .any(|l| l.admits_guests != live[0].admits_guests)
        {
            for admits in [true, false] {
                let decided: usize = live
                    .iter()
                    .zip(&guests_per_window)
                    .filter(|(l, _)| l.admits_guests == admits)
                    .map(|(_, guests)| guests)
                    .sum();
                if decided == 0 {
                    let policy = if admits { "admits" } else { "refuses" };
                    report(format!(
                        "no guest's join fell wholly inside a window of a build that {policy} \
                         guests"
                    ));
                }
            }
        }
        if after_last < self.min_after_last {
            report(format!(
                "only {after_last} messages were sent after the last swap reached every server"
            ));
        }

        eprintln!(
            "{}: {sent_total} messages sent, {total} received, {visits} churner visits, {} \
             swaps; {after_last} sent after the last swap reached every server; messages \
             wholly inside each live window: {strict_per_window:?}; guests' joins wholly \
             inside each: {guests_per_window:?}",
            self.name,
            live.len() - 1
        );
        assert!(
            problems.is_empty(),
            "{total} messages received; problems (at most 40 shown):\n{}",
            problems.join("\n")
        );
    }
}

/// A traffic client: sends `stamp:msg` to its room peers in turn, with a
/// growing seq, until told to stop; then makes sure it has everything.
///
/// The end: each client syncs (the [`Handshake`]), so everything it sent
/// has been handled; once all have (the barrier), each syncs again: every
/// relay to it was queued before that second answer, so it has received
/// them all when the answer arrives.
async fn traffic(
    shape: Shape,
    mut client: Client,
    room: usize,
    peers: Vec<String>,
    mut stop: watch::Receiver<bool>,
    barrier: Arc<Barrier>,
    phase: Duration,
) -> Record {
    let mut record = Record {
        client_id: client.client_id.clone(),
        room,
        ..Record::default()
    };
    let mut tick = interval(SEND_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    sleep(phase).await;
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let to = peers[seq as usize % peers.len()].clone();
                let at = Instant::now();
                client
                    .send_json(json!({ "event": "stamp:msg", "data": { "to": to, "seq": seq } }))
                    .await;
                record.sent.push(Sent { to, seq, at });
                seq += 1;
            }
            incoming = client.next_incoming() => {
                if !record.take(incoming) {
                    break;
                }
            }
        }
    }
    record.sync(&mut client, "drain-sent", &shape).await;
    record.note(wait_for_all(&barrier, shape.drain).await);
    record.sync(&mut client, "drain-received", &shape).await;
    // Keep the connection open until every client is done.
    record.note(wait_for_all(&barrier, shape.drain).await);
    record
}

/// A churner: on the server at `addr`, connects, visits a traffic room
/// (see [`visit`]), then another, ... and reconnects every three rooms,
/// until told to stop. Every other churner is a [`GUEST`].
async fn churn(
    shape: Shape,
    addr: SocketAddr,
    index: usize,
    members: Arc<Vec<Vec<String>>>,
    stop: watch::Receiver<bool>,
    barrier: Arc<Barrier>,
) -> Vec<Record> {
    let mut records = Vec::new();
    let mut seq = 0u64;
    let mut round = index;
    let role = if index % 2 == 1 { GUEST } else { MEMBER };
    while !*stop.borrow() {
        let mut client = Client::authed_as_addr(addr, &format!("churner-{index}"), role).await;
        for _ in 0..3 {
            let room = (round * 7) % shape.rooms;
            round += 1;
            let to = members[room][seq as usize % shape.per_room].clone();
            records.push(visit(&mut client, role, room, to, seq, shape.drain).await);
            seq += 1;
            if *stop.borrow() {
                break;
            }
        }
        client.close(1000).await;
    }
    // Every message it sent has been handled (it got `room:left` after).
    let mut last = Record {
        client_id: format!("churner-{index}"),
        ..Record::default()
    };
    last.note(wait_for_all(&barrier, shape.drain).await);
    last.note(wait_for_all(&barrier, shape.drain).await);
    records.push(last);
    records
}

/// Asks to join traffic room `room` as a client with `role`; let in, sends
/// `stamp:msg` `seq` to member `to` and leaves again, reading up to
/// `room:left` (which comes after that message was handled).
async fn visit(
    client: &mut Client,
    role: &'static str,
    room: usize,
    to: String,
    seq: u64,
    drain: Duration,
) -> Record {
    let mut record = Record {
        client_id: client.client_id.clone(),
        room,
        ..Record::default()
    };
    let sent = Instant::now();
    client
        .send_json(json!({ "event": "room:join", "id": "join", "data": { "roomId": format!("load-{room}") } }))
        .await;
    let (answer, answered) = loop {
        let message = client.recv_within(drain).await;
        if message["id"] == "join" {
            break (message, Instant::now());
        }
        record.file(message);
    };
    let refused = match answer["event"].as_str() {
        Some("room:joined") => None,
        Some("error") => Some(
            answer["data"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => {
            record.unexpected.push(answer);
            return record;
        }
    };
    let admitted = refused.is_none();
    record.join = Some(Join {
        role,
        sent,
        answered,
        refused,
    });
    if !admitted {
        return record;
    }
    let at = Instant::now();
    client
        .send_json(json!({ "event": "stamp:msg", "data": { "to": to, "seq": seq } }))
        .await;
    record.sent.push(Sent { to, seq, at });
    sleep(Duration::from_millis(20)).await;
    client
        .send_json(json!({ "event": "room:leave", "id": "leave" }))
        .await;
    loop {
        let message = client.recv_within(drain).await;
        if message["event"] == "room:left" && message["id"] == "leave" {
            break;
        }
        record.file(message);
    }
    record
}

/// Waits at the barrier; an error if the others never came (some task
/// failed), so that the run still ends and says why.
async fn wait_for_all(barrier: &Barrier, limit: Duration) -> Result<(), String> {
    timeout(limit, barrier.wait())
        .await
        .map(drop)
        .map_err(|_| format!("gave up waiting for the other clients after {limit:?}"))
}
