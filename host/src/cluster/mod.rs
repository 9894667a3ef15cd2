//! Cluster mode (docs/CLUSTER.md): several nodes sharing one Redis behave
//! as one server. Each room has one owner node, proven by a key in Redis
//! that is valid while the owner's lease lives; every event of the room is
//! handled there, in one order, with the room's plugin storage and timers.
//! A client's *edge* node (the one holding its socket) forwards its room
//! events to the owner and writes what comes back.
//!
//! - `keys`: key and channel names, and the ownership scripts.
//! - `bus`: the one ordered pipe of writes and publishes to Redis.
//! - `link`: what the hub and the router use (delivery to other nodes,
//!   the room mirror, forwarding).
//! - `inbound`: what arrives on this node's channel, dispatched.
//! - `nodes`: leases, heartbeats, the live node list, death and takeover.
//! - `swaps`: hot swaps and rollbacks reaching every node.
//! - `recordings`: a recording's file on one node, the others' calls sent
//!   to it.
//! - `shadows`: a shadow on every node, its figures added up.
//! - `wire`: the messages nodes exchange.

mod bus;
mod inbound;
mod keys;
mod link;
mod metrics;
mod nodes;
mod recordings;
mod shadows;
mod swaps;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::envelope::ErrorCode;
use crate::ids::{ClientId, RoomId};
use crate::net::{Inbox, QueueLimits};
use crate::plugins::Swapper;
use crate::router::{Router, Verdict};
use crate::session::{ResumeToken, Sessions};
use crate::state::Hub;
use crate::state::Identity;

pub(crate) use crate::state::NodeId;
pub(crate) use link::Link;
pub(crate) use metrics::BusMetrics;
pub(crate) use nodes::NodeInfo;

use bus::{Bus, Op};
use inbound::Subscription;
use keys::Keys;

/// How long a resume waits for the node that issued its token before it
/// takes the issuer for dead and the session from its record in Redis. A
/// live node answers within milliseconds; a dead one holds its lease for
/// up to `lease_ms` more, which a resume does not wait out.
const RESUME_TIMEOUT: Duration = Duration::from_secs(1);

/// How long connecting to Redis or an answer from it may take, and the
/// longest wait between reconnect attempts.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest wait between two attempts to reach Redis.
const RETRY_MAX: Duration = Duration::from_millis(250);

/// The settings of every connection to Redis but the connection manager's.
/// The settings of the connection manager: the same timeouts, and a
/// reconnect within [`REDIS_TIMEOUT`] of a drop.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_max_delay(REDIS_TIMEOUT)
}

fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
}

/// Waits between failed attempts to reach Redis: 50 ms, doubling to at
/// most [`RETRY_MAX`]. A Redis that is down costs a few connection
/// attempts a second, not a busy loop, and one that is back is found
/// within a quarter of a second.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn failing(&self) -> bool {
        self.failures > 0
    }

    /// After a success; true if it ends a run of failures.
    fn reset(&mut self) -> bool {
        std::mem::take(&mut self.failures) > 0
    }

    /// After a failure: how long to wait before the next attempt.
    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(50 << self.failures.min(3)).min(RETRY_MAX);
        self.failures += 1;
        wait
    }
}

/// What a node passes on of a client that moved on, and to whom.
#[derive(Clone)]
enum Passing {
    /// Its messages: its join went to the room's real owner.
    Events(NodeId),
    /// Frames for it: its session was resumed on that node.
    Frames(NodeId),
}

/// A node that did not answer in time.
struct Silent;

/// The answer to a claim on a room.
#[derive(Debug, PartialEq)]
pub(crate) enum Claimed {
    /// This node or another owns it.
    Owner(NodeId),
    /// This node has replaced a dead owner: the room must be rebuilt from
    /// the mirror before it is used.
    TookOver,
    /// The cluster holds `max_rooms` rooms.
    Full,
}

