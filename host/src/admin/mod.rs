//! The operator's HTTP API, on its own listener: health, metrics, plugins
//! (list, hot swap, rollback, versions, rollouts), recordings of rooms,
//! rooms, and removing a client.

mod http;
mod recording;
mod rollout;
mod shadow;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use http::{Reply, error, json_reply, percent_decode, same, text};

use crate::cluster::Cluster;
use crate::ids::{ClientId, RoomId};
use crate::metrics::{self, Metrics};
use crate::plugins::{Plugin, PluginSource, Registry, SwapError, Swapper};
use crate::router::Router;
use crate::state::{Hub, Peer};

/// The largest component `PUT /admin/plugins/{name}` and
/// `POST /admin/plugins/{name}/versions` take.
const MAX_COMPONENT_BYTES: usize = 64 << 20;

pub(crate) struct Admin {
    pub(crate) router: Arc<Router>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) swapper: Arc<Swapper>,
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// From `SWITCHBOARD_ADMIN_TOKEN`; `None` leaves the API open (the
    /// listener is then loopback only).
    pub(crate) token: Option<String>,
    pub(crate) shutdown: CancellationToken,
}

/// A plugin version as the admin API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PluginInfo {
    name: String,
    version: String,
    hash: String,
    loaded_at: u64,
    calls: u64,
    errors: u64,
}

impl PluginInfo {
    fn of(plugin: &Plugin) -> PluginInfo {
        PluginInfo {
            name: plugin.name.to_string(),
            version: plugin.descriptor.version.clone(),
            hash: plugin.hash.clone(),
            loaded_at: plugin.loaded_at,
            calls: plugin.stats.calls(),
            errors: plugin.stats.errors(),
        }
    }
}

