//! What arrives on this node's channels: batches from other nodes,
//! dispatched in the order they were published, and swap announcements,
//! handed to the swap task. A message for a client that has gone since is
//! dropped, as a send to a gone client is on one node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::wire::{self, Message};
use super::{Cluster, NodeId, swaps};
use crate::envelope::Frame;
use crate::ids::ClientId;
use crate::net::Outbound;
use crate::plugins::Swapper;
use crate::router::{Router, Verdict};
use crate::state::{Hub, Identity};

/// How long a node keeps passing on a client's messages after it sent the
/// client's join on to the room's real owner (see [`bounce`]): long enough
/// for the client's edge to have heard.
pub(super) const BOUNCE_KEPT: Duration = Duration::from_secs(10);

pub(crate) struct Inbound {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) router: Arc<Router>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) swapper: Arc<Swapper>,
}

pub(crate) async fn run(cx: Arc<Inbound>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    let (swaps_tx, swaps_rx) = mpsc::unbounded_channel();
    tokio::spawn(swaps::run(
        Arc::clone(&cx.cluster),
        Arc::clone(&cx.swapper),
        swaps_rx,
    ));
    let swaps_channel = cx.cluster.keys.swaps();
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Message => {
                let Some((channel, payload)) = message(push.data) else {
                    continue;
                };
                if channel == swaps_channel.as_bytes() {
                    match serde_json::from_slice(&payload) {
                        Ok(swapped) => {
                            let _ = swaps_tx.send(swapped);
                        }
                        Err(e) => tracing::warn!("cluster: a swap announcement that does not parse: {e}"),
                    }
                    continue;
                }
                match wire::decode(&payload) {
                    Ok(batch) => {
                        cx.cluster.metrics.received(batch.len() as u64);
                        for message in batch {
                            dispatch(&cx, message).await;
                        }
                    }
                    Err(e) => tracing::warn!("cluster: a batch that does not parse: {e}"),
                }
            }
            PushKind::Disconnection => {
                cx.cluster.metrics.reconnected();
                cx.cluster.nodes.reconnected();
                tracing::warn!("cluster: lost the connection to Redis; reconnecting");
            }
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

async fn dispatch(cx: &Inbound, message: Message) {
    let (router, hub) = (&cx.router, &cx.hub);
    match message {
        Message::Event {
            client,
            edge,
            identity,
            text,
        } => {
            if let Some(owner) = cx.cluster.bounced_to(client) {
                let identity = Identity::from(identity);
                return cx.cluster.link.forward_for(&owner, client, &edge, &identity, &text);
            }
            let identity = Arc::new(Identity::from(identity));
            if let Verdict::Claim(room) = router.forwarded(client, &edge, identity, &text) {
                cx.cluster.claim_for(router, client, room, &text).await;
            }
        }
        Message::Gone { client } => {
            if let Some(owner) = cx.cluster.bounced_to(client) {
                cx.cluster.link.gone(&owner, client);
            }
            router.disconnect(client);
        }
        Message::Frame { to, frame } => {
            let frame = Frame::from(String::from(Box::<str>::from(frame)));
            hub.send(to, Outbound::Frame(frame));
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
    cluster.link.forward_for(owner, client, &edge, &identity, text);
    cluster.link.moved_to(&edge, client, owner, None);
    let mut bounced = cluster.bounced.lock();
    bounced.retain(|_, (_, at)| at.elapsed() < BOUNCE_KEPT);
    bounced.insert(client, (owner.clone(), Instant::now()));
}