impl Claimed {
    fn from_script(room: &RoomId, answer: Value) -> Claimed {
        let parsed: Option<(String, i64)> = redis::from_redis_value(answer).ok();
        match parsed {
            Some((owner, 1)) if !owner.is_empty() => Claimed::TookOver,
            Some((owner, _)) if owner.is_empty() => Claimed::Full,
            Some((owner, _)) => match NodeId::parse(&owner) {
                Some(node) => Claimed::Owner(node),
                None => {
                    tracing::error!(%room, owner, "cluster: a room owner that is no node id");
                    Claimed::Full
                }
            },
            None => {
                tracing::error!(%room, "cluster: an unexpected answer to a claim");
                Claimed::Full
            }
        }
    }
}

/// This node's membership of a cluster.
pub(crate) struct Cluster {
    me: NodeId,
    keys: Arc<Keys>,
    link: Arc<Link>,
    /// For [`Cluster::renew_redis`].
    client: redis::Client,
    /// The heartbeat's and the reads' connection: see [`Cluster::redis`].
    redis: parking_lot::Mutex<ConnectionManager>,
    settings: config::Cluster,
    /// What a suspended session gets, for the members of dead nodes.
    orphans: Orphans,
    pub(crate) metrics: Arc<BusMetrics>,
    nodes: Arc<nodes::Live>,
    /// Clients whose traffic this node passes on for a while, to whom and
    /// since when: a join sent on to the room's real owner
    /// (`inbound::bounce`), a session resumed elsewhere.
    passing: parking_lot::Mutex<HashMap<ClientId, (Passing, Instant)>>,
    /// Resumes waiting for another node to hand a session over.
    resumes: parking_lot::Mutex<HashMap<u64, oneshot::Sender<Option<wire::Handed>>>>,
    /// Taken by [`Cluster::start`].
    started: parking_lot::Mutex<Option<Pending>>,
}

/// How long a member whose node died waits for its session to be resumed
/// elsewhere, and how much is queued for it meanwhile: what a suspended
/// session gets on one node.
#[derive(Clone, Copy)]
struct Orphans {
    grace: Duration,
    queue: QueueLimits,
}

/// What [`Cluster::connect`] opened and [`Cluster::start`] runs.
struct Pending {
    ops: mpsc::UnboundedReceiver<Op>,
    writer: bus::Writer,
    subscription: Subscription,
}

impl Cluster {
    /// Connects to Redis and subscribes to this node's channels; nothing
    /// is announced until [`Cluster::start`].
    pub(crate) async fn connect(
        settings: &config::Cluster,
        config: &config::Config,
    ) -> anyhow::Result<Arc<Cluster>> {
        let me = match &settings.node_id {
            Some(id) => NodeId::parse(id).context("`cluster.node_id` is not a valid node id")?,
            None => {
                NodeId::parse(&format!("{:016x}", rand::random::<u64>())).expect("hex is a node id")
            }
        };
        let info = settings
            .redis_url
            .as_str()
            .into_connection_info()
            .with_context(|| format!("cluster: `{}` is not a Redis URL", settings.redis_url))?;
        // RESP3 carries pub/sub pushes on a connection that takes commands
        // too, so one kind of connection does for everything.
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        // Without TCP_NODELAY a pipeline sent while the last is unanswered
        // waits for its acknowledgement (Nagle): a round trip per hop.
        let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
        let info = info.set_redis_settings(resp3).set_tcp_settings(tcp);
        let client = redis::Client::open(info)?;
        let connecting = || format!("cluster: connecting to Redis at {}", settings.redis_url);
        let redis = client
            .get_connection_manager_with_config(manager_config())
            .await
            .with_context(connecting)?;
        let keys = Arc::new(Keys::new(&settings.prefix, config.limits.max_rooms));
        let subscription = Subscription::open(client.clone(), [keys.channel(&me), keys.swaps()])
            .await
            .context("cluster: subscribing")?;
        let writer = bus::Writer::open(client.clone())
            .await
            .with_context(connecting)?;
        let (bus, ops) = Bus::new();
        let link = Arc::new(Link {
            me: me.clone(),
            bus,
        });
        Ok(Arc::new(Cluster {
            me,
            keys,
            link,
            client,
            redis: parking_lot::Mutex::new(redis),
            settings: settings.clone(),
            orphans: Orphans {
                grace: Duration::from_millis(config.session.resume_grace_ms),
                queue: QueueLimits {
                    messages: config.session.replay_limit,
                    bytes: config.limits.outbound_max_bytes,
                },
            },
            metrics: Arc::default(),
            nodes: Arc::default(),
            passing: parking_lot::Mutex::default(),
            resumes: parking_lot::Mutex::default(),
            started: parking_lot::Mutex::new(Some(Pending {
                ops,
                writer,
                subscription,
            })),
        }))
    }

