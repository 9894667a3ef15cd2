//! Node leases and what follows from them. Every heartbeat a node renews
//! its lease (a key that expires after `lease_ms`, holding its load) and
//! reads which nodes still hold theirs. A node whose lease has gone is
//! dead. Its clients were cut off unexpectedly, so their sessions are
//! suspended, as on one node: each survivor makes the proxies of the dead
//! node's clients *orphans* (members whose frames queue on the room's
//! owner) until their sessions are resumed on another node or their grace
//! period, counted from the dead node's last heartbeat plus its lease,
//! ends with `room:peer-left`. The rooms it owned are taken over by the
//! first survivor to bury it (or one with members there that claims them
//! first), which rebuilds them from the mirror.
//!
//! After the connection to Redis comes back, or a write to it failed, a
//! node first re-asserts what it owns (Redis may have restarted empty, or
//! lost the write) and declares nobody dead for one lease, so that no node
//! is buried for a gap that was Redis's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::RwLock;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::inbound::Inbound;
use super::link::kv_field;
use super::wire::{self, Seat};
use super::{Claimed, Cluster, NodeId, recordings};
use crate::ids::{ClientId, RoomId};
use crate::plugins::unix_millis;
use crate::router::Router;
use crate::state::{self, Adopted, Identity, Peer, Remote};

/// The nodes alive at the last heartbeat.
#[derive(Default)]
pub(crate) struct Live {
    nodes: RwLock<HashSet<NodeId>>,
    /// Every listed node's last heartbeat, in Unix milliseconds: a dead
    /// node's tells when its clients' sessions end.
    beats: RwLock<HashMap<NodeId, u64>>,
    /// Set when the connection to Redis dropped or a write to it failed:
    /// Redis may have lost what this node wrote, and the next heartbeat
    /// re-asserts this node's rooms and clients.
    unsure: AtomicBool,
    /// When this node's lease was last renewed, in Unix milliseconds.
    renewed_at: AtomicU64,
}

impl Live {
    pub(crate) fn writes_unsure(&self) {
        self.unsure.store(true, Relaxed);
    }

    /// Whether this node's lease has run out since it was last renewed:
    /// the other nodes then count it dead and bury its clients, so it
    /// takes no new ones until a heartbeat gets through again.
    pub(crate) fn lease_lost(&self, lease: Duration) -> bool {
        let renewed = self.renewed_at.load(Relaxed);
        renewed != 0 && unix_millis().saturating_sub(renewed) > lease.as_millis() as u64
    }

    pub(super) fn contains(&self, node: &NodeId) -> bool {
        self.nodes.read().contains(node)
    }
}

impl Cluster {
    /// When the sessions of a dead node's clients end unresumed, as an
    /// instant and in Unix milliseconds: a grace period after its lease
    /// ran out, counted from its last heartbeat (it died no earlier).
    fn sessions_end(&self, dead: &NodeId) -> (Instant, u64) {
        let now = unix_millis();
        let lease = self.settings.lease_ms;
        let last_beat = self.nodes.beats.read().get(dead).copied();
        let died = last_beat.unwrap_or_else(|| now.saturating_sub(lease));
        let end = died + lease + self.orphans.grace.as_millis() as u64;
        let left = Duration::from_millis(end.saturating_sub(now));
        (Instant::now() + left, end)
    }
}

/// What a node's lease key holds.
#[derive(Serialize, Deserialize)]
struct Load {
    connections: usize,
    proxies: usize,
    rooms: usize,
    #[serde(rename = "heartbeatAt")]
    heartbeat_at: u64,
}

/// A live node, for `GET /admin/nodes`.
#[derive(Serialize)]
pub(crate) struct NodeInfo {
    id: NodeId,
    #[serde(rename = "self")]
    this: bool,
    #[serde(flatten)]
    load: Load,
}

