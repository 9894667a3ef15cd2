//! The node's one ordered pipe to Redis. Everything the node writes (its
//! publishes to other nodes, room claims and closes, the room mirror a
//! takeover reads) goes through one task, which takes what has queued up
//! since its last write and sends it as one pipeline: one `PUBLISH` per
//! destination node per wake, behind the writes of the same wake. One
//! connection and one task keep the order: what a node says to another
//! arrives in the order it said it, and a room's close is never overtaken
//! by its next claim. Up to [`IN_FLIGHT`] pipelines are out at once: the
//! next wake's writes do not wait for Redis to answer the last.
//!
//! The pipe has a connection of its own, [`Writer`], apart from the
//! connection manager the rest of the node shares, and reconnects it
//! itself: a connection manager lets every pipeline sent while it
//! reconnects wait for the same new connection, and they go out in
//! whatever order they wake, which would break the order above.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisResult, Value};
use tokio::sync::{mpsc, oneshot};

use super::keys::Keys;
use super::metrics::BusMetrics;
use super::nodes::Live;
use super::wire::{self, Message};
use super::{Backoff, Claimed, NodeId, connection_config};
use crate::ids::{ClientId, RoomId};

/// Most operations one pipeline carries.
const BATCH: usize = 1024;

/// Where a claim's answer goes.
pub(crate) type ClaimReply = oneshot::Sender<Result<Claimed, redis::RedisError>>;

pub(crate) enum Op {
    Publish(NodeId, Message),
    /// Claim a room for this node; the answer comes back on the sender.
    Claim(RoomId, ClaimReply),
    /// The room has closed here: its keys go, if this node still owns it.
    Close(RoomId),
    /// A member's seat in the room mirror, or its removal.
    Seat(RoomId, ClientId, Option<String>),
    /// A plugin storage entry in the room mirror, or its removal.
    Kv(RoomId, String, Option<String>),
    /// A pending timer in the room mirror (a [`wire::TimerRecord`]), by
    /// id, or its removal.
    Timer(RoomId, u64, Option<String>),
    /// A client connected to this node with its session (resume token and
    /// identity), in the client directory; `None`: its session has ended.
    Client(ClientId, Option<Session>),
    /// A connected client has authenticated: its session record's identity.
    Identity(ClientId, String),
    /// A swap or rollback made here: the component (if new) and the live
    /// hash are stored, the entry's canary, which a swap ends, is
    /// forgotten, then every node is told.
    Swap {
        name: String,
        hash: String,
        bytes: Option<Vec<u8>>,
        announcement: Vec<u8>,
    },
    /// A canary set or ended here: its component and policy are stored
    /// (or the policy deleted), then every node is told.
    Rollout {
        name: String,
        /// The policy as JSON and the canary's hash and component; `None`:
        /// no canary.
        canary: Option<(Vec<u8>, String, Vec<u8>)>,
        announcement: Vec<u8>,
    },
    /// A recording started here (its listing as JSON) or stopped
    /// (`None`): stored or deleted, then every node is told.
    Recording {
        id: u64,
        listing: Option<String>,
        announcement: Vec<u8>,
    },
    /// A shadow started here (its candidate's hash, and component if the
    /// other nodes may lack it) or stopped (`None`): stored or deleted
    /// with its figures, then every node is told.
    Shadow {
        name: String,
        candidate: Option<(String, Option<Vec<u8>>)>,
        announcement: Vec<u8>,
    },
}

/// What a client's session record holds, from its edge.
pub(crate) struct Session {
    pub(crate) token: String,
    /// A [`super::wire::Member`] as JSON, once authenticated.
    pub(crate) identity: Option<String>,
}

/// A handle on the pipe; cheap to clone, never waits.
#[derive(Clone)]
pub(crate) struct Bus(mpsc::UnboundedSender<Op>);

impl Bus {
    pub(crate) fn new() -> (Bus, mpsc::UnboundedReceiver<Op>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Bus(tx), rx)
    }

    pub(crate) fn send(&self, op: Op) {
        // Fails only once the node is shutting down and the task is gone.
        let _ = self.0.send(op);
    }

    pub(crate) fn publish(&self, node: &NodeId, message: Message) {
        self.send(Op::Publish(node.clone(), message));
    }
}

/// Pipelines sent and not yet answered, at most: a node does not wait for
/// Redis's answer to one wake's writes before it sends the next.
const IN_FLIGHT: usize = 16;

/// The pipe's connection to Redis.
pub(crate) struct Writer {
    client: redis::Client,
    /// None after a failed pipeline, until the next is sent.
    connection: Option<MultiplexedConnection>,
}

