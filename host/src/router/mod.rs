//! What happens to one inbound message: the order of checks of
//! PROTOCOL.md and a dispatch over the events the host answers itself.
//! Each job has its module: `auth` (`auth:request`), `resume`
//! (`session:resume` and adopting a resumed session), `event` (an event
//! plugins handle: the chain under the room's lock and its outcome),
//! `relay` (delivery with `to` replaced by `from`), `effects` (what plugins
//! queued), `timers` (room timers, a task of their own) and `reply`
//! (replies and errors, each counted), `tap` (a call on a recorded room
//! traced and written down), and in cluster mode `forwarded`
//! (messages whose room another node owns, or had to be claimed).
//!
//! Every function here is synchronous: plugin calls are short and bounded
//! by their deadline, and delivery only enqueues.

mod auth;
mod effects;
mod event;
mod forwarded;
mod relay;
mod reply;
mod resume;
mod tap;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::Link;
use crate::config::{Config, EventRate};
use crate::envelope::{Envelope, ErrorCode};
use crate::ids::{ClientId, CorrelationId, EventName, RoomId};
use crate::metrics::Metrics;
use crate::net::{Admit, Outbox, RateLimit};
use crate::plugins::{Chains, Registry, unix_millis};
use crate::record::{Recorder, Shadows, input};
use crate::schema;
use crate::session::Sessions;
use crate::state::{self, Hub, Identity};
use crate::vocab::{CloseCode, event as events};

use reply::Cause;
use timers::Timers;

pub struct Router {
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    /// For kicks: a suspended session has no connection to close.
    sessions: Arc<Sessions>,
    timers: Timers,
    /// The rooms being recorded (`record`).
    recorder: Arc<Recorder>,
    /// The shadow runs, by chain entry.
    shadows: Arc<Shadows>,
    auth_required: bool,
    /// `limits.events`: buckets of their own for some events.
    event_rates: HashMap<String, EventRate>,
    /// Cluster mode: the way to the nodes that own other rooms.
    link: Option<Arc<Link>>,
}

/// One connection's protocol state, owned by its task.
pub struct Conn {
    id: ClientId,
    authenticated: bool,
    identity: Option<Arc<Identity>>,
    auth_failures: u32,
    /// Data messages received, rate-limited ones included: only the first
    /// may be a `session:resume`.
    messages: u64,
    /// The buckets of rate-limited events this connection has sent.
    event_limits: HashMap<EventName, RateLimit>,
}

impl Conn {
    pub fn id(&self) -> ClientId {
        self.id
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Counts a data message, as the rate limit sees it.
    pub(crate) fn count_message(&mut self) {
        self.messages += 1;
    }
}

/// At shutdown, ends every recording, so each file has its last line.
async fn end_recordings(recorder: Arc<Recorder>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    let _ = tokio::task::spawn_blocking(move || recorder.stop_all()).await;
}

/// Whether the connection stays open after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Close(CloseCode, &'static str),
    /// A well-formed `session:resume` as the first message: the
    /// connection, which owns the socket, takes the session over.
    Resume {
        token: String,
        cause: Option<CorrelationId>,
    },
    /// Cluster mode: the message joins a room nobody is known to own yet.
    /// The caller claims it (which awaits Redis) and hands the message
    /// back with [`Router::reroute`].
    Claim(RoomId),
}

