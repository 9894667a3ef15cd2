//! Write Switchboard plugins in plain Rust.
//!
//! A plugin is a type that implements [`Plugin`]; one call of
//! [`export_plugin!`] turns it into the WebAssembly component the host loads.
//! Plugins speak in this crate's types ([`ClientInfo`], [`Outcome`], …) and
//! reach the host through the [`Host`] trait, so their logic can be unit
//! tested natively against [`testing::TestHost`] with a plain `cargo test`.
//!
//! ```
//! use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn describe() -> Descriptor {
//!         Descriptor {
//!             name: "echo".into(),
//!             version: "0.1.0".into(),
//!             events: vec![EventDecl::new("echo")],
//!             hooks: vec![],
//!         }
//!     }
//!
//!     fn new(_config: &str) -> Result<Self, String> {
//!         Ok(Echo)
//!     }
//!
//!     fn on_event(&self, _host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
//!         match (event, &client.room) {
//!             ("echo", Some(_)) => Outcome::Reply { event: "echo".into(), data: data.into() },
//!             ("echo", None) => Outcome::reject(ErrorCode::NotInRoom, "join a room first"),
//!             _ => Outcome::Pass,
//!         }
//!     }
//! }
//!
//! switchboard_sdk::export_plugin!(Echo);
//! ```
//!
//! Build the component with `cargo build --release --target wasm32-wasip2`;
//! the plugin crate needs `crate-type = ["cdylib", "rlib"]` (the `rlib` is
//! for its native tests).

// The generated bindings name this crate by its external name, so that the
// export macro they generate also works when expanded inside a plugin crate.
extern crate self as switchboard_sdk;

mod guest;
mod host;
mod plugin;
pub mod testing;
mod types;

pub use host::Host;
pub use plugin::Plugin;
/// The protocol error codes, as the host and clients know them.
///
/// A plugin may reject with any of them, but `RATE_LIMITED`,
/// `RESUME_FAILED` and `PLUGIN_ERROR` are codes only the host answers
/// with: the WIT interface has no such cases, so a plugin's rejection with
/// one of them reaches the client as `INTERNAL`.
#[doc(inline)]
pub use switchboard_vocab::ErrorCode;
#[doc(inline)]
pub use switchboard_vocab::RelayEvent;
/// The names of the events PROTOCOL.md defines, e.g. [`event::ROOM_JOIN`].
#[doc(inline)]
pub use switchboard_vocab::event;
pub use types::{
    AuthOutcome, ClientInfo, Descriptor, EventDecl, Hook, Identity, LogLevel, Outcome, Peer,
    ProtocolError, Relay, RelayOutcome,
};

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The wit-bindgen output. Kept out of the public API: plugins use this
/// crate's own types, so a WIT revision changes only this crate.
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "switchboard_sdk::__bindings",
        runtime_path: "switchboard_sdk::__wit_bindgen::rt",
    });
}

/// What [`export_plugin!`] expands to; not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use crate::__bindings::exports::switchboard::plugin::guest::Guest;
    pub use crate::__bindings::switchboard::plugin::types as wit;
    pub use crate::guest::{FlushStdout, Instance, WasmHost, log_panics_to_host};
}

/// Exports a [`Plugin`] as the component's `guest` interface.
///
/// Call it once, at the root of the plugin crate. The host calls `init` once
/// per instance; the plugin built by [`Plugin::new`] then serves every later
/// call of that instance.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            use ::std::option::Option;
            use ::std::result::Result;
            use ::std::string::String;
            use $crate::__private::{FlushStdout, Instance, WasmHost, wit};

            static INSTANCE: Instance<$plugin> = Instance::new();

            struct Export;

            impl $crate::__private::Guest for Export {
                fn describe() -> wit::Descriptor {
                    let _flush = FlushStdout;
                    <$plugin as $crate::Plugin>::describe().into()
                }
                fn init(config: String) -> Result<(), String> {
                    let _flush = FlushStdout;
                    $crate::__private::log_panics_to_host();
                    INSTANCE.init(&config)
                }
                fn on_connect(client: wit::ClientInfo) {
                    let _flush = FlushStdout;
                    INSTANCE.on_connect(&WasmHost, client)
                }
                fn on_auth(
                    client: wit::ClientInfo,
                    token: String,
                    room_id: Option<String>,
                ) -> wit::AuthOutcome {
                    let _flush = FlushStdout;
                    INSTANCE.on_auth(&WasmHost, client, &token, room_id.as_deref())
                }
                fn on_event(client: wit::ClientInfo, event: String, data: String) -> wit::Outcome {
                    let _flush = FlushStdout;
                    INSTANCE.on_event(&WasmHost, client, &event, &data)
                }
                fn on_relay(relay: wit::Relay) -> wit::RelayOutcome {
                    let _flush = FlushStdout;
                    INSTANCE.on_relay(&WasmHost, relay)
                }
                fn on_disconnect(client: wit::ClientInfo) {
                    let _flush = FlushStdout;
                    INSTANCE.on_disconnect(&WasmHost, client)
                }
                fn on_timer(room: String, tag: String) {
                    let _flush = FlushStdout;
                    INSTANCE.on_timer(&WasmHost, &room, &tag)
                }
            }

            // Natively a plugin is a library for its unit tests, and the
            // component's export names (`pkg/iface@version#func`) are not
            // valid symbol names for a native linker.
            #[cfg(target_arch = "wasm32")]
            $crate::__bindings::export! { Export with_types_in $crate::__bindings }
        };
    };
}
