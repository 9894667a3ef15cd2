//! The generated bindings for `wit/switchboard.wit`. Nothing outside the
//! `wasm` module uses these types: the facade converts them to the host's
//! own.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // The imports whose arguments a plugin can get wrong (an invalid event
    // name, data or metadata that is not an object) trap the call there.
    imports: {
        "switchboard:plugin/host.send": trappable,
        "switchboard:plugin/host.broadcast": trappable,
        "switchboard:plugin/host.join-room": trappable,
    },
});

pub use self::switchboard::plugin::types;
pub use exports::switchboard::plugin::guest::Guest;
