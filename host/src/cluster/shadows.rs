//! Shadow runs across nodes. A shadow started on one node is stored in
//! Redis (`shadow:{name}`, the candidate's hash, with its component) and
//! announced on the swaps channel: every node shadows the entry with the
//! same candidate, so the calls of every room, whichever node owns it,
//! are compared. Each node reports its figures to Redis every
//! [`REPORT_EVERY`] (`shadow:{name}:reports`, by node), and the admin API
//! of any node adds the others' last reports to its own. Stopped on any
//! node, the shadow is deleted and announced, and ends everywhere.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::bus::Op;
use super::inbound::Inbound;
use super::swaps::{self, Announcement};
use crate::record::{Report, Shadow, Shadows};

/// How often a node reports its shadows' figures.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How long a report outlives its node's last one: a node that stopped
/// reporting (it died, the shadow ended) drops out of the figures.
const REPORT_KEPT: Duration = Duration::from_secs(60);

impl Cluster {
    /// Stores the shadow started here, with its candidate's component if
    /// the other nodes may lack it, and tells every node.
    pub(crate) fn shadow_started(&self, name: &str, hash: &str, bytes: Option<&[u8]>) {
        let candidate = Some((hash.to_owned(), bytes.map(<[u8]>::to_vec)));
        self.announce_shadow(name, candidate);
    }

    /// Deletes the shadow stopped here and tells every node.
    pub(crate) fn shadow_stopped(&self, name: &str) {
        self.announce_shadow(name, None);
    }

    fn announce_shadow(&self, name: &str, candidate: Option<(String, Option<Vec<u8>>)>) {
        let what = Announcement::Shadow {
            name: name.to_owned(),
        };
        self.link.bus.send(Op::Shadow {
            name: name.to_owned(),
            candidate,
            announcement: swaps::announcement(&self.me, what),
        });
    }

    /// The other nodes' last reports of `name`'s shadow of `candidate`.
    pub(crate) async fn shadow_reports(
        &self,
        name: &str,
        candidate: &str,
    ) -> redis::RedisResult<Vec<Report>> {
        let mut redis = self.redis();
        let reports: Vec<(String, String)> = redis.hgetall(self.keys.shadow_reports(name)).await?;
        let others = reports
            .into_iter()
            .filter(|(node, _)| node != self.me.as_str());
        let parsed = others.filter_map(|(_, json)| serde_json::from_str::<Report>(&json).ok());
        Ok(parsed.filter(|r| r.candidate == candidate).collect())
    }
}

/// Shadows `name` here as Redis says: with the stored candidate (loaded
/// from Redis if this node lacks it), or not at all.
pub(crate) async fn follow(cx: &Inbound, name: &str) {
    let cluster = &cx.cluster;
    let stored: Option<String> = match cluster.redis().get(cluster.keys.shadow(name)).await {
        Ok(stored) => stored,
        Err(e) => return tracing::warn!(plugin = name, "cluster: reading a shadow: {e}"),
    };
    let shadows = cx.router.shadows();
    let registry = cx.swapper.registry();
    let Some(hash) = stored else {
        if shadows.stop(name, registry).is_some() {
            tracing::info!(plugin = name, "shadow stopped on another node");
        }
        return;
    };
    if shadows.of(name).is_some_and(|s| s.candidate.hash == hash) {
        return;
    }
    let source = match cx.swapper.has_version(name, &hash) {
        true => None,
        false => match swaps::component(cluster, name, &hash).await {
            Some(source) => Some(source),
            None => return,
        },
    };
    let (swapper, shadows, name) = (
        Arc::clone(&cx.swapper),
        Arc::clone(shadows),
        name.to_owned(),
    );
    // Loading a candidate compiles it, and a shadow starts a thread.
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(source) = source
            && let Err(e) = swapper.upload(&name, source)
        {
            return tracing::warn!(plugin = name, "cluster: loading a shadow's candidate: {e}");
        }
        let Some(candidate) = swapper.registry().loaded(&name, &hash) else {
            return tracing::warn!(
                plugin = name,
                hash,
                "cluster: a shadow's candidate is not loaded"
            );
        };
        match shadows.start(candidate) {
            Ok(_) => tracing::info!(
                plugin = name,
                candidate = hash,
                "shadow started on another node"
            ),
            Err(e) => tracing::warn!(plugin = name, "cluster: starting a shadow's thread: {e:#}"),
        }
    })
    .await;
}

/// Before serving: the shadows the cluster runs.
pub(crate) async fn catch_up(cx: &Inbound) {
    let names: Vec<String> = cx.swapper.names().map(str::to_owned).collect();
    for name in names {
        follow(cx, &name).await;
    }
}

/// Reports this node's shadows' figures every [`REPORT_EVERY`] until
/// `shutdown`.
pub(crate) async fn report(
    cluster: Arc<Cluster>,
    shadows: Arc<Shadows>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let running = shadows.list();
        if running.is_empty() {
            continue;
        }
        if let Err(e) = write_reports(&cluster, &running).await {
            tracing::debug!("cluster: reporting shadow figures: {e}");
        }
    }
}

/// This node's figures of each shadow in `running`, in one pipeline.
async fn write_reports(
    cluster: &Cluster,
    running: &[(Arc<str>, Arc<Shadow>)],
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for (name, shadow) in running {
        let key = cluster.keys.shadow_reports(name);
        let report = serde_json::to_string(&shadow.report()).unwrap_or_default();
        pipe.hset(&key, cluster.me.as_str(), report).ignore();
        pipe.pexpire(&key, REPORT_KEPT.as_millis() as i64).ignore();
    }
    pipe.query_async(&mut cluster.redis()).await
}