impl Writer {
    pub(crate) async fn open(client: redis::Client) -> RedisResult<Writer> {
        let mut writer = Writer {
            client,
            connection: None,
        };
        writer.connection().await?;
        Ok(writer)
    }

    /// The open connection, or a new one.
    async fn connection(&mut self) -> RedisResult<MultiplexedConnection> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }
}

/// Runs the pipe until every [`Bus`] is dropped.
pub(crate) async fn run(
    mut ops: mpsc::UnboundedReceiver<Op>,
    mut writer: Writer,
    live: Arc<Live>,
    keys: Arc<Keys>,
    me: NodeId,
    metrics: Arc<BusMetrics>,
) {
    let mut queued = Vec::with_capacity(BATCH);
    let mut backoff = Backoff::default();
    let mut in_flight = FuturesOrdered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        // After a failure nothing goes out on a new connection until every
        // pipeline sent on the old one has been answered or has failed.
        let connected = writer.connection.is_some() || in_flight.is_empty();
        tokio::select! {
            biased;
            Some(sent) = in_flight.next(), if !in_flight.is_empty() => {
                settle(sent, &mut writer, &live, &metrics, &mut backoff).await;
            }
            n = ops.recv_many(&mut queued, BATCH),
                if open && connected && in_flight.len() < IN_FLIGHT =>
            {
                if n == 0 {
                    open = false;
                    continue;
                }
                let mut batch = Pipeline::new(&keys, &me);
                for op in queued.drain(..) {
                    batch.add(op);
                }
                let connection = writer.connection().await;
                let mut send = Box::pin(batch.send(connection));
                // Polled once here, so each pipeline is on the connection's
                // queue before the next is built: they reach Redis in order.
                match poll_once(send.as_mut()).await {
                    Poll::Ready(sent) => {
                        settle(sent, &mut writer, &live, &metrics, &mut backoff).await
                    }
                    Poll::Pending => in_flight.push_back(send),
                }
            }
        }
    }
}

async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// A pipeline's answer, with what it carried.
struct Sent {
    answers: redis::RedisResult<Vec<Value>>,
    claims: Vec<(RoomId, ClaimReply)>,
    published: u64,
    took: Duration,
}

/// Answers the claims a pipeline carried and counts what it published or
/// lost. After a failure it drops the connection, has the node re-assert
/// what the lost writes may have carried (the room mirror, the client
/// directory), and waits before the next.
async fn settle(
    sent: Sent,
    writer: &mut Writer,
    live: &Live,
    metrics: &BusMetrics,
    backoff: &mut Backoff,
) {
    match sent.answers {
        Ok(answers) => {
            metrics.round_trip(sent.took);
            metrics.published(sent.published);
            for ((room, reply), answer) in sent.claims.into_iter().zip(answers) {
                let _ = reply.send(Ok(Claimed::from_script(&room, answer)));
            }
            if backoff.reset() {
                tracing::info!("cluster: writes to Redis are going through again");
            }
        }
        Err(e) => {
            writer.connection = None;
            live.writes_unsure();
            metrics.lost(sent.published);
            if !backoff.failing() {
                tracing::warn!(
                    lost = sent.published,
                    "cluster: a write to Redis failed, retrying with backoff: {e}"
                );
            }
            for (_, reply) in sent.claims {
                let _ = reply.send(Err(e.clone()));
            }
            tokio::time::sleep(backoff.next()).await;
        }
    }
}

/// One wake's operations as one pipeline.
struct Pipeline<'a> {
    keys: &'a Keys,
    me: &'a NodeId,
    pipe: redis::Pipeline,
    claims: Vec<(RoomId, ClaimReply)>,
    /// Batches by destination, in the order each destination first came up.
    batches: Vec<(NodeId, Vec<u8>)>,
    published: u64,
}