impl Admin {
    /// Serves until the process exits, so `/readyz` can answer 503 while
    /// the WebSocket side drains.
    pub(crate) async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admin = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(|request| {
                    let admin = Arc::clone(&admin);
                    async move { Ok::<_, Infallible>(admin.handle(request).await) }
                });
                let http = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = http.await {
                    tracing::debug!("admin connection: {e}");
                }
            });
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Reply {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = request.method().clone();
        match (&method, segments.as_slice()) {
            (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok\n"),
            (&Method::GET, ["readyz"]) if self.shutdown.is_cancelled() => {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            }
            (&Method::GET, ["readyz"]) if self.cluster.as_ref().is_some_and(|c| !c.accepting()) => {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cut off from Redis past this node's lease\n",
                )
            }
            (&Method::GET, ["readyz"]) => text(StatusCode::OK, "ready\n"),
            _ if !self.authorized(&request) => {
                let mut reply = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                reply
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                reply
            }
            (&Method::GET, ["metrics"]) => self.metrics(),
            (&Method::GET, ["admin", "plugins"]) => self.plugins(),
            (&Method::PUT, ["admin", "plugins", name]) => {
                let name = name.to_string();
                self.put_plugin(name, request).await
            }
            (&Method::POST, ["admin", "plugins", name, "rollback"]) => {
                self.change(name, Swapper::rollback).await
            }
            (&Method::GET, ["admin", "plugins", name, "versions"]) => self.versions(name),
            (&Method::POST, ["admin", "plugins", name, "versions"]) => {
                let name = name.to_string();
                self.upload(name, request).await
            }
            (&Method::GET, ["admin", "plugins", name, "rollout"]) => self.rollout(name),
            (&Method::PUT, ["admin", "plugins", name, "rollout"]) => {
                let name = name.to_string();
                self.set_rollout(name, request).await
            }
            (&Method::PUT, ["admin", "plugins", name, "rollout", "rooms", room]) => {
                let (name, room) = (name.to_string(), room.to_string());
                self.move_room(&name, &room, request).await
            }
            (&Method::POST, ["admin", "plugins", name, "promote"]) => {
                self.change(name, Swapper::promote).await
            }
            (&Method::POST, ["admin", "plugins", name, "abort"]) => {
                self.change(name, Swapper::abort).await
            }
            (&Method::GET, ["admin", "plugins", name, "shadow"]) => self.shadow(name).await,
            (&Method::PUT, ["admin", "plugins", name, "shadow"]) => {
                let name = name.to_string();
                self.start_shadow(&name, request).await
            }
            (&Method::DELETE, ["admin", "plugins", name, "shadow"]) => self.stop_shadow(name).await,
            (&Method::GET, ["admin", "recordings"]) => self.recordings(),
            (&Method::POST, ["admin", "recordings"]) => self.start_recording(request).await,
            (&Method::DELETE, ["admin", "recordings", id]) => self.stop_recording(id).await,
            (&Method::GET, ["admin", "rooms"]) => self.rooms(),
            (&Method::GET, ["admin", "rooms", id]) => match &self.cluster {
                Some(cluster) => cluster_room(cluster, id).await,
                None => self.room(id),
            },
            (&Method::DELETE, ["admin", "clients", id]) => self.remove_client(id).await,
            (&Method::GET, ["admin", "nodes"]) => self.nodes().await,
            _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
        }
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        given
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
    }

    fn metrics(&self) -> Reply {
        let hub = &self.hub;
        let mut out = String::new();
        let gauges = metrics::HubGauges {
            rooms: hub.rooms().len(),
            queued: hub.queued(),
            tasks: tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        };
        self.metrics.render(&mut out, gauges);
        if let Some(cluster) = &self.cluster {
            cluster.metrics.render(&mut out);
        }
        let chain = self.registry.chain();
        let canaries = self.registry.canaries();
        // A canary whose version string is its stable version's (another
        // build of the same version) is told apart by its hash.
        let canary_versions: Vec<String> = canaries
            .iter()
            .map(|canary| {
                let version = &canary.plugin.descriptor.version;
                let stable = chain.find(&canary.plugin.name);
                if stable.is_some_and(|s| s.descriptor.version == *version) {
                    let short: String = canary.plugin.hash.chars().take(12).collect();
                    format!("{version}+{short}")
                } else {
                    version.clone()
                }
            })
            .collect();
        let plugins: Vec<_> = chain
            .plugins
            .iter()
            .map(|p| (&*p.name, p.descriptor.version.as_str(), &p.stats))
            .chain(
                canaries
                    .iter()
                    .zip(&canary_versions)
                    .map(|(c, version)| (&*c.plugin.name, version.as_str(), &c.plugin.stats)),
            )
            .collect();
        metrics::render_calls(&mut out, &plugins);
        self.render_shadows(&mut out);
        let mut reply = Response::new(Full::new(Bytes::from(out)));
        reply.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        reply
    }

    /// A rollback, promote or abort of `name`, off the async workers.
    async fn change(
        &self,
        name: &str,
        change: fn(&Swapper, &str) -> Result<Arc<Plugin>, SwapError>,
    ) -> Reply {
        let swapper = Arc::clone(&self.swapper);
        let name = name.to_owned();
        blocking(move || change(&swapper, &name), live).await
    }

    fn plugins(&self) -> Reply {
        let chain = self.registry.chain();
        let plugins: Vec<PluginInfo> = chain.plugins.iter().map(|p| PluginInfo::of(p)).collect();
        json_reply(StatusCode::OK, &json!({ "plugins": plugins }))
    }

    async fn put_plugin(&self, name: String, request: Request<Incoming>) -> Reply {
        let source = match component(request).await {
            Ok(source) => source,
            Err(reply) => return reply,
        };
        let swapper = Arc::clone(&self.swapper);
        blocking(move || swapper.swap(&name, source), live).await
    }

    fn rooms(&self) -> Reply {
        #[derive(Serialize)]
        struct Room {
            #[serde(rename = "roomId")]
            room_id: String,
            members: usize,
        }
        let mut rooms: Vec<Room> = self
            .hub
            .rooms()
            .into_iter()
            .map(|(id, members)| Room {
                room_id: id.to_string(),
                members,
            })
            .collect();
        rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        json_reply(StatusCode::OK, &json!({ "rooms": rooms }))
    }

    fn room(&self, id: &str) -> Reply {
        let Some(room) = percent_decode(id).as_deref().and_then(RoomId::parse) else {
            return error(StatusCode::NOT_FOUND, "no such room");
        };
        let peers: Vec<Peer> = self.hub.members(&room);
        if peers.is_empty() {
            return error(StatusCode::NOT_FOUND, "no such room");
        }
        json_reply(
            StatusCode::OK,
            &json!({ "roomId": room.as_str(), "peers": peers }),
        )
    }

    /// Closes a client's connection with 4009; in a cluster, on whichever
    /// node it is connected to.
    async fn remove_client(&self, id: &str) -> Reply {
        let reason = "removed by an operator";
        let Some(id) = ClientId::parse(id) else {
            return error(StatusCode::NOT_FOUND, "no such client");
        };
        let removed = if self.hub.is_local(id) {
            self.router.kick(id, reason.into());
            true
        } else if let Some(cluster) = &self.cluster {
            match cluster.kick(id, reason).await {
                Ok(found) => found,
                Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
            }
        } else {
            false
        };
        if !removed {
            return error(StatusCode::NOT_FOUND, "no such client");
        }
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::default())
            .expect("valid response")
    }

    async fn nodes(&self) -> Reply {
        let Some(cluster) = &self.cluster else {
            return error(StatusCode::NOT_FOUND, "not in cluster mode");
        };
        match cluster.nodes().await {
            Ok(nodes) => json_reply(StatusCode::OK, &json!({ "nodes": nodes })),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
        }
    }
}

