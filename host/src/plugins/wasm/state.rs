//! What one plugin instance's `Store` carries: its sandbox (an empty WASI
//! context and memory limits) and the effects of the call under way.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::envelope::Frame;
use crate::ids::{ClientId, RoomId};
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

pub(crate) struct PluginState {
    pub(super) plugin: Arc<str>,
    pub(super) hub: Arc<Hub>,
    pub(super) effects: Vec<Effect>,
    /// Whole epoch ticks the call under way has run, at least.
    pub(super) ticks_run: u64,
    /// The data of the relay event an `on-relay` call under way decides,
    /// for `relay-data`; empty otherwise. Kept, with its capacity, across
    /// calls.
    pub(super) relay_data: String,
    pub(super) limits: StoreLimits,
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
        PluginState {
            plugin,
            hub,
            effects: Vec::new(),
            ticks_run: 0,
            relay_data: String::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .trap_on_grow_failure(true)
                .build(),
            // Nothing but the granted variables: no preopens, sockets, args;
            // stdio goes nowhere (plugins log through the host's `log`).
            wasi: WasiCtx::builder().envs(env).build(),
            table: ResourceTable::new(),
        }
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
