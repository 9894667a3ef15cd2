//! What arrives on this node's channels: batches from other nodes,
//! dispatched in the order they were published, and swap announcements,
//! handed to the swap task. A message for a client that has gone since is
//! dropped, as a send to a gone client is on one node.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc;

use super::wire::{self, Handed, Member, Message};
use super::{Backoff, Cluster, NodeId, Passing, connection_config, swaps};
use crate::ids::ClientId;
use crate::net::Outbound;
use crate::plugins::Swapper;
use crate::router::{Router, Verdict};
use crate::session::{Claim, Sessions};
use crate::state::{Hub, Identity};
use crate::vocab::CloseCode;

/// How long a node keeps passing on a client's traffic after the client
/// moved on (its join sent on to the room's real owner, see [`bounce`];
/// its session resumed on another node): long enough for every node to
/// have heard.
pub(super) const PASSING_KEPT: Duration = Duration::from_secs(10);

pub(crate) struct Inbound {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) router: Arc<Router>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) swapper: Arc<Swapper>,
    pub(crate) sessions: Arc<Sessions>,
}

/// This node's subscription to its channels, on a connection of its own
/// that [`run`] renews after it drops. One connection at a time: a
/// connection manager resubscribing by itself could, around a reconnect,
/// hold two subscribed connections for a moment, and what arrived on both
/// arrived twice and out of order.
pub(crate) struct Subscription {
    client: redis::Client,
    channels: [String; 2],
    /// Its pushes come on `pushes`; [`unanswered`] pings on it.
    connection: MultiplexedConnection,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
}

impl Subscription {
    pub(crate) async fn open(
        client: redis::Client,
        channels: [String; 2],
    ) -> RedisResult<Subscription> {
        let (tx, pushes) = mpsc::unbounded_channel();
        let config = connection_config().set_push_sender(tx);
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        connection.subscribe(&channels).await?;
        Ok(Subscription {
            client,
            channels,
            connection,
            pushes,
        })
    }

    /// A new subscription, once Redis takes one.
    async fn renew(self) -> Subscription {
        let mut backoff = Backoff::default();
        loop {
            tokio::time::sleep(backoff.next()).await;
            let (client, channels) = (self.client.clone(), self.channels.clone());
            match Subscription::open(client, channels).await {
                Ok(renewed) => return renewed,
                Err(e) => tracing::debug!("cluster: subscribing again: {e}"),
            }
        }
    }
}

pub(crate) async fn run(cx: Arc<Inbound>, mut subscription: Subscription) {
    let (swaps_tx, swaps_rx) = mpsc::unbounded_channel();
    tokio::spawn(swaps::run(Arc::clone(&cx), swaps_rx));
    let swaps_channel = cx.cluster.keys.swaps();
    let every = Duration::from_millis(cx.cluster.settings.heartbeat_ms);
    loop {
        let probe = subscription.connection.clone();
        tokio::select! {
            // Ends when the connection has dropped: nothing more comes on it.
            () = receive(&cx, &mut subscription.pushes, &swaps_channel, &swaps_tx) => {
                tracing::warn!("cluster: lost the connection to Redis; reconnecting");
            }
            e = unanswered(probe, every) => {
                tracing::warn!("cluster: the subscription went unanswered ({e}); subscribing again");
            }
        }
        cx.cluster.metrics.reconnected();
        cx.cluster.nodes.writes_unsure();
        subscription = subscription.renew().await;
        tracing::info!("cluster: subscribed again");
    }
}

/// Pings on the subscription's connection every `every` until a ping
/// fails. A connection that closes ends [`receive`]; one that stays open
/// but carries nothing more (Redis's host gone without a word, a stalled
/// proxy, a half-open TCP connection) only fails its pings, after the
/// response timeout. Without them the node would never hear from the
/// other nodes again, while its writes and heartbeats, on connections of
/// their own, time out and reconnect.
async fn unanswered(mut connection: MultiplexedConnection, every: Duration) -> redis::RedisError {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = redis::cmd("PING").query_async::<()>(&mut connection).await {
            return e;
        }
    }
}

/// Dispatches what arrives on one connection, until it drops.
async fn receive(
    cx: &Arc<Inbound>,
    pushes: &mut mpsc::UnboundedReceiver<PushInfo>,
    swaps_channel: &str,
    swaps_tx: &mpsc::UnboundedSender<swaps::Announced>,
) {
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Message => {
                let Some((channel, payload)) = message(push.data) else {
                    continue;
                };
                if channel == swaps_channel.as_bytes() {
                    match serde_json::from_slice(&payload) {
                        Ok(announced) => {
                            let _ = swaps_tx.send(announced);
                        }
                        Err(e) => {
                            tracing::warn!("cluster: a swap announcement that does not parse: {e}")
                        }
                    }
                    continue;
                }
                match wire::decode(&payload) {
                    Ok(batch) => {
                        cx.cluster.metrics.received(batch.len() as u64);
                        for message in batch {
                            dispatch(cx, message).await;
                        }
                    }
                    Err(e) => tracing::warn!("cluster: a batch that does not parse: {e}"),
                }
            }
            PushKind::Disconnection => return,
            _ => {}
        }
    }
}

/// A published message's channel and payload.
fn message(data: Vec<Value>) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut data = data.into_iter();
    match (data.next()?, data.next()?) {
        (Value::BulkString(channel), Value::BulkString(payload)) => Some((channel, payload)),
        _ => None,
    }
}

