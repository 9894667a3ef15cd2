//! Recordings across nodes. A recording is started on one node, which
//! writes its file; it is stored in Redis (`recordings`, by id) and
//! announced on the swaps channel, and every other node follows it: the
//! calls it makes about the recording's rooms (the rooms it owns) go to
//! the writing node on that node's channel, into the same file. A room's
//! calls are made on its owner only, so they reach the file in the order
//! they were made. Stopped on any node, it is deleted from Redis and
//! announced: the writing node closes the file, the others stop sending.
//! A node that starts later follows the recordings of live nodes; the
//! recordings of a node that died end with it.

use std::sync::Arc;

use redis::AsyncCommands;
use serde_json::value::to_raw_value;
use switchboard_recording::Call;

use super::bus::{Bus, Op};
use super::swaps::{self, Announcement};
use super::wire::Message;
use super::{Cluster, NodeId};
use crate::record::{Forward, Listing, Recorder};

impl Cluster {
    /// A cluster-wide id for a new recording.
    pub(crate) async fn recording_id(&self) -> redis::RedisResult<u64> {
        self.redis().incr(self.keys.recording_ids(), 1).await
    }

    /// Stores a recording this node has started and tells every node.
    pub(crate) fn recording_started(&self, listing: &Listing) {
        let stored = serde_json::to_string(listing).unwrap_or_default();
        self.announce_recording(listing.id, Some(stored));
    }

    /// Deletes a stopped recording and tells every node.
    pub(crate) fn recording_stopped(&self, id: u64) {
        self.announce_recording(id, None);
    }

    fn announce_recording(&self, id: u64, listing: Option<String>) {
        let announcement = swaps::announcement(&self.me, Announcement::Recording { id });
        self.link.bus.send(Op::Recording {
            id,
            listing,
            announcement,
        });
    }
}

/// Takes part in the recording `id` as Redis has it now: follows it if it
/// is there and another node writes it, stops it here if it is gone.
pub(crate) async fn follow(cluster: &Cluster, recorder: &Arc<Recorder>, id: u64) {
    let mut redis = cluster.redis();
    let stored: Option<String> = match redis.hget(cluster.keys.recordings(), id).await {
        Ok(stored) => stored,
        Err(e) => return tracing::warn!(id, "cluster: reading a recording: {e}"),
    };
    match stored.map(|json| serde_json::from_str::<Listing>(&json)) {
        Some(Ok(listing)) => join(cluster, recorder, listing),
        Some(Err(e)) => tracing::warn!(id, "cluster: a recording that does not parse: {e}"),
        None => {
            let recorder = Arc::clone(recorder);
            // It waits for the writer to finish the file.
            let _ = tokio::task::spawn_blocking(move || recorder.stop(id)).await;
        }
    }
}

/// Before serving: follows every recording a live node writes.
pub(crate) async fn catch_up(cluster: &Cluster, recorder: &Arc<Recorder>) -> anyhow::Result<()> {
    let mut redis = cluster.redis();
    let stored: Vec<(u64, String)> = redis.hgetall(cluster.keys.recordings()).await?;
    for (id, json) in stored {
        let listing = match serde_json::from_str::<Listing>(&json) {
            Ok(listing) => listing,
            Err(e) => {
                tracing::warn!(id, "cluster: a recording that does not parse: {e}");
                continue;
            }
        };
        let writer = listing.node.as_deref().and_then(NodeId::parse);
        if let Some(writer) = writer
            && cluster.is_alive(&writer).await?
        {
            join(cluster, recorder, listing);
        }
    }
    Ok(())
}

/// A node has died or left: its recordings end here and, if `reaper`,
/// leave Redis.
pub(crate) async fn forget_node(
    cluster: &Cluster,
    recorder: &Arc<Recorder>,
    dead: &NodeId,
    reaper: bool,
) {
    let (follower, node) = (Arc::clone(recorder), dead.clone());
    let _ = tokio::task::spawn_blocking(move || follower.stop_following(&node)).await;
    if !reaper {
        return;
    }
    let mut redis = cluster.redis();
    let stored: Vec<(u64, String)> = match redis.hgetall(cluster.keys.recordings()).await {
        Ok(stored) => stored,
        Err(e) => return tracing::warn!(node = %dead, "cluster: listing recordings: {e}"),
    };
    for (id, json) in stored {
        let listing = serde_json::from_str::<Listing>(&json);
        if listing.is_ok_and(|l| l.node.as_deref() == Some(dead.as_str())) {
            cluster.recording_stopped(id);
        }
    }
}

fn join(cluster: &Cluster, recorder: &Recorder, listing: Listing) {
    let Some(writer) = listing.node.as_deref().and_then(NodeId::parse) else {
        return;
    };
    if writer == cluster.me {
        return;
    }
    let id = listing.id;
    let send = forward(cluster.link.bus.clone(), writer, id);
    if let Err(e) = recorder.follow(listing, send) {
        tracing::warn!(id, "cluster: following a recording: {e}");
    }
}

/// Sends this node's lines of the recording `id` to the node `to` that
/// writes it.
fn forward(bus: Bus, to: NodeId, id: u64) -> Forward {
    Box::new(move |call: &Call| match to_raw_value(call) {
        Ok(call) => bus.publish(&to, Message::Recorded { id, call }),
        Err(e) => tracing::warn!(id, "cluster: a recorded call that does not serialize: {e}"),
    })
}
