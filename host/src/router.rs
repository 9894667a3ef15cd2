//! What happens to one inbound message: the order of checks of
//! PROTOCOL.md, then the plugin chain, then delivery of what the plugins
//! decided. Also the connect and disconnect hooks and room timers.
//!
//! Every function here is synchronous: plugin calls are short and bounded
//! by their deadline, and delivery only enqueues.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chain::{Chain, Registry};
use crate::config::EventRate;
use crate::envelope::{self, Data, Envelope, ErrorCode, Frame};
use crate::hub::{self, Hub, Identity, Outbound};
use crate::ids::{ClientId, CorrelationId, EventName, RoomId};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::plugin::{
    AuthOutcome, Called, Effect, Outcome, Plugin, PluginFault, Relay, unix_millis,
};
use crate::rate_limit::{Admit, RateLimit};
use crate::schema::{self, AuthRequest, Normalized};
use crate::session::{ResumeToken, Sessions};

/// Failed auth attempts after which a connection is closed (4003).
const MAX_AUTH_FAILURES: u32 = 3;

pub const CLOSE_AUTH_FAILURES: u16 = 4003;
pub const CLOSE_RATE_ABUSE: u16 = 4008;
pub const CLOSE_KICKED: u16 = 4009;

pub struct Router {
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub auth_required: bool,
    /// `limits.events`: buckets of their own for some events.
    pub event_rates: HashMap<String, EventRate>,
    pub sessions: Sessions,
    /// Ends room timers and grace periods on shutdown.
    pub shutdown: CancellationToken,
}

/// One connection's protocol state, owned by its task.
pub struct Conn {
    pub id: ClientId,
    pub authenticated: bool,
    identity: Option<Arc<Identity>>,
    auth_failures: u32,
    /// Data messages received, rate-limited ones included: only the first
    /// may be a `session:resume`.
    pub messages: u64,
    /// The buckets of rate-limited events this connection has sent.
    event_limits: HashMap<EventName, RateLimit>,
}

/// Whether the connection stays open after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Close(u16, &'static str),
    /// A well-formed `session:resume` as the first message: the
    /// connection, which owns the socket, takes the session over.
    Resume {
        token: String,
        cause: Option<CorrelationId>,
    },
}

/// The message being handled, for replies and logs.
struct Cause<'a> {
    id: Option<&'a CorrelationId>,
    event: &'a EventName,
}

