//! A loaded plugin and its warm instances.
//!
//! Instances are reused across calls (a fresh one costs tens of
//! microseconds, a warm call well under one): each thread keeps one idle
//! instance per plugin, since a thread makes one call at a time and no call
//! re-enters its plugin. A call takes it, so threads never share one. An
//! instance whose call trapped, timed out or ran out of memory is dropped,
//! and the next call starts a fresh one from the `InstancePre`.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use switchboard_recording::{Decision, Input};
use thread_local::ThreadLocal;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{Guest, Plugin as Bindings, PluginPre};
use super::engine::EPOCH_TICK;
use super::imports::unix_millis;
use super::load::Prepared;
use super::outcome::{
    Answer, AuthOutcome, Descriptor, Outcome, Relay, wit_client_info, wit_recorded_client,
    wit_recorded_relay, wit_relay,
};
use super::state::{Effect, PluginState, Tracing};
use crate::config::PluginLimits;
use crate::metrics::CallStats;
use crate::plugins::world::Scratch;
use crate::schema;
use crate::state::{ClientInfo, Hub};

pub struct Plugin {
    pub(crate) name: Arc<str>,
    pub(crate) descriptor: Descriptor,
    /// SHA-256 of the component, hex.
    pub(crate) hash: String,
    /// Unix milliseconds.
    pub(crate) loaded_at: u64,
    pub(crate) stats: CallStats,
    pre: PluginPre<PluginState>,
    hub: Arc<Hub>,
    /// JSON text handed to `init` of every new instance.
    config: String,
    env: Vec<(String, String)>,
    limits: PluginLimits,
    /// Each thread's idle instance. One shared list would put its lock,
    /// taken twice per call by every worker, on a cache line the workers
    /// pass back and forth; a thread's own slot stays in its cache. (A
    /// thread that stops calling keeps its instance until the plugin is
    /// retired or dropped, or another thread takes over its slot.)
    idle: ThreadLocal<Mutex<Option<Instance>>>,
    /// Replaced by another version: keeps no idle instances, so old
    /// versions do not hold slots of the instance pool.
    retired: AtomicBool,
}

struct Instance {
    store: Store<PluginState>,
    bindings: Bindings,
}

/// A plugin call failed: it trapped, ran out of time or memory, or broke
/// the host contract (which traps too). The caller answers `PLUGIN_ERROR`.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` failed: {reason}")]
pub struct PluginFault {
    pub plugin: Arc<str>,
    pub reason: String,
}

/// A successful call's result and the effects it queued.
pub struct Called<R> {
    pub value: R,
    pub effects: Vec<Effect>,
}

/// A traced call ([`Plugin::trace`]): what it returned, as the router acts
/// on it, and what it decided, as a recording holds it.
pub struct Traced {
    pub result: Result<Called<Answer>, PluginFault>,
    pub decision: Decision,
    /// The scratch world it ran against, with its writes.
    pub scratch: Option<Scratch>,
}

