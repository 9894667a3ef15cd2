//! The one wasmtime `Engine` and `Linker` of the process, and the clock
//! that drives call deadlines.

use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::state::PluginState;
use crate::config::PluginLimits;

/// How often the epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances the pool can hold at once, over all plugins (each plugin keeps
/// a few warm instances, one per thread calling it).
const MAX_INSTANCES: u32 = 256;

pub(crate) fn engine(limits: &PluginLimits) -> anyhow::Result<Engine> {
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

const NO_STDIO: &str = "plugins have no stdout or stderr: log through the host's `log`";
const NO_BLOCKING: &str = "plugins may not block: a call must return promptly";

/// WASI functions replaced with a trap. The sync WASI bindings block on a
/// tokio runtime for these (to write to stdio, wait on a pollable, as in a
/// sleep, or set up a UDP socket), which panics on the runtime's own
/// worker threads, where plugin calls run; a plugin that calls one fails
/// its own call instead, with a message saying why.
const DENIED: [(&str, &str, &str); 5] = [
    ("wasi:cli/stdout@0.2.12", "get-stdout", NO_STDIO),
    ("wasi:cli/stderr@0.2.12", "get-stderr", NO_STDIO),
    ("wasi:io/poll@0.2.12", "poll", NO_BLOCKING),
    ("wasi:io/poll@0.2.12", "[method]pollable.block", NO_BLOCKING),
    (
        "wasi:sockets/udp-create-socket@0.2.12",
        "create-udp-socket",
        "plugins have no network",
    ),
];

fn deny_blocking(linker: &mut Linker<PluginState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    for (interface, name, reason) in DENIED {
        linker
            .instance(interface)
            .and_then(|mut instance| {
                instance.func_new(name, move |_, _, _, _| wasmtime::bail!("{reason}"))
            })
            .with_context(|| format!("replacing {interface}#{name}"))?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// WASI (deny-by-default: what a plugin may see is in its `WasiCtx`) and the
/// Switchboard host interface.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).context("linking WASI")?;
    deny_blocking(&mut linker)?;
    bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .context("linking the host interface")?;
    Ok(linker)
}
