//! The one wasmtime `Engine` and `Linker` of the process, and the clock
//! that drives call deadlines.

use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable, ResourceType};
use wasmtime::error::Context as _;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
    StoreContextMut,
};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::sync::io::streams;
use wasmtime_wasi::p2::{DynOutputStream, StreamError, StreamResult};

use super::bindings;
use super::state::PluginState;
use crate::config::MAX_PLUGIN_MEMORY;

/// How often the epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Set (to anything), the engine writes a perf map of the code it loads,
/// so that `perf` names a plugin's functions (BENCHMARKS.md, "Plugins per
/// call in each language", profiles the JavaScript engine this way).
const PERF_MAP_VAR: &str = "SWITCHBOARD_PERF_MAP";

/// Instances the pool can hold at once, over all plugins (each plugin keeps
/// a few warm instances, one per thread calling it).
const MAX_INSTANCES: u32 = 256;

/// The niceness of the threads that compile plugins: under load, the
/// scheduler gives the workers that serve clients the cores first, so a
/// compile on a live server (a hot swap of an 18 MB Python component
/// takes seconds of both cores) waits rather than delays every room. An
/// idle machine still compiles at full speed.
pub(crate) const COMPILE_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority to
/// [`COMPILE_NICENESS`]; a thread cannot raise it again, so only threads
/// that do nothing but compile call this.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        unsafe extern "C" {
            fn gettid() -> std::ffi::c_int;
            fn setpriority(
                which: std::ffi::c_int,
                who: std::ffi::c_uint,
                prio: std::ffi::c_int,
            ) -> std::ffi::c_int;
        }
        const PRIO_PROCESS: std::ffi::c_int = 0;
        // SAFETY: neither call takes a pointer; on Linux a thread id names
        // that one thread for `setpriority`.
        let failed =
            unsafe { setpriority(PRIO_PROCESS, gettid() as std::ffi::c_uint, COMPILE_NICENESS) }
                != 0;
        if failed {
            tracing::debug!(
                "could not lower a compile thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// wasmtime compiles a component's functions in parallel on rayon's global
/// pool, made here at low priority before anything compiles (a thread
/// keeps the priority it started with), with one thread fewer than the
/// cores: a compile on a live server leaves a core to the clients whatever
/// the scheduler makes of the niceness.
fn compile_pool() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores.saturating_sub(1).max(1))
        .thread_name(|i| format!("plugin-compile-{i}"))
        .start_handler(|_| lower_priority())
        .build_global();
    // Already built: by an earlier engine of this process (tests make
    // several).
    drop(pool);
}

pub(crate) fn engine() -> anyhow::Result<Engine> {
    compile_pool();
    let mut pool = PoolingAllocationConfig::new();
    // Each plugin's own limit is its stores' (`StoreLimits`); the pool
    // takes any a plugin may be given. Its slots are 4 GiB of address
    // space each whatever this says (the reservation that spares bounds
    // checks), and only what an instance touches is committed.
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 8)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 2)
        .max_memory_size(MAX_PLUGIN_MEMORY);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if std::env::var_os(PERF_MAP_VAR).is_some() {
        // `perf report` names the plugins' compiled functions (by the
        // component's name section, where it has one) from
        // /tmp/perf-PID.map.
        config.profiler(ProfilingStrategy::PerfMap);
    }
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

const NO_BLOCKING: &str = "plugins may not block: a call must return promptly";

/// WASI functions replaced with a trap. The sync WASI bindings block on a
/// tokio runtime for these (to wait on a pollable, as in a sleep, to splice
/// streams, or to set up a UDP socket), which panics on the runtime's own
/// worker threads, where plugin calls run; a plugin that calls one fails
/// its own call instead, with a message saying why.
const DENIED: [(&str, &str, &str); 4] = [
    ("wasi:io/poll@0.2.12", "poll", NO_BLOCKING),
    ("wasi:io/poll@0.2.12", "[method]pollable.block", NO_BLOCKING),
    (
        "wasi:io/streams@0.2.12",
        "[method]output-stream.blocking-splice",
        NO_BLOCKING,
    ),
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
    output_streams(linker).context("replacing wasi:io/streams#output-stream")?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The output stream calls that the sync WASI bindings run by blocking on
/// the tokio runtime (the `blocking-*` writes and flush, and dropping a
/// stream), which would panic on a worker thread, done without waiting.
/// The only output streams a plugin can open here are its stdout and
/// stderr (it has no files and no sockets), and those take every write at
/// once into memory (`output.rs`), so nothing is ever waited for.
fn output_streams(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    let mut streams = linker.instance(STREAMS)?;
    streams.resource(
        "output-stream",
        ResourceType::host::<DynOutputStream>(),
        |mut store, rep| {
            let table = store.data_mut().ctx().table;
            table.delete(Resource::<DynOutputStream>::new_own(rep))?;
            Ok(())
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: StoreContextMut<'_, PluginState>,
         (stream, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let table = store.data_mut().ctx().table;
            let result = write_and_flush(table, &stream, bytes);
            stream_result(table, result)
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: StoreContextMut<'_, PluginState>,
         (stream, len): (Resource<DynOutputStream>, u64)| {
            let table = store.data_mut().ctx().table;
            // Checked before the zeroes are made: a guest may ask for 2^64.
            let result = match usize::try_from(len) {
                Ok(len) if len <= BLOCKING_MAX => write_and_flush(table, &stream, vec![0; len]),
                _ => Err(too_long()),
            };
            stream_result(table, result)
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store: StoreContextMut<'_, PluginState>, (stream,): (Resource<DynOutputStream>,)| {
            let table = store.data_mut().ctx().table;
            let result = table
                .get_mut(&stream)
                .map_err(StreamError::from)
                .and_then(|stream| stream.flush());
            stream_result(table, result)
        },
    )?;
    Ok(())
}

const STREAMS: &str = "wasi:io/streams@0.2.12";

/// What `blocking-write-and-flush` may be given at once (wasi:io says
/// 4096 bytes; wasmtime traps beyond it too).
const BLOCKING_MAX: usize = 4096;

fn write_and_flush(
    table: &mut ResourceTable,
    stream: &Resource<DynOutputStream>,
    bytes: Vec<u8>,
) -> StreamResult<()> {
    if bytes.len() > BLOCKING_MAX {
        return Err(too_long());
    }
    let stream = table.get_mut(stream)?;
    if stream.check_write()? < bytes.len() {
        return Err(StreamError::trap(NO_BLOCKING));
    }
    stream.write(bytes.into())?;
    stream.flush()
}

fn too_long() -> StreamError {
    StreamError::trap("a blocking write and flush of more than 4096 bytes")
}

/// A stream result as the guest gets it: a trap, or `stream-error`.
fn stream_result(
    table: &mut ResourceTable,
    result: StreamResult<()>,
) -> wasmtime::Result<(Result<(), streams::StreamError>,)> {
    match result {
        Ok(()) => Ok((Ok(()),)),
        Err(e) => Ok((Err(streams::Host::convert_stream_error(table, e)?),)),
    }
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