impl Plugin {
    pub(super) fn new(
        name: Arc<str>,
        prepared: Prepared,
        hub: Arc<Hub>,
        config: String,
        env: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Plugin {
        Plugin {
            name,
            descriptor: prepared.descriptor,
            hash: prepared.hash,
            loaded_at: unix_millis(),
            stats: CallStats::default(),
            pre: prepared.pre,
            hub,
            config,
            env,
            limits,
            idle: ThreadLocal::new(),
            retired: AtomicBool::new(false),
        }
    }

    /// The JSON text its instances' `init` gets.
    pub(crate) fn config(&self) -> &str {
        &self.config
    }

    /// The names of the environment variables it may read.
    pub(crate) fn env_names(&self) -> Vec<String> {
        self.env.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Called when another version replaces this one.
    pub fn retire(&self) {
        self.retired.store(true, Relaxed);
        for idle in self.idle.iter() {
            idle.lock().take();
        }
    }

    /// Called when this version is live again (a rollback).
    pub fn revive(&self) {
        self.retired.store(false, Relaxed);
    }

    /// Instantiates and initialises one instance, so a bad config or a
    /// plugin that cannot start fails at load rather than on a client.
    pub(super) fn warm_up(&self) -> Result<(), PluginFault> {
        let instance = self.instantiate()?;
        *self.idle.get_or_default().lock() = Some(instance);
        Ok(())
    }

    pub fn on_event(
        &self,
        client: &ClientInfo,
        event: &str,
        data: &str,
    ) -> Result<Called<Outcome>, PluginFault> {
        let client = wit_client_info(client);
        self.call(&mut None, |guest, store| {
            let outcome = guest.call_on_event(store, &client, event, data)?;
            Ok(Outcome::try_from(outcome)?)
        })
    }

    /// `data` is the relay's data, for `relay-data`.
    pub fn on_relay(
        &self,
        relay: &Relay,
        data: &schema::Relay,
    ) -> Result<Called<Outcome>, PluginFault> {
        let relay = wit_relay(relay);
        self.call(&mut None, |guest, store| {
            data.write_data(&mut store.data_mut().relay_data);
            let outcome = guest.call_on_relay(&mut *store, relay);
            store.data_mut().relay_data.clear();
            Ok(Outcome::try_from(outcome?)?)
        })
    }

    pub fn on_auth(
        &self,
        client: &ClientInfo,
        token: &str,
        room_id: Option<&str>,
    ) -> Result<Called<AuthOutcome>, PluginFault> {
        let client = wit_client_info(client);
        self.call(&mut None, |guest, store| {
            guest.call_on_auth(store, &client, token, room_id)
        })
        .map(|called| called.map(AuthOutcome::from))
    }

    pub fn on_connect(&self, client: &ClientInfo) -> Result<Called<()>, PluginFault> {
        let client = wit_client_info(client);
        self.call(&mut None, |guest, store| {
            guest.call_on_connect(store, &client)
        })
    }

    pub fn on_disconnect(&self, client: &ClientInfo) -> Result<Called<()>, PluginFault> {
        let client = wit_client_info(client);
        self.call(&mut None, |guest, store| {
            guest.call_on_disconnect(store, &client)
        })
    }

    pub fn on_timer(&self, room: &str, tag: &str) -> Result<Called<()>, PluginFault> {
        let room = room.to_owned();
        self.call(&mut None, |guest, store| {
            guest.call_on_timer(store, &room, tag)
        })
    }

    /// Calls `input` with every step it takes written down, against the
    /// hub, or, given a `scratch` world, against that, where every write
    /// stays; `now` is its clock. On the hub its effects are the caller's
    /// to carry out as any call's; in a scratch world they go nowhere
    /// unless the caller sends them.
    pub fn trace(&self, input: &Input, now: u64, scratch: Option<Scratch>) -> Traced {
        let mut tracing = Some(Box::new(Tracing {
            steps: Vec::new(),
            now,
            scratch,
        }));
        let result = self.call(&mut tracing, |guest, store| call_input(guest, store, input));
        let (steps, scratch) = tracing.map_or_else(Default::default, |tracing| {
            let Tracing { steps, scratch, .. } = *tracing;
            (steps, scratch)
        });
        let decision = match &result {
            Ok(called) => Decision {
                outcome: called.value.ruling(),
                effects: steps,
            },
            Err(fault) => Decision::fault(&fault.reason, steps),
        };
        Traced {
            result,
            decision,
            scratch,
        }
    }

    /// One call on this thread's instance. `tracing` is lent to the
    /// instance for the call and handed back, its notes taken.
    fn call<R>(
        &self,
        tracing: &mut Option<Box<Tracing>>,
        f: impl FnOnce(&Guest, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<Called<R>, PluginFault> {
        let idle = self.idle.get_or_default();
        let mut instance = match idle.lock().take() {
            Some(instance) => instance,
            None => self.instantiate()?,
        };
        let started = Instant::now();
        instance.store.data_mut().tracing = tracing.take();
        // A host function that panics (a WASI call this host did not
        // foresee) must cost only this call, like a trap: the instance is
        // discarded below and the connection lives on.
        let result = panic::catch_unwind(AssertUnwindSafe(|| self.run(&mut instance, f)))
            .unwrap_or_else(|panic| Err(wasmtime::Error::msg(panic_message(&panic))));
        *tracing = instance.store.data_mut().tracing.take();
        let elapsed = started.elapsed();
        self.stats.record(elapsed.as_secs_f64());
        instance.store.data().flush_output();
        let effects = std::mem::take(&mut instance.store.data_mut().effects);
        let value = match result {
            Ok(value) => value,
            Err(trap) => {
                let counter = match trap.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => &self.stats.timeouts,
                    _ => &self.stats.traps,
                };
                counter.fetch_add(1, Relaxed);
                return Err(self.fault(format!("{trap:#} (after {elapsed:?}; instance discarded)")));
            }
        };
        if !self.retired.load(Relaxed) {
            *idle.lock() = Some(instance);
        }
        Ok(Called { value, effects })
    }

    fn run<R>(
        &self,
        instance: &mut Instance,
        f: impl FnOnce(&Guest, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        arm_deadline(&mut instance.store);
        f(
            instance.bindings.switchboard_plugin_guest(),
            &mut instance.store,
        )
    }

    fn instantiate(&self) -> Result<Instance, PluginFault> {
        let state = PluginState::new(
            Arc::clone(&self.name),
            Arc::clone(&self.hub),
            &self.env,
            self.limits.memory_bytes,
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        let budget = self.deadline_ticks();
        store.epoch_deadline_callback(move |mut store| {
            let state = store.data_mut();
            state.ticks_run += 1;
            if state.ticks_run >= budget {
                return Ok(UpdateDeadline::Interrupt);
            }
            leave_worker_thread();
            Ok(UpdateDeadline::Continue(1))
        });
        arm_deadline(&mut store);
        let init = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| format!("instantiating: {e:#}"))
            .and_then(|bindings| {
                let init = bindings
                    .switchboard_plugin_guest()
                    .call_init(&mut store, &self.config);
                match init {
                    Ok(Ok(())) => Ok(bindings),
                    Ok(Err(reason)) => Err(format!("init refused its config: {reason}")),
                    Err(trap) => Err(format!("init trapped: {trap:#}")),
                }
            });
        // A start function or `init` may have printed why it failed.
        store.data().flush_output();
        let bindings = init.map_err(|reason| self.fault(reason))?;
        Ok(Instance { store, bindings })
    }

    fn deadline_ticks(&self) -> u64 {
        self.limits
            .deadline_ms
            .div_ceil(EPOCH_TICK.as_millis() as u64)
    }

    fn fault(&self, reason: String) -> PluginFault {
        PluginFault {
            plugin: Arc::clone(&self.name),
            reason,
        }
    }
}

/// Calls the guest export `input` names, with its arguments.
fn call_input(
    guest: &Guest,
    store: &mut Store<PluginState>,
    input: &Input,
) -> wasmtime::Result<Answer> {
    Ok(match input {
        Input::Event {
            client,
            event,
            data,
        } => {
            let client = wit_recorded_client(client);
            let outcome = guest.call_on_event(store, &client, event, data.get())?;
            Answer::Event(Outcome::try_from(outcome)?)
        }
        Input::Relay {
            event,
            sender,
            target,
            same_room,
            data,
        } => {
            let relay = wit_recorded_relay(event, sender, target.as_deref(), *same_room)
                .ok_or_else(|| wasmtime::Error::msg(format!("not a relay: {input}")))?;
            store.data_mut().relay_data.push_str(data.get());
            let outcome = guest.call_on_relay(&mut *store, relay);
            store.data_mut().relay_data.clear();
            Answer::Event(Outcome::try_from(outcome?)?)
        }
        Input::Auth {
            client,
            token,
            room_id,
        } => {
            let client = wit_recorded_client(client);
            let outcome = guest.call_on_auth(store, &client, token, room_id.as_deref())?;
            Answer::Auth(AuthOutcome::from(outcome))
        }
        Input::Connect { client } => {
            guest.call_on_connect(store, &wit_recorded_client(client))?;
            Answer::Done
        }
        Input::Disconnect { client } => {
            guest.call_on_disconnect(store, &wit_recorded_client(client))?;
            Answer::Done
        }
        Input::Timer { room, tag } => {
            guest.call_on_timer(store, room, tag)?;
            Answer::Done
        }
    })
}

/// Every call starts with two ticks of grace, so the callback first runs
/// once the call has run at least one whole tick, and then on every tick
/// after, until it has run its budget; then it is interrupted, which traps.
/// One tick of grace would do the same on average, but a healthy call
/// (microseconds) that happened to span a tick boundary would pay for
/// [`leave_worker_thread`]: under load, that is a stall of a millisecond
/// or more many times a second.
fn arm_deadline(store: &mut Store<PluginState>) {
    store.data_mut().ticks_run = 0;
    store.set_epoch_deadline(2);
}

/// Plugin calls run on the tokio worker that read the message. A slow one
/// would hold up every task queued on that worker, other rooms included, so
/// it hands the worker (and its queue) to a new thread and finishes on this
/// one as a plain blocking thread.
///
/// tokio takes the worker back when `block_in_place`'s closure returns if
/// the new thread has not picked it up yet, hence the short wait, and the
/// retry on every tick of a slow call (a no-op once the worker has gone).
fn leave_worker_thread() {
    use tokio::runtime::{Handle, RuntimeFlavor};
    const HANDOFF: Duration = Duration::from_millis(1);
    if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
        tokio::task::block_in_place(|| std::thread::sleep(HANDOFF));
    }
}

impl<R> Called<R> {
    pub(crate) fn map<S>(self, f: impl FnOnce(R) -> S) -> Called<S> {
        Called {
            value: f(self.value),
            effects: self.effects,
        }
    }
}

fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("a host call panicked: {text}")
}

#[cfg(test)]
mod tests {
    use crate::ids::{ClientId, RoomId};
    use crate::plugins::testing::{load_built, load_builtin};
    use crate::plugins::{Outcome, Relay};
    use crate::schema;
    use crate::state::ClientInfo;
    use crate::vocab::RelayEvent;

    fn offer(same_room: bool) -> Relay {
        Relay {
            event: RelayEvent::SdpOffer,
            sender: ClientId::from_u64(1),
            target: Some(ClientId::from_u64(2)),
            same_room,
        }
    }

    #[test]
    fn calls_reuse_the_threads_warm_instance_until_the_version_retires() {
        let signaling = load_builtin("signaling", "{}").unwrap();
        let idle = || {
            signaling
                .idle
                .get()
                .is_some_and(|slot| slot.lock().is_some())
        };
        assert!(idle(), "warmed up at load");
        let data = r#"{"to":"0000000000000002","sdp":"v=0"}"#;
        let data = schema::read_relay("sdp:offer", data).unwrap();
        let called = signaling.on_relay(&offer(true), &data).unwrap();
        assert!(matches!(called.value, Outcome::Deliver));
        assert!(idle(), "the instance went back to its slot");
        signaling.retire();
        assert!(!idle());
        let called = signaling.on_relay(&offer(false), &data).unwrap();
        assert!(!matches!(called.value, Outcome::Deliver));
        assert!(!idle(), "a retired version keeps no instance");
        assert_eq!(signaling.stats.calls(), 2);
        assert_eq!(signaling.stats.errors(), 0);
    }

    #[test]
    fn a_config_the_plugin_refuses_fails_the_load() {
        let Err(error) = load_builtin("room-ttl", r#"{"ttl_ms":"soon"}"#) else {
            panic!("a config room-ttl cannot read was accepted");
        };
        assert!(
            format!("{error:#}").contains("init refused its config"),
            "{error:#}"
        );
    }

    /// A JavaScript runtime's heap is garbage collected inside the
    /// instance's linear memory, which never shrinks: a runtime that
    /// leaked a little on every call would trap once it reached the memory
    /// cap, failing that call. The componentize-js 0.23 build of the chat
    /// did, after 36,000 to 59,000 calls at the default 32 MiB
    /// (BENCHMARKS.md, "Plugins per call in each language"); the QuickJS build must not.
    #[test]
    fn the_javascript_chat_serves_a_hundred_thousand_calls_in_the_default_memory() {
        let chat = load_built(
            "chat",
            "plugins-js/chat/dist/chat.wasm",
            "scripts/build-js-plugins",
        );
        let member = ClientInfo {
            id: ClientId::from_u64(1),
            identity: None,
            room: Some(RoomId::parse("r").unwrap()),
        };
        for call in 0..50_000 {
            let passed = chat
                .on_event(&member, "other:event", "{}")
                .unwrap_or_else(|fault| panic!("call {call}: {fault:?}"));
            assert!(matches!(passed.value, Outcome::Pass), "call {call}");
            let sent = chat
                .on_event(&member, "chat:message", r#"{"text":"hello"}"#)
                .unwrap_or_else(|fault| panic!("call {call}: {fault:?}"));
            assert_eq!(sent.effects.len(), 1, "call {call}: one broadcast");
        }
    }
}