    pub(crate) fn me(&self) -> &NodeId {
        &self.me
    }

    /// Whether this node takes new clients: not while its lease has run
    /// out (cut off from Redis, it is dead to the other nodes).
    pub(crate) fn accepting(&self) -> bool {
        let lease = Duration::from_millis(self.settings.lease_ms);
        !self.nodes.lease_lost(lease)
    }

    /// The connection for the heartbeat and for reads. The manager
    /// reconnects by itself when its connection drops, but a connection
    /// that stays open and answers nothing only times its commands out:
    /// the heartbeat then replaces it ([`Cluster::renew_redis`]).
    fn redis(&self) -> ConnectionManager {
        self.redis.lock().clone()
    }

    /// A new connection manager in place of one whose commands time out.
    async fn renew_redis(&self) {
        match self
            .client
            .get_connection_manager_with_config(manager_config())
            .await
        {
            Ok(manager) => {
                *self.redis.lock() = manager;
                tracing::info!("cluster: a new connection for the heartbeat");
            }
            Err(e) => tracing::debug!("cluster: a new connection for the heartbeat: {e}"),
        }
    }

    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Catches up with the cluster's plugin versions, then runs the bus,
    /// the inbound dispatch and the heartbeat until `shutdown`.
    pub(crate) async fn start(
        self: &Arc<Self>,
        router: Arc<Router>,
        hub: Arc<Hub>,
        swapper: Arc<Swapper>,
        sessions: Arc<Sessions>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let Some(Pending {
            ops,
            writer,
            subscription,
        }) = self.started.lock().take()
        else {
            anyhow::bail!("cluster: started twice");
        };
        tokio::spawn(bus::run(
            ops,
            writer,
            Arc::clone(&self.nodes),
            Arc::clone(&self.keys),
            self.me.clone(),
            Arc::clone(&self.metrics),
        ));
        swaps::catch_up(self, &swapper).await?;
        recordings::catch_up(self, router.recorder()).await?;
        swapper.announce_to(Arc::new(swaps::Announcer::new(self)));
        let cx = Arc::new(inbound::Inbound {
            cluster: Arc::clone(self),
            router,
            hub,
            swapper,
            sessions,
        });
        shadows::catch_up(&cx).await;
        nodes::beat(self, &cx).await?;
        tokio::spawn(inbound::run(Arc::clone(&cx), subscription));
        let shadows = Arc::clone(cx.router.shadows());
        tokio::spawn(shadows::report(Arc::clone(self), shadows, shutdown.clone()));
        tokio::spawn(nodes::run(Arc::clone(self), cx, shutdown));
        tracing::info!(node = %self.me, prefix = %self.settings.prefix, "cluster: joined");
        Ok(())
    }

