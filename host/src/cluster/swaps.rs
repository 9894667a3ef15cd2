//! Hot swaps, rollbacks and canaries reaching every node, on the swaps
//! channel, which also carries the starts and stops of recordings
//! (`recordings`) and shadows (`shadows`). The node that
//! makes a swap stores the component under its hash, records the hash as
//! the entry's live version, and announces it on the swaps channel; every
//! other node makes the same change, one at a time, in the order
//! announced. A canary set or ended (by an operator or by its error
//! budget) is stored as the entry's policy, with its component, and
//! announced the same way; a node told of it makes its own canary the
//! stored one. A node that starts later reads the live versions and the
//! policies before it serves.
//!
//! Every node decides the same rooms for the same policy (the bucket is
//! a function of room id and entry name), and a room's events run on its
//! owner only, so a room runs one version whichever node it is on.

use std::collections::HashSet;
use std::sync::Arc;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::bus::Op;
use super::inbound::Inbound;
use super::{Cluster, NodeId, recordings, shadows};
use crate::ids::RoomId;
use crate::plugins::{Announce, Budget, PluginSource, Policy, Swapper};

/// What the swaps channel carries.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Announcement {
    /// `name` runs the version `hash`.
    Swapped { name: String, hash: String },
    /// `name`'s canary changed: the stored policy says to what.
    Rollout { name: String },
    /// The recording `id` started or stopped: Redis has it while it runs.
    Recording { id: u64 },
    /// `name`'s shadow started or stopped: Redis has its candidate while
    /// it runs.
    Shadow { name: String },
}

/// An announcement and the node that made it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Announced {
    pub(crate) what: Announcement,
    pub(crate) from: NodeId,
}

/// A canary policy as Redis keeps it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPolicy {
    canary: String,
    percent: u8,
    rooms: Vec<String>,
    /// Failed calls in percent and the calls to judge from; `None`: no
    /// budget.
    budget: Option<(f64, u64)>,
}

impl StoredPolicy {
    fn of(policy: &Policy) -> StoredPolicy {
        StoredPolicy {
            canary: policy.canary.clone(),
            percent: policy.percent,
            rooms: policy.rooms.iter().map(|r| r.to_string()).collect(),
            budget: policy.budget.map(|b| (b.error_percent, b.min_calls)),
        }
    }

    fn policy(self) -> Policy {
        let rooms: HashSet<RoomId> = self.rooms.iter().filter_map(|r| RoomId::parse(r)).collect();
        Policy {
            canary: self.canary,
            percent: self.percent.min(100),
            rooms,
            budget: self.budget.map(|(error_percent, min_calls)| Budget {
                error_percent,
                min_calls,
            }),
        }
    }
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

impl Announcer {
    fn announcement(&self, what: Announcement) -> Vec<u8> {
        announcement(&self.me, what)
    }
}

/// `what`, announced by `from`, as the swaps channel carries it.
pub(super) fn announcement(from: &NodeId, what: Announcement) -> Vec<u8> {
    let announced = Announced {
        what,
        from: from.clone(),
    };
    serde_json::to_vec(&announced).unwrap_or_default()
}

impl Announce for Announcer {
    fn swapped(&self, name: &str, hash: &str, bytes: Option<&[u8]>) {
        let announcement = self.announcement(Announcement::Swapped {
            name: name.to_owned(),
            hash: hash.to_owned(),
        });
        self.bus.send(Op::Swap {
            announcement,
            name: name.to_owned(),
            hash: hash.to_owned(),
            bytes: bytes.map(<[u8]>::to_vec),
        });
    }

    fn rollout(&self, name: &str, canary: Option<(&Policy, &[u8])>) {
        let announcement = self.announcement(Announcement::Rollout {
            name: name.to_owned(),
        });
        let canary = canary.map(|(policy, bytes)| {
            let stored = serde_json::to_vec(&StoredPolicy::of(policy)).unwrap_or_default();
            (stored, policy.canary.clone(), bytes.to_vec())
        });
        self.bus.send(Op::Rollout {
            name: name.to_owned(),
            canary,
            announcement,
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
        follow_rollout(cluster, swapper, &name).await;
    }
    Ok(())
}

/// Applies announced changes one at a time, in order.
pub(crate) async fn run(cx: Arc<Inbound>, mut announced: mpsc::UnboundedReceiver<Announced>) {
    let (cluster, swapper) = (&cx.cluster, &cx.swapper);
    while let Some(announced) = announced.recv().await {
        if announced.from == cluster.me {
            continue;
        }
        match announced.what {
            Announcement::Swapped { name, hash } => follow(cluster, swapper, &name, &hash).await,
            Announcement::Rollout { name } => follow_rollout(cluster, swapper, &name).await,
            Announcement::Recording { id } => {
                recordings::follow(cluster, cx.router.recorder(), id).await
            }
            Announcement::Shadow { name } => shadows::follow(&cx, &name).await,
        }
    }
}

/// Makes `name`'s canary here the one stored for the cluster, loading its
/// component from Redis if this node does not have it.
async fn follow_rollout(cluster: &Cluster, swapper: &Arc<Swapper>, name: &str) {
    let mut redis = cluster.redis();
    let stored: Option<Vec<u8>> = match redis.get(cluster.keys.rollout(name)).await {
        Ok(stored) => stored,
        Err(e) => return tracing::warn!(plugin = name, "cluster: reading a rollout: {e}"),
    };
    let policy = match stored.map(|json| serde_json::from_slice::<StoredPolicy>(&json)) {
        None => None,
        Some(Ok(stored)) => Some(stored.policy()),
        Some(Err(e)) => {
            return tracing::warn!(plugin = name, "cluster: a rollout that does not parse: {e}");
        }
    };
    let canary = match &policy {
        Some(policy) if !swapper.has_version(name, &policy.canary) => {
            match component(cluster, name, &policy.canary).await {
                Some(source) => Some(source),
                None => return,
            }
        }
        _ => None,
    };
    let (swapper, name) = (Arc::clone(swapper), name.to_owned());
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(source) = canary
            && let Err(e) = swapper.upload(&name, source)
        {
            return tracing::warn!(plugin = name, "cluster: loading a canary: {e}");
        }
        swapper.follow_rollout(&name, policy);
    })
    .await;
}

/// The component stored under `hash`, or why not in the log.
pub(super) async fn component(cluster: &Cluster, name: &str, hash: &str) -> Option<PluginSource> {
    let mut redis = cluster.redis();
    let bytes: Option<Vec<u8>> = match redis.get(cluster.keys.component(hash)).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(plugin = name, hash, "cluster: fetching a component: {e}");
            return None;
        }
    };
    let Some(bytes) = bytes else {
        tracing::warn!(plugin = name, hash, "cluster: a component is not in Redis");
        return None;
    };
    Some(PluginSource {
        origin: format!("cluster {hash}"),
        bytes,
    })
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
    let Some(source) = component(cluster, &name, hash).await else {
        return;
    };
    let _ = tokio::task::spawn_blocking(move || swapper.swap_here(&name, &source)).await;
}