/// A room's members on every node, from the cluster's mirror of it.
async fn cluster_room(cluster: &Cluster, id: &str) -> Reply {
    let Some(room) = percent_decode(id).as_deref().and_then(RoomId::parse) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    match cluster.members(&room).await {
        Ok(peers) if peers.is_empty() => error(StatusCode::NOT_FOUND, "no such room"),
        Ok(peers) => json_reply(
            StatusCode::OK,
            &json!({ "roomId": room.as_str(), "peers": peers }),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
    }
}

/// A component in a request's body, with where it came from.
async fn component(request: Request<Incoming>) -> Result<PluginSource, Reply> {
    let bytes = body(request, MAX_COMPONENT_BYTES, "the component").await?;
    Ok(PluginSource {
        origin: format!("upload ({} bytes)", bytes.len()),
        bytes,
    })
}

/// A request's body, up to `limit` bytes; 413 beyond.
async fn body(request: Request<Incoming>, limit: usize, what: &str) -> Result<Vec<u8>, Reply> {
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(body) => Ok(body.to_bytes().to_vec()),
        Err(e) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("reading {what}: {e}"),
        )),
    }
}

/// Makes a plugin change off the async workers (it may compile) and
/// answers with `answer` of what it returned, or with why it failed.
async fn blocking<T: Send + 'static>(
    change: impl FnOnce() -> Result<T, SwapError> + Send + 'static,
    answer: impl FnOnce(T) -> Reply,
) -> Reply {
    match tokio::task::spawn_blocking(change).await {
        Ok(Ok(value)) => answer(value),
        Ok(Err(e)) => refused(&e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("plugin task failed: {e}"),
        ),
    }
}

/// The version a swap, rollback, promote or abort made live.
fn live(plugin: Arc<Plugin>) -> Reply {
    json_reply(StatusCode::OK, &PluginInfo::of(&plugin))
}

/// A refused plugin change's answer.
fn refused(e: &SwapError) -> Reply {
    let status = match e {
        SwapError::UnknownPlugin(_) => StatusCode::NOT_FOUND,
        SwapError::NoPrevious(_) | SwapError::NoCanary(_) | SwapError::Conflict(_) => {
            StatusCode::CONFLICT
        }
        SwapError::Invalid(_) | SwapError::UnknownVersion { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    error(status, &e.to_string())
}
