//! The plugins that ship inside the `switchboard` binary (built by
//! `build.rs`), so that `switchboard serve` runs the whole protocol with no
//! files beside it.

pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
    /// Environment variables the plugin reads unless its entry in the
    /// config says otherwise.
    pub env: &'static [&'static str],
}

pub const JWT_SECRET_VAR: &str = "SWITCHBOARD_JWT_SECRET";

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "auth-jwt",
        wasm: include_bytes!(env!("SWITCHBOARD_PLUGIN_AUTH_JWT")),
        env: &[JWT_SECRET_VAR],
    },
    Builtin {
        name: "rooms",
        wasm: include_bytes!(env!("SWITCHBOARD_PLUGIN_ROOMS")),
        env: &[],
    },
    Builtin {
        name: "signaling",
        wasm: include_bytes!(env!("SWITCHBOARD_PLUGIN_SIGNALING")),
        env: &[],
    },
];

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub fn names() -> String {
    BUILTINS
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}