impl Router {
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
        let chain = self.registry.chain();
        if let Some(info) = self.hub.client_info(id) {
            for plugin in chain.with_hook(|p| p.descriptor.hooks.connect) {
                self.run_hook(plugin.on_connect(&info), id);
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

    /// Makes `conn` the client `id`, whose session it resumed: it is
    /// authenticated as that session was.
    pub fn adopt(&self, conn: &mut Conn, id: ClientId) {
        let identity = self.hub.client_info(id).and_then(|info| info.identity);
        conn.id = id;
        conn.authenticated = identity.is_some();
        conn.identity = identity;
    }

    /// Removes a connection: its room's other members get `room:peer-left`
    /// (reason `disconnected`), then the disconnect hooks run.
    pub fn disconnect(&self, id: ClientId) {
        let Some(info) = self.hub.client_info(id) else {
            return;
        };
        let _guard = info.room.as_ref().map(|room| self.hub.lock_room(room));
        if let Some(room) = self.hub.unregister(id) {
            self.hub
                .broadcast(&room, &hub::peer_left(&room, id, "disconnected"), None);
        }
        let chain = self.registry.chain();
        for plugin in chain.with_hook(|p| p.descriptor.hooks.disconnect) {
            self.run_hook(plugin.on_disconnect(&info), id);
        }
    }

    /// Closes a client's connection with 4009; a suspended session, with
    /// no connection to close, ends at once.
    pub fn kick(&self, id: ClientId, reason: String) {
        if !self.sessions.cut_short(id) {
            self.hub.send(id, Outbound::Close(CLOSE_KICKED, reason));
        }
    }

    /// Handles one text frame (the checks from step 4 of the order of
    /// checks on; size and frame type are the connection's).
    pub fn handle_text(self: &Arc<Self>, conn: &mut Conn, text: &str) -> Verdict {
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
        // One chain for the whole message: taking it is two atomic
        // operations on a line every worker shares.
        let chain = self.registry.chain();
        self.count_in(&chain, &envelope.event);
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
            self.error(
                conn.id,
                &cause,
                ErrorCode::NotAuthenticated,
                "authenticate first with `auth:request`",
            );
            return Verdict::Open;
        }
        match envelope.event.as_str() {
            schema::PING => {
                self.reply(
                    conn.id,
                    &cause,
                    "pong",
                    &json!({ "serverTime": unix_millis() }),
                );
                Verdict::Open
            }
            schema::SESSION_RESUME => self.resume(conn, &cause, &envelope.data.into_object()),
            schema::AUTH_REQUEST => {
                self.authenticate(&chain, conn, &cause, &envelope.data.into_object())
            }
            _ => {
                self.route(&chain, conn.id, &cause, envelope.data);
                Verdict::Open
            }
        }
    }

    /// The event's own rate limit, if it has one: `RATE_LIMITED` for this
    /// message (with its `id`: unlike the connection's limit, this one
    /// needs the message parsed), or 4008 for abuse.
    fn limit_event(&self, conn: &mut Conn, cause: &Cause) -> Option<Verdict> {
        let rate = self.event_rates.get(cause.event.as_str())?;
        let now = Instant::now();
        let limit = conn
            .event_limits
            .entry(cause.event.clone())
            .or_insert_with(|| RateLimit::new(rate.rate_per_sec, rate.rate_burst, now));
        match limit.admit(now) {
            Admit::Yes => None,
            Admit::Limited => {
                let message = format!("too many `{}` messages; slow down", cause.event);
                self.error(conn.id, cause, ErrorCode::RateLimited, &message);
                Some(Verdict::Open)
            }
            Admit::Abuse => Some(Verdict::Close(CLOSE_RATE_ABUSE, "rate limit abuse")),
        }
    }

    /// Checks a `session:resume`; the connection does the rest.
    fn resume(&self, conn: &Conn, cause: &Cause, data: &Map<String, Value>) -> Verdict {
        let token = match schema::resume_token(data) {
            Ok(token) => token,
            Err(message) => {
                self.error(conn.id, cause, ErrorCode::InvalidMessage, &message);
                return Verdict::Open;
            }
        };
        if conn.messages > 1 {
            // The token stays valid: a late attempt does not use it up.
            let message = "`session:resume` must be the connection's first message";
            self.error(conn.id, cause, ErrorCode::ResumeFailed, message);
            return Verdict::Open;
        }
        Verdict::Resume {
            token: token.to_owned(),
            cause: cause.id.cloned(),
        }
    }

    pub fn resume_failed(&self, to: ClientId, id: Option<&CorrelationId>, message: &str) {
        let event = EventName::parse(schema::SESSION_RESUME);
        self.send_error(to, ErrorCode::ResumeFailed, message, id, event.as_ref());
    }

    /// `session:resumed` for the connection that resumed `id`.
    pub fn resumed(
        &self,
        id: ClientId,
        token: &ResumeToken,
        replayed: usize,
        cause: Option<&CorrelationId>,
    ) -> Frame {
        let room = self.hub.client_info(id).and_then(|info| info.room);
        let data = json!({
            "clientId": id.to_string(),
            "roomId": room.as_ref().map(RoomId::as_str),
            "replayed": replayed,
            "resumeToken": token.as_str(),
        });
        envelope::frame("session:resumed", cause, &data)
    }

    fn authenticate(
        self: &Arc<Self>,
        chain: &Chain,
        conn: &mut Conn,
        cause: &Cause,
        data: &Map<String, Value>,
    ) -> Verdict {
        let auth_plugins: Vec<_> = chain.with_hook(|p| p.descriptor.hooks.auth).collect();
        if auth_plugins.is_empty() {
            self.error(
                conn.id,
                cause,
                ErrorCode::UnknownEvent,
                "no plugin handles authentication",
            );
            return Verdict::Open;
        }
        let request = match AuthRequest::parse(data) {
            Ok(request) => request,
            Err(message) => {
                self.error(conn.id, cause, ErrorCode::InvalidMessage, &message);
                return Verdict::Open;
            }
        };
        let Some(info) = self.hub.client_info(conn.id) else {
            return Verdict::Open;
        };
        let mut effects = Vec::new();
        let mut decision = AuthOutcome::Pass;
        for plugin in auth_plugins {
            match plugin.on_auth(&info, &request.token, request.room_id.as_deref()) {
                Ok(Called {
                    value: AuthOutcome::Pass,
                    effects: e,
                }) => effects.extend(e),
                Ok(Called { value, effects: e }) => {
                    effects.extend(e);
                    decision = value;
                    break;
                }
                Err(fault) => {
                    self.plugin_error(conn.id, cause, &fault);
                    return Verdict::Open;
                }
            }
        }
        let verdict = match decision {
            AuthOutcome::Accept(identity) => self.accept_identity(conn, cause, identity),
            AuthOutcome::Reject(reason) => self.auth_failed(conn, cause, &reason),
            AuthOutcome::Pass => self.auth_failed(conn, cause, "no auth plugin accepted the token"),
        };
        self.apply(effects);
        verdict
    }

    fn accept_identity(&self, conn: &mut Conn, cause: &Cause, identity: Identity) -> Verdict {
        if let Some(current) = &conn.identity
            && conn.authenticated
            && current.user_id != identity.user_id
        {
            return self.auth_failed(
                conn,
                cause,
                "the token is for another user than this connection's",
            );
        }
        let data = json!({ "success": true, "userId": identity.user_id });
        let identity = Arc::new(identity);
        self.hub.set_identity(conn.id, Arc::clone(&identity));
        conn.identity = Some(identity);
        conn.authenticated = true;
        self.reply(conn.id, cause, "auth:response", &data);
        Verdict::Open
    }

    fn auth_failed(&self, conn: &mut Conn, cause: &Cause, reason: &str) -> Verdict {
        conn.auth_failures += 1;
        self.metrics.errors.inc(ErrorCode::AuthFailed.as_str());
        let data = json!({ "success": false, "error": { "code": ErrorCode::AuthFailed, "message": reason } });
        self.reply(conn.id, cause, "auth:response", &data);
        tracing::info!(client = %conn.id, failures = conn.auth_failures, "auth failed: {reason}");
        if conn.auth_failures >= MAX_AUTH_FAILURES {
            return Verdict::Close(CLOSE_AUTH_FAILURES, "too many failed auth attempts");
        }
        Verdict::Open
    }

    /// Steps 6 to 8 of the order of checks, for events plugins handle.
    fn route(self: &Arc<Self>, chain: &Chain, id: ClientId, cause: &Cause, data: Data) {
        let event = cause.event.as_str();
        let plugins = chain.route(event);
        if plugins.is_empty() {
            self.error(
                id,
                cause,
                ErrorCode::UnknownEvent,
                &format!("no handler for `{}`", cause.event),
            );
            return;
        }
        let data = match schema::normalize(event, data) {
            Ok(data) => data,
            Err(message) => return self.error(id, cause, ErrorCode::InvalidMessage, &message),
        };
        if let Normalized::Object(object) = &data
            && let Err(message) = chain.validate(event, object)
        {
            return self.error(id, cause, ErrorCode::InvalidMessage, &message);
        }
        let Some(info) = self.hub.client_info(id) else {
            return;
        };
        let room = info.room.clone().or_else(|| match &data {
            Normalized::Object(object) if event == schema::ROOM_JOIN => schema::join_target(object),
            _ => None,
        });
        if let Some(room) = &room {
            tracing::Span::current().record("room", tracing::field::display(room));
        }
        let _guard = room.as_ref().map(|room| self.hub.lock_room(room));
        // The client a relay event's `to` names, if it is a client id.
        let target = match &data {
            Normalized::Relay(relay) => ClientId::parse(&relay.to),
            Normalized::Object(_) => None,
        };
        let decided = match &data {
            Normalized::Relay(relay) => {
                let target_room = target.and_then(|to| self.hub.room_of(to));
                let call = Relay {
                    kind: relay.kind,
                    sender: id,
                    target,
                    same_room: info.room.is_some() && target_room == info.room,
                };
                run_chain(plugins, |plugin| plugin.on_relay(&call, relay.json()))
            }
            Normalized::Object(object) => {
                let json = object.to_string();
                run_chain(plugins, |plugin| plugin.on_event(&info, event, &json))
            }
        };
        let decided = match decided {
            Ok(decided) => decided,
            Err(fault) => return self.plugin_error(id, cause, &fault),
        };
        match decided.outcome {
            Outcome::Pass | Outcome::Handled => {}
            Outcome::Reply { event, data } => match reply_frame(&event, &data, cause.id) {
                Some(frame) => {
                    self.hub.send(id, Outbound::Frame(frame));
                }
                None => {
                    let reason =
                        format!("replied with an invalid event {event:?} or non-object data");
                    let fault = PluginFault {
                        plugin: decided.by,
                        reason,
                    };
                    return self.plugin_error(id, cause, &fault);
                }
            },
            Outcome::Relay(target) => self.relay(id, cause, ClientId::parse(&target), data),
            Outcome::Deliver => self.relay(id, cause, target, data),
            Outcome::Reject { code, message } => self.error(id, cause, code, &message),
        }
        self.apply(decided.effects);
    }

    /// Delivers a relayed event to `target` with `to` replaced by `from`.
    fn relay(&self, from: ClientId, cause: &Cause, target: Option<ClientId>, data: Normalized) {
        let Some(target) = target else {
            return self.error(from, cause, ErrorCode::PeerNotFound, "no such peer");
        };
        let sender = from.to_string();
        let data = match data {
            Normalized::Relay(relay) => relay.forwarded(&sender),
            // A custom event a plugin chose to relay.
            Normalized::Object(mut object) => {
                if let Some(fields) = object.as_object_mut() {
                    fields.remove("to");
                    fields.insert("from".into(), Value::String(sender));
                }
                object.to_string()
            }
        };
        let frame = envelope::frame_json(cause.event, None, &data);
        if !self.hub.send(target, Outbound::Frame(frame)) {
            self.error(from, cause, ErrorCode::PeerNotFound, "no such peer");
        }
    }

    /// Delivers what plugins queued, in the order they queued it.
    fn apply(self: &Arc<Self>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send(to, frame) => {
                    self.hub.send(to, Outbound::Frame(frame));
                }
                Effect::Broadcast {
                    room,
                    frame,
                    except,
                } => self.hub.broadcast(&room, &frame, except),
                Effect::Kick(client, reason) => self.kick(client, reason),
                Effect::Timer {
                    plugin,
                    room,
                    delay_ms,
                    tag,
                } => self.schedule_timer(plugin, room, delay_ms, tag),
            }
        }
    }

    fn schedule_timer(
        self: &Arc<Self>,
        plugin: Arc<str>,
        room: RoomId,
        delay_ms: u32,
        tag: String,
    ) {
        let router = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                _ = router.shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(delay_ms.into())) => router.fire_timer(&plugin, &room, &tag),
            }
        });
    }

    fn fire_timer(self: &Arc<Self>, plugin: &str, room: &RoomId, tag: &str) {
        let chain = self.registry.chain();
        let Some(plugin) = chain
            .plugins
            .iter()
            .find(|p| &*p.name == plugin && p.descriptor.hooks.timer)
        else {
            return;
        };
        let _guard = self.hub.lock_room(room);
        if !self.hub.room_exists(room) {
            return;
        }
        match plugin.on_timer(room.as_str(), tag) {
            Ok(called) => self.apply(called.effects),
            Err(fault) => tracing::warn!(room = %room, "timer: {fault}"),
        }
    }

    fn run_hook(&self, result: Result<Called<()>, PluginFault>, id: ClientId) {
        match result {
            Ok(called) => {
                for effect in called.effects {
                    // Hooks run outside any message: only sends make sense.
                    if let Effect::Send(to, frame) = effect {
                        self.hub.send(to, Outbound::Frame(frame));
                    }
                }
            }
            Err(fault) => tracing::warn!(client = %id, "hook: {fault}"),
        }
    }

    /// Counts an inbound event under its name if the protocol or the chain
    /// defines it, so clients cannot mint metric labels.
    fn count_in(&self, chain: &Chain, event: &EventName) {
        let event = event.as_str();
        let known = schema::is_protocol_event(event) || !chain.route(event).is_empty();
        self.metrics
            .messages_in
            .inc(if known { event } else { "unknown" });
    }

    /// Answers a message over the rate limit (step 2 of the order of
    /// checks): it is not parsed, so the error has no `id` or `event`.
    pub fn rate_limited(&self, id: ClientId) {
        self.metrics.messages_in.inc("rate_limited");
        let message = "too many messages; slow down";
        self.send_error(id, ErrorCode::RateLimited, message, None, None);
    }

    /// Answers a binary frame (step 3 of the order of checks).
    pub fn binary_frame(&self, id: ClientId) {
        self.metrics.messages_in.inc("binary");
        let message = "binary frames are not supported; send JSON text";
        self.send_error(id, ErrorCode::InvalidMessage, message, None, None);
    }

    fn reply(&self, id: ClientId, cause: &Cause, event: &str, data: &Value) {
        self.hub
            .send(id, Outbound::Frame(envelope::frame(event, cause.id, data)));
    }

    fn error(&self, id: ClientId, cause: &Cause, code: ErrorCode, message: &str) {
        self.send_error(id, code, message, cause.id, Some(cause.event));
    }

    /// Every `error` message goes out through here, so each is counted.
    fn send_error(
        &self,
        to: ClientId,
        code: ErrorCode,
        message: &str,
        id: Option<&CorrelationId>,
        event: Option<&EventName>,
    ) {
        self.metrics.errors.inc(code.as_str());
        let frame = envelope::error_frame(code, message, id, event);
        self.hub.send(to, Outbound::Frame(frame));
    }

    fn plugin_error(&self, id: ClientId, cause: &Cause, fault: &PluginFault) {
        tracing::warn!(client = %id, event = %cause.event, id = ?cause.id, "{fault}");
        let message = format!("plugin `{}` failed to handle this message", fault.plugin);
        self.error(id, cause, ErrorCode::PluginError, &message);
    }
}

/// What the chain decided about an event, who decided it, and every
/// plugin's queued effects in chain order.
struct Decided {
    outcome: Outcome,
    by: Arc<str>,
    effects: Vec<Effect>,
}

/// Asks each plugin in turn, with `call`, until one decides.
fn run_chain(
    plugins: &[Arc<Plugin>],
    call: impl Fn(&Plugin) -> Result<Called<Outcome>, PluginFault>,
) -> Result<Decided, PluginFault> {
    let mut effects = Vec::new();
    for plugin in plugins {
        let called = call(plugin)?;
        effects.extend(called.effects);
        if !matches!(called.value, Outcome::Pass) {
            return Ok(Decided {
                outcome: called.value,
                by: Arc::clone(&plugin.name),
                effects,
            });
        }
    }
    Ok(Decided {
        outcome: Outcome::Pass,
        by: "chain".into(),
        effects,
    })
}

fn reply_frame(event: &str, data: &str, id: Option<&CorrelationId>) -> Option<Frame> {
    let event = EventName::parse(event)?;
    let data = envelope::json_object(data)?;
    Some(envelope::frame_raw(event.as_str(), id, &data))
}
