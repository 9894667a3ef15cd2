//! Hot swaps and rollbacks reaching every node. The node that makes one
//! stores the component under its hash, records the hash as the entry's
//! live version, and announces it on the swaps channel; every other node
//! makes the same change, one swap at a time, in the order announced. A
//! node that starts later reads the live versions before it serves.

use std::sync::Arc;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::bus::Op;
use super::{Cluster, NodeId};
use crate::plugins::{Announce, PluginSource, Swapper};

/// What the swaps channel carries.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Swapped {
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) from: NodeId,
}

pub(crate) struct Announcer {
    me: NodeId,
    bus: super::Bus,
}

impl Announcer {
    pub(crate) fn new(cluster: &Cluster) -> Announcer {
        Announcer {
            me: cluster.me.clone(),
            bus: cluster.link.bus.clone(),
        }
    }
}

impl Announce for Announcer {
    fn swapped(&self, name: &str, hash: &str, bytes: Option<&[u8]>) {
        let swapped = Swapped {
            name: name.to_owned(),
            hash: hash.to_owned(),
            from: self.me.clone(),
        };
        self.bus.send(Op::Swap {
            announcement: serde_json::to_vec(&swapped).unwrap_or_default(),
            name: name.to_owned(),
            hash: hash.to_owned(),
            bytes: bytes.map(<[u8]>::to_vec),
        });
    }
}

/// Before serving: every entry another node has swapped runs the version
/// the cluster runs.
pub(crate) async fn catch_up(cluster: &Cluster, swapper: &Arc<Swapper>) -> anyhow::Result<()> {
    let mut redis = cluster.redis();
    let names: Vec<String> = swapper.names().map(str::to_owned).collect();
    for name in names {
        let live: Option<String> = redis.get(cluster.keys.plugin(&name)).await?;
        if let Some(hash) = live {
            follow(cluster, swapper, &name, &hash).await;
        }
    }
    Ok(())
}

/// Applies announced swaps one at a time, in order.
pub(crate) async fn run(
    cluster: Arc<Cluster>,
    swapper: Arc<Swapper>,
    mut announced: mpsc::UnboundedReceiver<Swapped>,
) {
    while let Some(swapped) = announced.recv().await {
        if swapped.from != cluster.me {
            follow(&cluster, &swapper, &swapped.name, &swapped.hash).await;
        }
    }
}

/// Makes `hash` the live version of `name` here: nothing if it is
/// already, a rollback if it is the previous one, else a swap to the
/// component stored under it.
async fn follow(cluster: &Cluster, swapper: &Arc<Swapper>, name: &str, hash: &str) {
    let (live, previous) = swapper.hashes(name);
    if live.as_deref() == Some(hash) {
        return;
    }
    let (swapper, name) = (Arc::clone(swapper), name.to_owned());
    if previous.as_deref() == Some(hash) {
        let _ = tokio::task::spawn_blocking(move || swapper.rollback_here(&name)).await;
        return;
    }
    let mut redis = cluster.redis();
    let bytes: Option<Vec<u8>> = match redis.get(cluster.keys.component(hash)).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return tracing::warn!(
                plugin = name,
                hash,
                "cluster: fetching a swapped component: {e}"
            );
        }
    };
    let Some(bytes) = bytes else {
        return tracing::warn!(
            plugin = name,
            hash,
            "cluster: a swapped component is not in Redis"
        );
    };
    let source = PluginSource {
        origin: format!("cluster swap {hash}"),
        bytes,
    };
    let _ = tokio::task::spawn_blocking(move || swapper.swap_here(&name, &source)).await;
}
