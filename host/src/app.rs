//! The server's parts wired together once, from a [`Config`]: the
//! membership table, the plugin chain, the session table, the router, and
//! the HTTP sides that serve them. `cli::serve` binds and runs an [`App`];
//! the micro-benchmarks drive its router without sockets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::Admin;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::net::{self, Demo, QueueLimits, Server, Settings};
use crate::plugins::builtin::JWT_SECRET_VAR;
use crate::plugins::{self, CompileCache, Loader, Registry, Swapper, default_cache_dir};
use crate::router::Router;
use crate::session::{ClientIds, Sessions};
use crate::state::{Hub, Remote};

/// A configured server, not yet listening.
pub struct App {
    hub: Arc<Hub>,
    registry: Arc<Registry>,
    router: Arc<Router>,
    server: Arc<Server>,
    admin: Arc<Admin>,
    swapper: Arc<Swapper>,
    config: Config,
    cluster: Option<Arc<Cluster>>,
    shutdown: CancellationToken,
}

impl App {
    /// Loads the chain (`plugins_dir` as `--plugins`; `lookup_env` resolves
    /// the environment variables plugins are granted) and wires the rest.
    /// Must run inside a tokio runtime: the router's timer task starts here.
    pub fn build(
        config: Config,
        plugins_dir: Option<&Path>,
        lookup_env: impl Fn(&str) -> Option<String>,
        admin_token: Option<String>,
    ) -> anyhow::Result<App> {
        App::build_in(config, None, plugins_dir, lookup_env, admin_token)
    }

    /// [`App::build`] for a node of `cluster` (connected, not started).
    pub(crate) fn build_in(
        config: Config,
        cluster: Option<Arc<Cluster>>,
        plugins_dir: Option<&Path>,
        lookup_env: impl Fn(&str) -> Option<String>,
        admin_token: Option<String>,
    ) -> anyhow::Result<App> {
        let link = cluster.as_ref().map(|c| Arc::clone(c.link()));
        let remote = link.clone().map(|link| link as Arc<dyn Remote>);
        let hub = Arc::new(Hub::with_remote(config.limits.max_rooms, remote));
        let metrics = Arc::new(Metrics::default());
        let demo = if config.demo {
            let secret = lookup_env(JWT_SECRET_VAR).with_context(|| {
                format!("the demo signs its tokens with {JWT_SECRET_VAR}, which is not set")
            })?;
            Some(Demo::new(secret))
        } else {
            None
        };
        let cache = CompileCache::new(cache_dir(&config)).bounded(config.plugin_cache.max_bytes);
        let loader = App::loader_for(&config, &hub, cache)?;
        let (chain, entries) = plugins::load(&loader, &config.plugins, plugins_dir, lookup_env)?;
        chain.check_auth(config.auth.required)?;
        let registry = Arc::new(Registry::new(chain));
        let swapper = Arc::new(Swapper::new(
            loader,
            Arc::clone(&registry),
            Arc::clone(&metrics),
            entries,
            plugins_dir.map(Path::to_path_buf),
        ));
        let sessions = Arc::new(Sessions::new(
            config.session.replay_limit,
            Arc::clone(&metrics),
            cluster.as_ref().map(|c| c.me().clone()),
        ));
        let shutdown = CancellationToken::new();
        let router = Router::new(
            &config,
            Arc::clone(&hub),
            Arc::clone(&registry),
            Arc::clone(&sessions),
            Arc::clone(&metrics),
            link,
            shutdown.clone(),
        );
        let connection = net::Context {
            router: Arc::clone(&router),
            sessions,
            metrics: Arc::clone(&metrics),
            settings: settings(&config),
            cluster: cluster.clone(),
            shutdown: shutdown.clone(),
        };
        let server = Arc::new(Server {
            connection: Arc::new(connection),
            ws_config: net::ws_config(config.limits.max_message_bytes),
            allowed_origins: config.allowed_origins.clone(),
            max_connections: config.limits.max_connections,
            handshake_timeout: Duration::from_millis(config.limits.handshake_timeout_ms),
            connections: TaskTracker::new(),
            demo,
        });
        let admin = Arc::new(Admin {
            router: Arc::clone(&router),
            hub: Arc::clone(&hub),
            registry: Arc::clone(&registry),
            metrics,
            swapper: Arc::clone(&swapper),
            cluster: cluster.clone(),
            token: admin_token,
            shutdown: shutdown.clone(),
        });
        Ok(App {
            hub,
            registry,
            router,
            server,
            admin,
            swapper,
            config,
            cluster,
            shutdown,
        })
    }

    /// Cluster mode: catches up with the cluster's plugin versions and
    /// starts the node's cluster tasks. Call before serving.
    pub(crate) async fn join_cluster(&self) -> anyhow::Result<()> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        let (router, hub, swapper) = (&self.router, &self.hub, &self.swapper);
        cluster
            .start(
                Arc::clone(router),
                Arc::clone(hub),
                Arc::clone(swapper),
                Arc::clone(&self.server.connection.sessions),
                self.shutdown.clone(),
            )
            .await
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// A loader like the server's, with another compile cache.
    pub fn loader(&self, cache: CompileCache) -> anyhow::Result<Loader> {
        App::loader_for(&self.config, &self.hub, cache)
    }

    fn loader_for(config: &Config, hub: &Arc<Hub>, cache: CompileCache) -> anyhow::Result<Loader> {
        Loader::new(Arc::clone(hub), config.plugin_limits.clone(), cache)
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn server(&self) -> &Arc<Server> {
        &self.server
    }

    pub(crate) fn admin(&self) -> &Arc<Admin> {
        &self.admin
    }

    pub(crate) fn swapper(&self) -> &Arc<Swapper> {
        &self.swapper
    }

    /// Cancelled on SIGTERM/SIGINT: ends connections (1001), grace
    /// periods, room timers and the plugins-directory watch.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }
}

/// The compile cache's directory, if the config keeps one.
pub(crate) fn cache_dir(config: &Config) -> Option<std::path::PathBuf> {
    let cache = &config.plugin_cache;
    cache
        .enabled
        .then(|| cache.dir.clone().or_else(default_cache_dir))
        .flatten()
}

fn settings(config: &Config) -> Settings {
    Settings {
        heartbeat: config.heartbeat.interval(),
        auth_timeout: Duration::from_millis(config.auth.timeout_ms),
        rate: (config.limits.rate_per_sec, config.limits.rate_burst),
        queue: QueueLimits {
            messages: config.limits.outbound_max_messages,
            bytes: config.limits.outbound_max_bytes,
        },
        ids: ClientIds::new(),
        resume_grace: Duration::from_millis(config.session.resume_grace_ms),
    }
}
