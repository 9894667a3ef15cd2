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

/// The default chain's plugins and the examples an operator can enable
/// by name (`chat`, `moderation`, `room-ttl`).
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "auth-jwt",
        wasm: include_bytes!(env!("SWITCHBOARD_PLUGIN_AUTH_JWT")),
        env: &[JWT_SECRET_VAR],
    },
    builtin("rooms", include_bytes!(env!("SWITCHBOARD_PLUGIN_ROOMS"))),
    builtin(
        "signaling",
        include_bytes!(env!("SWITCHBOARD_PLUGIN_SIGNALING")),
    ),
    builtin("chat", include_bytes!(env!("SWITCHBOARD_PLUGIN_CHAT"))),
    builtin(
        "moderation",
        include_bytes!(env!("SWITCHBOARD_PLUGIN_MODERATION")),
    ),
    builtin(
        "room-ttl",
        include_bytes!(env!("SWITCHBOARD_PLUGIN_ROOM_TTL")),
    ),
];

/// A built-in plugin that reads no environment variables.
const fn builtin(name: &'static str, wasm: &'static [u8]) -> Builtin {
    Builtin {
        name,
        wasm,
        env: &[],
    }
}

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub(crate) fn names() -> String {
    BUILTINS
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}