async fn dispatch(cx: &Arc<Inbound>, message: Message) {
    let (router, hub) = (&cx.router, &cx.hub);
    match message {
        Message::Event {
            client,
            edge,
            identity,
            text,
        } => {
            if let Some(Passing::Events(owner)) = cx.cluster.passing(client) {
                let identity = Identity::from(identity);
                return cx
                    .cluster
                    .link
                    .forward_for(&owner, client, &edge, &identity, &text);
            }
            let identity = Arc::new(Identity::from(identity));
            if let Verdict::Claim(room) = router.forwarded(client, &edge, identity, &text) {
                cx.cluster.claim_for(router, client, room, &text).await;
            }
        }
        Message::Gone { client } => {
            if let Some(Passing::Events(owner)) = cx.cluster.passing(client) {
                cx.cluster.link.gone(&owner, client);
            }
            router.disconnect(client);
        }
        Message::Frame { to, frame } => {
            let frame = wire::frame_of(frame);
            if !hub.send(to, Outbound::Frame(frame.clone()))
                && let Some(Passing::Frames(edge)) = cx.cluster.passing(to)
                && let Some(message) = Message::frame(to, &frame)
            {
                // Sent before its room's owner heard the client moved.
                cx.cluster.link.bus.publish(&edge, message);
            }
        }
        Message::Resume {
            token,
            claimant,
            edge,
            request,
        } => {
            let cx = Arc::clone(cx);
            tokio::spawn(async move { hand_over(&cx, &token, claimant, &edge, request).await });
        }
        Message::Handover { request, session } => cx.cluster.handed(request, session),
        Message::Rehome { client, edge } => {
            if !hub.rehome(client, &edge) {
                // More was queued for it while its node was down than a
                // suspended session keeps: its session is over, as it
                // would be on one node.
                router.disconnect(client);
                let reason = "session lost: too much was queued while its node was down";
                let close = Message::close(client, CloseCode::Kicked, reason.to_owned());
                cx.cluster.link.bus.publish(&edge, close);
            }
        }
        Message::Close { to, reason, .. } => router.kick(to, reason),
        Message::Placed {
            client,
            room,
            owner,
        } => match room {
            Some(room) => hub.set_away(client, Some(owner), Some(room)),
            None => hub.set_away(client, None, None),
        },
        Message::Moved {
            client,
            owner,
            room,
        } => hub.set_away(client, Some(owner), room),
        Message::Recorded { id, call } => match serde_json::from_str(call.get()) {
            Ok(call) => router.recorder().take(id, call),
            Err(e) => tracing::warn!(id, "cluster: a recorded call that does not parse: {e}"),
        },
    }
}

/// Sends on a join that reached this node for a room another node owns,
/// with the messages of its client that follow it for a while, and tells
/// the client's edge where the room is.
pub(crate) fn bounce(cluster: &Cluster, hub: &Hub, client: ClientId, owner: &NodeId, text: &str) {
    let (Some(edge), Some(info)) = (hub.edge_of(client), hub.client_info(client)) else {
        return;
    };
    let Some(identity) = info.identity else {
        return;
    };
    hub.unregister(client);
    cluster
        .link
        .forward_for(owner, client, &edge, &identity, text);
    cluster.link.moved_to(&edge, client, owner, None);
    cluster.pass_on(client, Passing::Events(owner.clone()));
}

/// Gives the session `token` names, if this node has it, to `edge`, where
/// a connection is resuming it; its old connection here, if still open,
/// closes with 4000.
async fn hand_over(cx: &Inbound, token: &str, claimant: ClientId, edge: &NodeId, request: u64) {
    let link = &cx.cluster.link;
    let refuse = || {
        link.bus.publish(
            edge,
            Message::Handover {
                request,
                session: None,
            },
        )
    };
    let (client, queue) = match cx.sessions.claim(token, claimant) {
        Some(Claim::Ready(client, queue)) => (client, queue),
        Some(Claim::Wait(client, handover)) => match handover.await {
            Ok(queue) => (client, queue),
            Err(_) => return refuse(),
        },
        None => return refuse(),
    };
    let (mut owner, mut owned_here) = (None, false);
    cx.hub.hand_over(client, queue, edge, |session| {
        owner = session.owner.clone();
        owned_here = session.owner.is_none() && session.room.is_some();
        let handed = Handed {
            client,
            identity: session.identity.as_deref().map(Member::from),
            owner: match (&session.owner, &session.room) {
                (Some(owner), _) => Some(owner.clone()),
                (None, Some(_)) => Some(cx.cluster.me.clone()),
                (None, None) => None,
            },
            room: session.room,
            frames: session.frames.iter().filter_map(wire::raw_frame).collect(),
        };
        link.bus.publish(
            edge,
            Message::Handover {
                request,
                session: Some(handed),
            },
        );
    });
    if let Some(owner) = owner {
        link.bus.publish(
            &owner,
            Message::Rehome {
                client,
                edge: edge.clone(),
            },
        );
    }
    // A client whose room this node owns stays here as a proxy of its new
    // node; anything else sent here for it is passed on.
    if !owned_here {
        cx.cluster.pass_on(client, Passing::Frames(edge.clone()));
    }
    tracing::info!(%client, to = %edge, "cluster: session handed over to another node");
}
