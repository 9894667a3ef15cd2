//! The Switchboard wire format (PROTOCOL.md): validated identifiers, the
//! envelope parser and writers, and the `data` schemas of the events the
//! protocol defines. It has no I/O and no plugin runtime, so the fuzz
//! targets build it quickly with sanitizers. The words it shares with the
//! guest SDK (identifiers, codes, event names) come from
//! `switchboard-vocab` and are re-exported where they used to be defined.

pub mod envelope;
pub mod ids;
pub mod schema;
