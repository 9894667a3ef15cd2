//! What this host does with each interface a component imports, for
//! `switchboard check` and for link errors that say what to do.
//!
//! The linker decides what links; this table says what an import does once
//! linked (works, or is there but refused: waiting traps, files and network
//! fail), and how to get rid of an import the host does not provide.

use wasmtime::Engine;
use wasmtime::component::Component;

/// One interface a component imports.
pub struct Import {
    /// With its version: `wasi:io/poll@0.2.3`.
    pub name: String,
    pub support: Support,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Linked, and does what it says (the note says how, here).
    Works(&'static str),
    /// Linked, but using it traps or fails here: worth a warning.
    Refused(&'static str),
    /// Not provided: a component importing it does not link.
    Missing,
}

/// The interfaces `component` imports, in its order.
pub(super) fn imports(engine: &Engine, component: &Component) -> Vec<Import> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| Import {
            name: name.to_owned(),
            support: support(name),
        })
        .collect()
}

fn support(name: &str) -> Support {
    let interface = name.split('@').next().unwrap_or(name);
    let package = interface.split('/').next().unwrap_or(interface);
    match (package, interface) {
        ("switchboard:plugin", _) => Support::Works("the Switchboard host interface"),
        (_, "wasi:cli/stdout" | "wasi:cli/stderr") => {
            Support::Works("to the server's log after each call, bounded per call")
        }
        (_, "wasi:cli/stdin") => Support::Works("empty"),
        (_, "wasi:cli/environment") => {
            Support::Works("only the variables the chain entry's `env` grants; no arguments")
        }
        (_, "wasi:cli/exit") => Support::Refused("exiting ends the call as a trap"),
        (
            _,
            "wasi:cli/terminal-input"
            | "wasi:cli/terminal-output"
            | "wasi:cli/terminal-stdin"
            | "wasi:cli/terminal-stdout"
            | "wasi:cli/terminal-stderr",
        ) => Support::Works("no terminal"),
        (_, "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock") => {
            Support::Works("the real clocks")
        }
        (_, "wasi:io/poll") => Support::Refused(
            "waiting on a pollable traps (a sleep, a timer such as JS setTimeout, a blocking \
             read): a call must return promptly",
        ),
        (_, "wasi:io/error" | "wasi:io/streams") => Support::Works("streams: stdio only"),
        ("wasi:random", _) => Support::Works("real randomness"),
        ("wasi:filesystem", _) => {
            Support::Refused("no files: nothing is preopened, so every open fails")
        }
        ("wasi:sockets", _) => Support::Refused(
            "no network: every connection and name lookup fails, and creating a UDP socket traps",
        ),
        _ => Support::Missing,
    }
}

/// What to do about imports the host does not provide, `missing` by name.
pub(super) fn fix(missing: &[&str]) -> String {
    let names = missing
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if missing.iter().any(|name| name.starts_with("wasi:http/")) {
        format!(
            "it imports {names}, which this host does not provide (plugins have no network). \
             A componentize-js build imports wasi:http unless told not to: rebuild with \
             `jco componentize ... -d http -d fetch-event`. Otherwise remove the import"
        )
    } else {
        format!(
            "the host does not provide {names}; remove the import (a plugin reaches the world \
             only through switchboard:plugin/host, WASI's clocks and randomness, and its stdio)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_classified_by_interface_whatever_the_version() {
        assert!(matches!(
            support("switchboard:plugin/host@0.3.0"),
            Support::Works(_)
        ));
        assert!(matches!(
            support("wasi:cli/stdout@0.2.3"),
            Support::Works(_)
        ));
        assert!(matches!(support("wasi:io/poll@0.2.0"), Support::Refused(_)));
        assert!(matches!(
            support("wasi:sockets/tcp@0.2.12"),
            Support::Refused(_)
        ));
        assert!(matches!(
            support("wasi:filesystem/preopens@0.2.3"),
            Support::Refused(_)
        ));
        assert_eq!(support("wasi:http/types@0.2.3"), Support::Missing);
        assert_eq!(support("wasi:keyvalue/store@0.2.0"), Support::Missing);
    }

    #[test]
    fn the_fix_for_wasi_http_is_the_jco_flags() {
        let fix = fix(&["wasi:http/types@0.2.3", "wasi:http/outgoing-handler@0.2.3"]);
        assert!(fix.contains("-d http -d fetch-event"), "{fix}");
        assert!(fix.contains("`wasi:http/types@0.2.3`"), "{fix}");
        let fix = super::fix(&["wasi:keyvalue/store@0.2.0"]);
        assert!(
            fix.contains("does not provide `wasi:keyvalue/store@0.2.0`; remove the import"),
            "{fix}"
        );
    }
}