impl<'a> Pipeline<'a> {
    fn new(keys: &'a Keys, me: &'a NodeId) -> Pipeline<'a> {
        Pipeline {
            keys,
            me,
            pipe: redis::pipe(),
            claims: Vec::new(),
            batches: Vec::new(),
            published: 0,
        }
    }

    fn add(&mut self, op: Op) {
        let keys = self.keys;
        match op {
            Op::Publish(node, message) => {
                self.published += 1;
                let at = match self.batches.iter().position(|(n, _)| *n == node) {
                    Some(at) => at,
                    None => {
                        self.batches.push((node, Vec::new()));
                        self.batches.len() - 1
                    }
                };
                wire::push(&mut self.batches[at].1, &message);
            }
            Op::Claim(room, reply) => {
                self.pipe.add_command(keys.claim(&room, self.me));
                self.claims.push((room, reply));
            }
            Op::Close(room) => {
                self.pipe.add_command(keys.close(&room, self.me)).ignore();
            }
            // The session record says which room its client is in, for a
            // resume after the client's node died. One field per room: a
            // leave on one owner and a join on another do not race.
            Op::Seat(room, client, Some(seat)) => {
                let key = keys.members(&room);
                self.pipe.hset(key, client.to_u64(), seat).ignore();
                let field = format!("in:{room}");
                self.pipe.hset(keys.session(client), field, 1).ignore();
            }
            Op::Seat(room, client, None) => {
                self.pipe
                    .hdel(keys.members(&room), client.to_u64())
                    .ignore();
                let field = format!("in:{room}");
                self.pipe.hdel(keys.session(client), field).ignore();
            }
            Op::Kv(room, field, Some(value)) => {
                self.pipe.hset(keys.kv(&room), field, value).ignore();
            }
            Op::Kv(room, field, None) => {
                self.pipe.hdel(keys.kv(&room), field).ignore();
            }
            Op::Timer(room, id, Some(record)) => {
                self.pipe.hset(keys.timers(&room), id, record).ignore();
            }
            Op::Timer(room, id, None) => {
                self.pipe.hdel(keys.timers(&room), id).ignore();
            }
            Op::Client(client, Some(session)) => {
                let (key, me) = (keys.clients(), self.me.as_str());
                self.pipe.hset(key, client.to_u64(), me).ignore();
                let record = keys.session(client);
                self.pipe.hset(&record, "token", session.token).ignore();
                if let Some(identity) = session.identity {
                    self.pipe.hset(&record, "identity", identity).ignore();
                }
                // A record a resume took from a dead node's lasts no longer.
                self.pipe.persist(record).ignore();
            }
            Op::Client(client, None) => {
                self.pipe.hdel(keys.clients(), client.to_u64()).ignore();
                self.pipe.del(keys.session(client)).ignore();
            }
            Op::Identity(client, identity) => {
                let record = keys.session(client);
                self.pipe.hset(record, "identity", identity).ignore();
            }
            Op::Swap {
                name,
                hash,
                bytes,
                announcement,
            } => {
                if let Some(bytes) = bytes {
                    self.pipe.set(keys.component(&hash), bytes).ignore();
                }
                self.pipe.set(keys.plugin(&name), hash).ignore();
                self.pipe.del(keys.rollout(&name)).ignore();
                self.pipe.publish(keys.swaps(), announcement).ignore();
            }
            Op::Rollout {
                name,
                canary,
                announcement,
            } => {
                match canary {
                    Some((policy, hash, bytes)) => {
                        self.pipe.set(keys.component(&hash), bytes).ignore();
                        self.pipe.set(keys.rollout(&name), policy).ignore();
                    }
                    None => {
                        self.pipe.del(keys.rollout(&name)).ignore();
                    }
                }
                self.pipe.publish(keys.swaps(), announcement).ignore();
            }
            Op::Recording {
                id,
                listing,
                announcement,
            } => {
                match listing {
                    Some(listing) => self.pipe.hset(keys.recordings(), id, listing).ignore(),
                    None => self.pipe.hdel(keys.recordings(), id).ignore(),
                };
                self.pipe.publish(keys.swaps(), announcement).ignore();
            }
            Op::Shadow {
                name,
                candidate,
                announcement,
            } => {
                self.pipe.del(keys.shadow_reports(&name)).ignore();
                match candidate {
                    Some((hash, bytes)) => {
                        if let Some(bytes) = bytes {
                            self.pipe.set(keys.component(&hash), bytes).ignore();
                        }
                        self.pipe.set(keys.shadow(&name), hash).ignore();
                    }
                    None => {
                        self.pipe.del(keys.shadow(&name)).ignore();
                    }
                }
                self.pipe.publish(keys.swaps(), announcement).ignore();
            }
        }
    }

    /// Sends the pipeline on `connection` (which may have failed to open);
    /// the claims it carries are answered in order.
    async fn send(mut self, connection: RedisResult<MultiplexedConnection>) -> Sent {
        for (node, mut batch) in std::mem::take(&mut self.batches) {
            wire::finish(&mut batch);
            let mut publish = Cmd::new();
            publish
                .arg("PUBLISH")
                .arg(self.keys.channel(&node))
                .arg(batch);
            self.pipe.add_command(publish).ignore();
        }
        let started = Instant::now();
        let answers = match connection {
            Ok(mut connection) => self.pipe.query_async::<Vec<Value>>(&mut connection).await,
            Err(e) => Err(e),
        };
        Sent {
            answers,
            claims: self.claims,
            published: self.published,
            took: started.elapsed(),
        }
    }
}
