//! The generated bindings for `wit/switchboard.wit`. Nothing outside the
//! `plugin` module uses these types: the facade converts them to the
//! host's own.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

pub use self::switchboard::plugin::types;
pub use exports::switchboard::plugin::guest::Guest;
