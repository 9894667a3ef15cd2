//! What one plugin instance's `Store` carries: its sandbox (a WASI context
//! with nothing but the granted variables and stdout and stderr kept for
//! the log, and memory limits), the effects of the call under way, and,
//! for a traced call, what it does written down.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use switchboard_recording::Step;

use super::output::{Output, Stream};
use crate::envelope::Frame;
use crate::ids::{ClientId, RoomId};
use crate::plugins::world::Scratch;
use crate::state::Hub;

/// Something a plugin asked for that goes out after its call returns, in
/// the order asked. Queuing them keeps the caller's reply first and lets a
/// failed call be dropped whole.
#[derive(Debug)]
pub enum Effect {
    Send(ClientId, Frame),
    /// One frame for several clients: the members of a room, chosen when
    /// the plugin asked, so a membership change later in the same call
    /// does not change who hears it.
    Broadcast {
        to: Vec<ClientId>,
        frame: Frame,
    },
    Kick(ClientId, String),
    Timer {
        plugin: Arc<str>,
        room: RoomId,
        delay_ms: u32,
        tag: String,
    },
}

/// A traced call's notes, on its instance for the call's length: every
/// step it takes through the imports, its clock, and the scratch world it
/// runs against instead of the hub, if any.
pub(super) struct Tracing {
    pub(super) steps: Vec<Step>,
    /// What `now` returns throughout the call, so a replay's clock can be
    /// the recorded one.
    pub(super) now: u64,
    pub(super) scratch: Option<Scratch>,
}

pub(crate) struct PluginState {
    pub(super) plugin: Arc<str>,
    pub(super) hub: Arc<Hub>,
    pub(super) effects: Vec<Effect>,
    /// `None` but during a traced call: boxed, so an untraced call moves a
    /// pointer in and out.
    pub(super) tracing: Option<Box<Tracing>>,
    /// Whole epoch ticks the call under way has run, at least.
    pub(super) ticks_run: u64,
    /// The data of the relay event an `on-relay` call under way decides,
    /// for `relay-data`; empty otherwise. Kept, with its capacity, across
    /// calls.
    pub(super) relay_data: String,
    pub(super) limits: StoreLimits,
    /// What the guest writes to stdout and stderr, logged after each call.
    output: Output,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl PluginState {
    pub(crate) fn new(
        plugin: Arc<str>,
        hub: Arc<Hub>,
        env: &[(String, String)],
        memory: usize,
    ) -> Self {
        let output = Output::default();
        let wasi = WasiCtx::builder()
            .envs(env)
            .stdout(output.pipe(Stream::Stdout))
            .stderr(output.pipe(Stream::Stderr))
            .build();
        PluginState {
            plugin,
            hub,
            effects: Vec::new(),
            tracing: None,
            ticks_run: 0,
            relay_data: String::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .trap_on_grow_failure(true)
                .build(),
            output,
            // Nothing but the granted variables and the output pipes: no
            // preopens, sockets, args or stdin.
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl PluginState {
    /// Logs what the call that just ended printed: after every call, the
    /// failed ones too (a panic's message is on stderr).
    pub(super) fn flush_output(&self) {
        self.output.flush(&self.plugin);
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
