//! What a plugin hands the host, checked once, at the seam: event names
//! and JSON objects it sends, replies with, or joins with as metadata.
//!
//! A value that breaks the contract is a [`Breach`]: in a host import it
//! traps the call there (the import returns it as its error, as
//! wasmtime-wasi's trappable imports do); in a returned outcome it fails
//! the call the same way. Either way the client gets `PLUGIN_ERROR`, the
//! instance is discarded, and the call's queued effects are dropped.

use serde_json::value::RawValue;

use crate::envelope;
use crate::ids::EventName;

/// A plugin broke the host contract.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Breach(String);

/// An event a plugin sends or replies with: a valid name and an object.
pub(crate) fn message(event: &str, data: &str) -> Result<(EventName, Box<RawValue>), Breach> {
    let Some(name) = EventName::parse(event) else {
        return Err(Breach(format!("sent an invalid event name {event:?}")));
    };
    Ok((name, object(data)?))
}

/// JSON text that must be one object: an event's `data`, a peer's
/// metadata.
pub(crate) fn object(text: &str) -> Result<Box<RawValue>, Breach> {
    envelope::json_object(text)
        .ok_or_else(|| Breach("passed data that is not a JSON object".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_objects_are_checked() {
        let (name, data) = message("chat:message", r#"{"a":1}"#).unwrap();
        assert_eq!((name.as_str(), data.get()), ("chat:message", r#"{"a":1}"#));
        assert!(message("Chat", "{}").is_err());
        for not_an_object in ["[]", "1", "\"x\"", "{", ""] {
            assert!(object(not_an_object).is_err(), "{not_an_object:?}");
        }
    }
}
