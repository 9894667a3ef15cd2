//! The one wasmtime `Engine` and `Linker` of the process, and the clock
//! that drives call deadlines.

use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::p2::DynOutputStream;

use super::bindings;
use super::state::PluginState;
use crate::config::PluginLimits;

/// How often the epoch advances; call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances the pool can hold at once, over all plugins (each plugin keeps
/// a few warm instances, one per thread calling it).
const MAX_INSTANCES: u32 = 256;

pub fn engine(limits: &PluginLimits) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 8)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 2)
        .max_memory_size(limits.memory_bytes);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        // The pool reserves its address space up front (terabytes of it,
        // for the guard regions that spare bounds checks), which a process
        // under a virtual memory limit (`ulimit -v`, valgrind) cannot do.
        // Instances then reserve their own when they start.
        Err(e) => {
            tracing::warn!("cannot reserve the instance pool ({e:#}); allocating on demand");
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config).context("configuring the wasm engine")?
        }
    };
    start_epoch_clock(&engine);
    Ok(engine)
}

/// Advances the epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_clock(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-clock".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch clock thread");
}

/// Replaces WASI's stdout and stderr with a trap. The sync WASI bindings
/// block on a tokio runtime to write, which panics on the runtime's own
/// worker threads, where plugin calls run; a plugin that prints fails its
/// own call instead, with a message saying how to log.
fn deny_stdio(linker: &mut Linker<PluginState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    for (interface, getter) in [
        ("wasi:cli/stdout@0.2.12", "get-stdout"),
        ("wasi:cli/stderr@0.2.12", "get-stderr"),
    ] {
        linker
            .instance(interface)
            .and_then(|mut instance| {
                instance.func_wrap(
                    getter,
                    |_, ()| -> wasmtime::Result<(Resource<DynOutputStream>,)> {
                        wasmtime::bail!(
                            "plugins have no stdout or stderr: log through the host's `log`"
                        )
                    },
                )
            })
            .with_context(|| format!("replacing {interface}"))?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// WASI (deny-by-default: what a plugin may see is in its `WasiCtx`) and the
/// Switchboard host interface.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).context("linking WASI")?;
    deny_stdio(&mut linker)?;
    bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .context("linking the host interface")?;
    Ok(linker)
}