    /// Asks Redis who owns `room`, claiming it for this node if nobody
    /// (alive) does.
    pub(crate) async fn claim(&self, room: &RoomId) -> Result<Claimed, redis::RedisError> {
        let (reply, answer) = oneshot::channel();
        self.link.bus.send(Op::Claim(room.clone(), reply));
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the cluster is shutting down",
            ))),
        }
    }

    /// Finds `room` an owner for the message `text` from `client` that
    /// needs one ([`Verdict::Claim`]), then routes the message again.
    /// `client` is a local client, or a proxy when another node sent the
    /// message here.
    pub(crate) async fn claim_for(
        &self,
        router: &Router,
        client: ClientId,
        mut room: RoomId,
        text: &str,
    ) {
        let hub = router.hub();
        // A claim won can be lost again before the message is routed (the
        // room opened and closed in between): try again, a few times.
        for _ in 0..3 {
            match self.claim(&room).await {
                Ok(Claimed::Owner(node)) if node == self.me => hub.claimed(room.clone()),
                Ok(Claimed::TookOver) => nodes::take_over(self, router, &room).await,
                Ok(Claimed::Owner(node)) => {
                    if hub.is_local(client) {
                        hub.set_away(client, Some(node), None);
                    } else {
                        inbound::bounce(self, hub, client, &node, text);
                        return;
                    }
                }
                Ok(Claimed::Full) => {
                    let message = "the server holds as many rooms as it may";
                    return router.refuse(client, text, ErrorCode::RoomFull, message);
                }
                Err(e) => {
                    tracing::warn!(%room, "cluster: claiming a room: {e}");
                    let message = "the cluster is unavailable; try again";
                    return router.refuse(client, text, ErrorCode::Internal, message);
                }
            }
            match router.reroute(client, text) {
                Verdict::Claim(again) => room = again,
                _ => return,
            }
        }
        router.refuse(
            client,
            text,
            ErrorCode::Internal,
            "the room could not be placed; try again",
        );
    }

    /// Whether `node` holds its lease now (not as of the last heartbeat: a
    /// node that has just started counts).
    async fn is_alive(&self, node: &NodeId) -> redis::RedisResult<bool> {
        let mut redis = self.redis();
        redis::AsyncCommands::exists(&mut redis, self.keys.node(node)).await
    }

    /// Passes `client`'s traffic on to `node` for a while.
    fn pass_on(&self, client: ClientId, passing: Passing) {
        let mut all = self.passing.lock();
        all.retain(|_, (_, since)| since.elapsed() < inbound::PASSING_KEPT);
        all.insert(client, (passing, Instant::now()));
    }

    /// Where this node passes `client`'s traffic on to, if it does.
    fn passing(&self, client: ClientId) -> Option<Passing> {
        let all = self.passing.lock();
        let (passing, since) = all.get(&client)?;
        (since.elapsed() < inbound::PASSING_KEPT).then(|| passing.clone())
    }

    /// Resumes on this node a session another node issued `token` for:
    /// asks that node for it and, when it comes, makes its client a client
    /// of this node with what was queued for it. An issuer that is dead,
    /// or silent for [`RESUME_TIMEOUT`], has its session taken from its
    /// record in Redis instead ([`Cluster::resume_orphan`]). `None` when
    /// the session is unknown, used or over.
    pub(crate) async fn resume(
        &self,
        router: &Router,
        token: &str,
        claimant: ClientId,
        queue: QueueLimits,
    ) -> Option<(ClientId, Inbox)> {
        let issuer = ResumeToken::issuer(token).filter(|node| *node != self.me)?;
        if self.is_alive(&issuer).await.ok()? {
            match self.ask_for(&issuer, token, claimant).await {
                Ok(Some(handed)) => return Some(self.adopt_handed(router, handed, queue)),
                Ok(None) => return None,
                Err(Silent) => {
                    tracing::warn!(node = %issuer, "cluster: a resume's issuer does not answer; taking the session from Redis");
                }
            }
        }
        self.resume_orphan(router, token, queue).await
    }

    /// Asks `issuer` to hand the session `token` names over; `Ok(None)`
    /// when it has no such session.
    async fn ask_for(
        &self,
        issuer: &NodeId,
        token: &str,
        claimant: ClientId,
    ) -> Result<Option<wire::Handed>, Silent> {
        let request = rand::random();
        let (reply, answer) = oneshot::channel();
        self.resumes.lock().insert(request, reply);
        let ask = wire::Message::Resume {
            token: token.to_owned(),
            claimant,
            edge: self.me.clone(),
            request,
        };
        self.link.bus.publish(issuer, ask);
        let handed = tokio::time::timeout(RESUME_TIMEOUT, answer).await;
        self.resumes.lock().remove(&request);
        match handed {
            Ok(Ok(handed)) => Ok(handed),
            // Shutting down: as good as no answer.
            Ok(Err(_)) | Err(_) => Err(Silent),
        }
    }

    /// Makes the client of a session its issuer handed over a client of
    /// this node, with what was queued for it.
    fn adopt_handed(
        &self,
        router: &Router,
        handed: wire::Handed,
        queue: QueueLimits,
    ) -> (ClientId, Inbox) {
        let (outbox, inbox) = crate::net::queue(queue);
        for frame in handed.frames {
            let frame = wire::frame_of(frame);
            outbox.push(crate::net::Outbound::Frame(frame));
        }
        let identity = handed
            .identity
            .map(|member| Arc::new(Identity::from(member)));
        let hub = router.hub();
        hub.register(handed.client, outbox, identity);
        if let Some(owner) = handed.owner {
            hub.set_away(handed.client, Some(owner), handed.room);
        }
        (handed.client, inbox)
    }

    /// Resumes a session whose node died (or does not answer) from its
    /// record in Redis, which the claim uses up: the client keeps its id,
    /// identity and room. The room's owner (which held the client as an
    /// orphan, or will once it buries the dead node) is told where the
    /// client is now and sends on what it queued for it.
    async fn resume_orphan(
        &self,
        router: &Router,
        token: &str,
        queue: QueueLimits,
    ) -> Option<(ClientId, Inbox)> {
        let client = ResumeToken::client(token)?;
        let mut redis = self.redis();
        let record: Option<HashMap<String, String>> = self
            .keys
            .claim_session(client, token)
            .query_async(&mut redis)
            .await
            .inspect_err(|e| tracing::warn!(%client, "cluster: claiming a session record: {e}"))
            .ok()?;
        let record = record?;
        let identity = record
            .get("identity")
            .and_then(|json| serde_json::from_str::<wire::Member>(json).ok())
            .map(|member| Arc::new(Identity::from(member)));
        let room = record
            .keys()
            .find_map(|field| RoomId::parse(field.strip_prefix("in:")?));
        let owner = match &room {
            Some(room) => {
                let owner: Option<String> =
                    redis::AsyncCommands::get(&mut redis, self.keys.owner(room))
                        .await
                        .ok()?;
                owner.as_deref().and_then(NodeId::parse)
            }
            None => None,
        };
        let hub = router.hub();
        let inbox = hub.resume_here(client, identity, queue);
        if let Some(owner) = owner.filter(|owner| *owner != self.me) {
            hub.set_away(client, Some(owner.clone()), room);
            let rehome = wire::Message::Rehome {
                client,
                edge: self.me.clone(),
            };
            self.link.bus.publish(&owner, rehome);
        }
        tracing::info!(%client, "cluster: a session of a dead node resumed here");
        Some((client, inbox))
    }

    /// A session handed over for a resume waiting here.
    fn handed(&self, request: u64, session: Option<wire::Handed>) {
        if let Some(waiting) = self.resumes.lock().remove(&request) {
            let _ = waiting.send(session);
        }
    }

    /// The live nodes and their load, for `GET /admin/nodes`.
    pub(crate) async fn nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        nodes::list(self).await
    }

    /// A room's members on every node, oldest first, from its mirror.
    pub(crate) async fn members(&self, room: &RoomId) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut redis = self.redis();
        let seats: std::collections::HashMap<u64, String> =
            redis::AsyncCommands::hgetall(&mut redis, self.keys.members(room)).await?;
        let peers = wire::seats(seats).into_iter().map(|(id, seat)| {
            serde_json::json!({
                "clientId": id.to_string(),
                "userId": seat.member.user_id,
                "metadata": seat.metadata,
                "node": seat.node,
            })
        });
        Ok(peers.collect())
    }

    /// Closes a client's connection (4009) on the node it is connected to;
    /// false if no live node has it.
    pub(crate) async fn kick(&self, client: ClientId, reason: &str) -> anyhow::Result<bool> {
        let mut redis = self.redis();
        let edge: Option<String> =
            redis::AsyncCommands::hget(&mut redis, self.keys.clients(), client.to_u64()).await?;
        let Some(edge) = edge.as_deref().and_then(NodeId::parse) else {
            return Ok(false);
        };
        if !self.is_alive(&edge).await? {
            return Ok(false);
        }
        let close =
            wire::Message::close(client, crate::vocab::CloseCode::Kicked, reason.to_owned());
        self.link.bus.publish(&edge, close);
        Ok(true)
    }
}