pub(crate) async fn run(cluster: Arc<Cluster>, cx: Arc<Inbound>, shutdown: CancellationToken) {
    let period = Duration::from_millis(cluster.settings.heartbeat_ms);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // After a reconnect nobody is buried until one lease after this node's
    // first good heartbeat: by then every live node has renewed its lease
    // in a Redis that may have restarted empty.
    let lease = Duration::from_millis(cluster.settings.lease_ms);
    let mut quiet_until = Instant::now();
    let mut reconnecting = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        end_orphans(&cx);
        if cluster.nodes.unsure.swap(false, Relaxed) {
            reconnecting = true;
        }
        if reconnecting && !reassert(&cluster, &cx).await {
            continue;
        }
        match beat(&cluster, &cx).await {
            Ok(dead) => {
                if std::mem::take(&mut reconnecting) {
                    quiet_until = Instant::now() + lease;
                }
                if Instant::now() >= quiet_until {
                    for node in dead {
                        bury(&cluster, &cx, &node).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!("cluster: heartbeat: {e}");
                let stalled = e
                    .downcast_ref::<redis::RedisError>()
                    .is_some_and(redis::RedisError::is_timeout);
                if stalled {
                    cluster.renew_redis().await;
                }
            }
        }
    }
    // Leaving: the others need not wait for the lease to end.
    let mut redis = cluster.redis();
    let _: Result<(), _> = redis::pipe()
        .del(cluster.keys.node(&cluster.me))
        .zrem(cluster.keys.nodes(), cluster.me.as_str())
        .query_async(&mut redis)
        .await;
}

/// Renews this node's lease and reads the others'; returns the nodes
/// found dead since the last beat.
pub(crate) async fn beat(cluster: &Cluster, cx: &Inbound) -> anyhow::Result<Vec<NodeId>> {
    let keys = &cluster.keys;
    let (connections, proxies, rooms) = cx.hub.counts();
    let load = Load {
        connections,
        proxies,
        rooms,
        heartbeat_at: unix_millis(),
    };
    let mut redis = cluster.redis();
    let (listed,): (Vec<(String, f64)>,) = redis::pipe()
        .set_options(
            keys.node(&cluster.me),
            serde_json::to_string(&load)?,
            redis::SetOptions::default()
                .with_expiration(redis::SetExpiry::PX(cluster.settings.lease_ms)),
        )
        .ignore()
        .zadd(keys.nodes(), cluster.me.as_str(), load.heartbeat_at)
        .ignore()
        .zrange_withscores(keys.nodes(), 0, -1)
        .query_async(&mut redis)
        .await?;
    // Counted from before the write: the lease runs out no sooner.
    cluster.nodes.renewed_at.store(load.heartbeat_at, Relaxed);
    let listed: Vec<(NodeId, u64)> = listed
        .iter()
        .filter_map(|(id, beat)| Some((NodeId::parse(id)?, *beat as u64)))
        .collect();
    cluster.nodes.beats.write().extend(listed.iter().cloned());
    let listed: Vec<NodeId> = listed.into_iter().map(|(node, _)| node).collect();
    let mut exists = redis::pipe();
    for node in &listed {
        exists.exists(keys.node(node));
    }
    let alive: Vec<bool> = exists.query_async(&mut redis).await?;
    let now: HashSet<NodeId> = listed
        .iter()
        .zip(alive)
        .filter(|(_, alive)| *alive)
        .map(|(node, _)| node.clone())
        .collect();
    let listed_dead = listed.iter().filter(|node| !now.contains(*node));
    let mut known = cluster.nodes.nodes.write();
    let vanished = known.iter().filter(|node| !now.contains(*node));
    let dead: HashSet<NodeId> = listed_dead
        .chain(vanished)
        .filter(|node| **node != cluster.me)
        .cloned()
        .collect();
    cluster.metrics.set_nodes(now.len());
    *known = now;
    Ok(dead.into_iter().collect())
}

/// Everything that follows a node's death, on this node.
async fn bury(cluster: &Cluster, cx: &Arc<Inbound>, dead: &NodeId) {
    let (until, until_ms) = cluster.sessions_end(dead);
    let mut redis = cluster.redis();
    // Whoever takes the node off the list first takes its rooms over, then
    // reaps what is left of it.
    let first: i64 = redis
        .zrem(cluster.keys.nodes(), dead.as_str())
        .await
        .unwrap_or(0);
    if first == 1 {
        cluster.metrics.node_died();
        take_over_rooms_of(cluster, &cx.router, dead).await;
        let reaped: redis::RedisResult<i64> = cluster
            .keys
            .reap(dead, until_ms)
            .query_async(&mut redis)
            .await;
        tracing::warn!(node = %dead, reaped = ?reaped, "cluster: a node died");
    }
    recordings::forget_node(cluster, cx.router.recorder(), dead, first == 1).await;
    for client in cx.hub.proxies_of(dead) {
        if !cx
            .hub
            .orphan(client, until.into_std(), cluster.orphans.queue)
        {
            cx.router.disconnect(client);
        }
    }
    let mut rooms: HashMap<RoomId, Vec<ClientId>> = HashMap::new();
    for (client, room) in cx.hub.away_at(dead) {
        match room {
            Some(room) => rooms.entry(room).or_default().push(client),
            // Its join was on the way to the dead node: it is in no room.
            None => cx.hub.set_away(client, None, None),
        }
    }
    for (room, clients) in rooms {
        match cluster.claim(&room).await {
            Ok(Claimed::TookOver) => take_over(cluster, &cx.router, &room).await,
            Ok(Claimed::Owner(owner)) if owner != cluster.me => {
                for client in clients {
                    cx.hub
                        .set_away(client, Some(owner.clone()), Some(room.clone()));
                    // A client whose session was resumed here from the
                    // dead node is an orphan on the new owner until then.
                    let rehome = wire::Message::Rehome {
                        client,
                        edge: cluster.me.clone(),
                    };
                    cluster.link.bus.publish(&owner, rehome);
                }
            }
            Ok(Claimed::Owner(_)) => take_over(cluster, &cx.router, &room).await,
            Ok(Claimed::Full) | Err(_) => {
                tracing::warn!(%room, "cluster: could not take over a dead node's room; its members here leave it");
                for client in clients {
                    cx.hub.set_away(client, None, None);
                }
            }
        }
    }
    cluster.nodes.beats.write().remove(dead);
    let cx = Arc::clone(cx);
    tokio::spawn(async move {
        tokio::time::sleep_until(until).await;
        end_orphans(&cx);
    });
}

/// Ends the sessions of orphans whose time is up, or whose queue
/// overflowed: their rooms hear `room:peer-left`, and their records go,
/// so that a resume of one is `RESUME_FAILED` as on one node.
fn end_orphans(cx: &Inbound) {
    for client in cx.hub.orphans_due(Instant::now().into_std()) {
        tracing::info!(%client, "session of a dead node's client ended unresumed");
        cx.router.disconnect(client);
        cx.cluster.link.directory(client, None);
    }
}

/// Takes over every room the dead node owned that nobody has yet: even a
/// room whose members were all on it lives on until their sessions end,
/// so that they can resume into it.
async fn take_over_rooms_of(cluster: &Cluster, router: &Router, dead: &NodeId) {
    let mut redis = cluster.redis();
    let rooms: Vec<String> = match redis.smembers(cluster.keys.node_rooms(dead)).await {
        Ok(rooms) => rooms,
        Err(e) => return tracing::warn!(node = %dead, "cluster: listing a dead node's rooms: {e}"),
    };
    for room in rooms.iter().filter_map(|room| RoomId::parse(room)) {
        let took: redis::RedisResult<i64> = cluster
            .keys
            .take(&room, dead, &cluster.me)
            .query_async(&mut redis)
            .await;
        match took {
            Ok(1) => take_over(cluster, router, &room).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(%room, "cluster: taking over a dead node's room: {e}"),
        }
    }
}

/// A room's mirror as read: seats by client, storage by field, timers by
/// id.
type Mirror = (
    HashMap<u64, String>,
    HashMap<String, String>,
    HashMap<u64, String>,
);

/// Rebuilds `room`, just claimed from a dead owner, from its mirror: its
/// members on live nodes stay, in their order, with the room's storage and
/// pending timers; members of dead nodes stay as orphans until their
/// sessions end; the others leave it (`room:peer-left`); the members'
/// edges hear that the room lives here now.
pub(crate) async fn take_over(cluster: &Cluster, router: &Router, room: &RoomId) {
    let hub = router.hub();
    let mut redis = cluster.redis();
    let read: redis::RedisResult<Mirror> = redis::pipe()
        .hgetall(cluster.keys.members(room))
        .hgetall(cluster.keys.kv(room))
        .hgetall(cluster.keys.timers(room))
        .query_async(&mut redis)
        .await;
    let (seats, kv, timers) = match read {
        Ok(read) => read,
        Err(e) => return tracing::warn!(%room, "cluster: reading a room to take over: {e}"),
    };
    let seats = wire::seats(seats);
    let _guard = hub.lock_room(room);
    let mut kept = Vec::new();
    let mut orphans = Vec::new();
    let mut moved = Vec::new();
    let mut gone = Vec::new();
    let mut reseat = Vec::new();
    for (client, seat) in seats {
        if hub.is_local(client) {
            // Its seat names the dead node it resumed from.
            if seat.node != cluster.me {
                reseat.push(client);
            }
        } else if seat.node == cluster.me {
            gone.push(client);
            continue;
        } else if cluster.nodes.contains(&seat.node) {
            moved.push((client, seat.node.clone()));
        } else {
            orphans.push((client, cluster.sessions_end(&seat.node).0));
        }
        kept.push(adopted(client, seat));
    }
    let kv = kv
        .into_iter()
        .filter_map(|(field, value)| {
            let (plugin, key) = kv_field(&field)?;
            Some((plugin.to_owned(), key.to_owned(), value))
        })
        .collect();
    hub.adopt_room(room, kept, kv);
    for (client, until) in &orphans {
        hub.orphan(*client, until.into_std(), cluster.orphans.queue);
    }
    for client in &gone {
        cluster.link.seat(room, *client, None);
        hub.broadcast(room, &state::peer_left(room, *client, "disconnected"), None);
    }
    for client in reseat {
        hub.reseat_local(client);
    }
    for (id, timer) in timers {
        match serde_json::from_str::<wire::TimerRecord>(&timer) {
            Ok(t) => router.restore_timer(room, id, &t.plugin, t.tag, t.due),
            Err(e) => tracing::warn!(%room, "cluster: a timer record that does not parse: {e}"),
        }
    }
    for (client, edge) in moved {
        cluster
            .link
            .moved_to(&edge, client, &cluster.me, Some(room));
    }
    cluster.metrics.took_over();
    tracing::info!(%room, left = gone.len(), orphans = orphans.len(), "cluster: took a room over");
}

fn adopted(client: ClientId, seat: Seat) -> Adopted {
    let metadata: Arc<RawValue> = Arc::from(seat.metadata);
    Adopted {
        peer: Peer {
            client_id: client,
            user_id: seat.member.user_id.as_str().into(),
            metadata,
        },
        seq: seat.seq,
        node: seat.node,
        identity: Arc::new(Identity::from(seat.member)),
    }
}

/// After a reconnect: claims this node's open rooms again and writes their
/// mirror and the node's entries in the client directory back, in case
/// Redis restarted empty. False if Redis is not back yet.
async fn reassert(cluster: &Cluster, cx: &Inbound) -> bool {
    let hub = &cx.hub;
    for client in hub.local_clients() {
        cx.router.enter_directory(client);
    }
    for (room, _) in hub.rooms() {
        match cluster.claim(&room).await {
            Ok(Claimed::Owner(owner)) if owner == cluster.me => hub.remirror(&room),
            Ok(Claimed::TookOver) => hub.remirror(&room),
            Ok(other) => {
                tracing::error!(%room, ?other, "cluster: another node claimed one of this node's rooms while Redis was away")
            }
            Err(e) => {
                tracing::warn!(%room, "cluster: re-asserting a room: {e}");
                return false;
            }
        }
    }
    true
}

/// The live nodes, with the load each wrote with its last heartbeat.
pub(crate) async fn list(cluster: &Cluster) -> anyhow::Result<Vec<NodeInfo>> {
    let mut redis = cluster.redis();
    let ids: Vec<String> = redis.zrange(cluster.keys.nodes(), 0, -1).await?;
    let ids: Vec<NodeId> = ids.iter().filter_map(|id| NodeId::parse(id)).collect();
    if ids.is_empty() {
        // Right after Redis restarted, before any heartbeat.
        return Ok(Vec::new());
    }
    let mut get = redis::pipe();
    for id in &ids {
        get.get(cluster.keys.node(id));
    }
    let loads: Vec<Option<String>> = get.query_async(&mut redis).await?;
    let mut nodes: Vec<NodeInfo> = ids
        .into_iter()
        .zip(loads)
        .filter_map(|(id, load)| {
            let load = serde_json::from_str(&load?).ok()?;
            Some(NodeInfo {
                this: id == cluster.me,
                id,
                load,
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    Ok(nodes)
}