impl Router {
    /// A router over the given state; room timers run on a task of their
    /// own until `shutdown`. Needs a tokio runtime to spawn it on.
    pub(crate) fn new(
        config: &Config,
        hub: Arc<Hub>,
        registry: Arc<Registry>,
        sessions: Arc<Sessions>,
        metrics: Arc<Metrics>,
        link: Option<Arc<Link>>,
        shutdown: CancellationToken,
    ) -> Arc<Router> {
        let recorder = Arc::new(Recorder::new(config.recordings.dir.clone()));
        tokio::spawn(end_recordings(Arc::clone(&recorder), shutdown.clone()));
        Arc::new_cyclic(|router| Router {
            hub,
            metrics,
            registry,
            sessions,
            timers: Timers::spawn(router.clone(), shutdown),
            recorder,
            shadows: Arc::default(),
            auth_required: config.auth.required,
            event_rates: config.limits.events.clone(),
            link,
        })
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub(crate) fn shadows(&self) -> &Arc<Shadows> {
        &self.shadows
    }

    pub(crate) fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Registers a new connection and runs the connect hooks.
    pub fn connect(&self, id: ClientId, outbox: Outbox) -> Conn {
        let identity = (!self.auth_required).then(|| {
            Arc::new(Identity {
                user_id: id.to_string(),
                role: None,
                room_claim: None,
            })
        });
        self.hub.register(id, outbox, identity.clone());
        self.enter_directory(id);
        // A client in no room: the stable chain.
        let chain = self.registry.chain();
        if let Some(info) = self.hub.client_info(id) {
            let tap = self.tap(None);
            for plugin in chain.with_hook(|p| p.descriptor.hooks.connect) {
                let input = || input::connect(&info);
                let called = self.call(tap.as_ref(), plugin, input, || plugin.on_connect(&info));
                self.run_hook(called, id);
            }
        }
        Conn {
            id,
            authenticated: identity.is_some(),
            identity,
            auth_failures: 0,
            messages: 0,
            event_limits: HashMap::new(),
        }
    }

    /// Cluster mode: enters a client of this node, with its session's
    /// token and identity, in the cluster's client directory.
    pub(crate) fn enter_directory(&self, id: ClientId) {
        if let Some(link) = &self.link
            && let Some(token) = self.sessions.token_of(id)
        {
            let identity = self.hub.client_info(id).and_then(|info| info.identity);
            link.directory(id, Some((&token, identity.as_deref())));
        }
    }

    /// Removes a connection: its room's other members get `room:peer-left`
    /// (reason `disconnected`), then the disconnect hooks run.
    pub(crate) fn disconnect(&self, id: ClientId) {
        let Some(info) = self.hub.client_info(id) else {
            return;
        };
        if let Some(link) = &self.link
            && self.hub.is_local(id)
        {
            link.directory(id, None);
            // A client whose room another node owns: the owner does the
            // rest, hooks included, after the messages the client sent
            // before.
            if let Some(owner) = self.hub.away(id) {
                self.hub.unregister(id);
                return link.gone(&owner, id);
            }
        }
        let _guard = info.room.as_ref().map(|room| self.hub.lock_room(room));
        // The room's versions, read before the client's leaving may close
        // it.
        let live = self.registry.live();
        let chain = self.room_chain(live.chains(), info.room.as_ref()).0;
        if let Some(room) = self.hub.unregister(id) {
            let frame = state::peer_left(&room, id, "disconnected");
            self.hub.broadcast(&room, &frame, None);
        }
        let tap = self.tap(info.room.as_ref());
        for plugin in chain.with_hook(|p| p.descriptor.hooks.disconnect) {
            let input = || input::disconnect(&info);
            let called = self.call(tap.as_ref(), plugin, input, || plugin.on_disconnect(&info));
            self.run_hook(called, id);
        }
    }

    /// Handles one text frame (the checks from step 4 of the order of
    /// checks on; size, rate and frame type are the connection's).
    pub fn handle_text(&self, conn: &mut Conn, text: &str) -> Verdict {
        let envelope = match Envelope::parse(text) {
            Ok(envelope) => envelope,
            Err(e) => {
                self.metrics.messages_in.inc("invalid");
                let (id, event) = (e.id.as_ref(), e.event.as_ref());
                self.send_error(conn.id, ErrorCode::InvalidMessage, &e.message, id, event);
                return Verdict::Open;
            }
        };
        let cause = Cause {
            id: envelope.id.as_ref(),
            event: &envelope.event,
        };
        // One set of chains for the whole message, this thread's copy.
        let live = self.registry.current();
        let chains = live.chains();
        self.count_in(chains, &envelope.event);
        let span = tracing::debug_span!(
            "message",
            client = %conn.id,
            room = tracing::field::Empty,
            event = %envelope.event,
            id = ?envelope.id,
        );
        let _span = span.enter();
        if let Some(verdict) = self.limit_event(conn, &cause) {
            return verdict;
        }
        if !conn.authenticated && !schema::allowed_before_auth(envelope.event.as_str()) {
            let message = "authenticate first with `auth:request`";
            self.error(conn.id, &cause, ErrorCode::NotAuthenticated, message);
            return Verdict::Open;
        }
        match envelope.event.as_str() {
            events::PING => {
                let data = json!({ "serverTime": unix_millis() });
                self.reply(conn.id, &cause, events::PONG, &data);
                Verdict::Open
            }
            events::SESSION_RESUME => self.check_resume(conn, &cause, &envelope.data.into_object()),
            // Auth has no room: the stable chain.
            events::AUTH_REQUEST => {
                self.authenticate(chains.stable, conn, &cause, &envelope.data.into_object())
            }
            _ => self.route(chains, conn.id, &cause, envelope.data, text),
        }
    }

    /// The event's own rate limit, if it has one: `RATE_LIMITED` for this
    /// message (with its `id`: unlike the connection's limit, this one
    /// needs the message parsed), then 4008 for abuse.
    fn limit_event(&self, conn: &mut Conn, cause: &Cause) -> Option<Verdict> {
        let rate = self.event_rates.get(cause.event.as_str())?;
        let now = Instant::now();
        let limit = conn
            .event_limits
            .entry(cause.event.clone())
            .or_insert_with(|| RateLimit::new(rate.rate_per_sec, rate.rate_burst, now));
        let admit = limit.admit(now);
        if admit == Admit::Yes {
            return None;
        }
        let message = format!("too many `{}` messages; slow down", cause.event);
        self.error(conn.id, cause, ErrorCode::RateLimited, &message);
        Some(match admit {
            Admit::Abuse => Verdict::Close(CloseCode::RateAbuse, "rate limit abuse"),
            _ => Verdict::Open,
        })
    }

    /// Counts an inbound event under its name if the protocol or the chain
    /// defines it, so clients cannot mint metric labels.
    fn count_in(&self, chains: Chains<'_>, event: &EventName) {
        let event = event.as_str();
        let known = schema::is_protocol_event(event) || chains.declares(event);
        self.metrics
            .messages_in
            .inc(if known { event } else { "unknown" });
    }
}
