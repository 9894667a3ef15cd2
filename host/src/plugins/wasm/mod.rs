//! The wasmtime facade: WASM components loaded, instantiated and called.
//! Outside this module nothing sees wasmtime or the generated bindings;
//! the rest of the host speaks in [`Outcome`], [`Relay`], [`Effect`] and
//! its own ids.
//!
//! The seam is checked here, once: values a plugin returns become typed
//! outcomes in `outcome` (validated by `contract`), and a host import that
//! sees the plugin break the contract traps the call where it happens.

mod bindings;
mod cache;
mod contract;
mod engine;
mod imports;
mod load;
mod outcome;
mod output;
mod pool;
mod provided;
mod state;

pub use cache::{CompileCache, default_dir as default_cache_dir};
pub(crate) use engine::lower_priority;
pub(crate) use imports::unix_millis;
pub use load::{Loader, PluginSource};
pub(crate) use load::{WIT_VERSION, sha256_hex};
pub use outcome::{Answer, AuthOutcome, Outcome, Relay};
pub use pool::{Called, Plugin, PluginFault};
pub use provided::{Import, Support};
pub use state::Effect;
