//! The default signaling relay: `sdp:offer`, `sdp:answer` and
//! `ice:candidate` go to another member of the sender's room.
//!
//! The plugin only decides whether a relay is allowed; the host delivers it
//! with `to` replaced by `from`.

use serde::Deserialize;
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

const EVENTS: [&str; 3] = ["sdp:offer", "sdp:answer", "ice:candidate"];

pub struct Signaling;

/// The part of a relayed message this plugin reads; the host already
/// validated the rest.
#[derive(Deserialize)]
struct Relay {
    to: String,
}

impl Plugin for Signaling {
    fn describe() -> Descriptor {
        Descriptor {
            name: "signaling".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: EVENTS.map(EventDecl::new).into(),
            hooks: vec![],
        }
    }

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Signaling)
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if !EVENTS.contains(&event) {
            return Outcome::Pass;
        }
        match serde_json::from_str::<Relay>(data) {
            Ok(relay) => route(host, client, relay.to),
            Err(e) => Outcome::reject(ErrorCode::InvalidMessage, format!("{event}: {e}")),
        }
    }
}

fn route(host: &dyn Host, sender: &ClientInfo, to: String) -> Outcome {
    let Some(room) = &sender.room else {
        return Outcome::reject(ErrorCode::NotInRoom, "not in a room");
    };
    let target_room = match host.client_info(&to) {
        Some(target) if to != sender.id => target.room,
        _ => None,
    };
    if target_room.as_ref() == Some(room) {
        Outcome::Relay(to)
    } else {
        Outcome::reject(ErrorCode::PeerNotFound, "no such peer in your room")
    }
}

switchboard_sdk::export_plugin!(Signaling);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_sdk::testing::{TestHost, rejection};
    use switchboard_sdk::{ErrorCode, Outcome};

    use super::*;

    /// c1 and c2 in room `a`, c3 in room `b`, c4 in none.
    fn setup() -> TestHost {
        TestHost::with_members(&[
            ("c1", Some("a")),
            ("c2", Some("a")),
            ("c3", Some("b")),
            ("c4", None),
        ])
    }

    fn send(host: &TestHost, from: &str, event: &str, to: &str) -> Outcome {
        let data = json!({ "to": to, "sdp": "v=0" }).to_string();
        Signaling.on_event(host, &host.client(from), event, &data)
    }

    #[test]
    fn relays_each_event_to_a_member_of_the_same_room() {
        let host = setup();
        for event in EVENTS {
            assert_eq!(send(&host, "c1", event, "c2"), Outcome::Relay("c2".into()));
        }
        let candidate =
            json!({ "to": "c1", "candidate": { "candidate": "candidate:1", "sdpMid": null } });
        let outcome = Signaling.on_event(
            &host,
            &host.client("c2"),
            "ice:candidate",
            &candidate.to_string(),
        );
        assert_eq!(outcome, Outcome::Relay("c1".into()));
    }

    #[test]
    fn sender_outside_a_room_is_not_in_room_before_peer_not_found() {
        let host = setup();
        assert_eq!(
            rejection(send(&host, "c4", "sdp:offer", "nobody")),
            ErrorCode::NotInRoom
        );
    }

    #[test]
    fn target_that_is_not_a_member_of_the_room_is_peer_not_found() {
        let host = setup();
        for to in ["c1", "c3", "c4", "nobody", ""] {
            assert_eq!(
                rejection(send(&host, "c1", "sdp:answer", to)),
                ErrorCode::PeerNotFound,
                "to {to:?}"
            );
        }
    }

    #[test]
    fn malformed_data_is_invalid_message() {
        let host = setup();
        for data in ["", "[]", "{}", r#"{"to": 5}"#, "{\"to\": \"c2\""] {
            let outcome = Signaling.on_event(&host, &host.client("c1"), "sdp:offer", data);
            assert_eq!(rejection(outcome), ErrorCode::InvalidMessage, "{data:?}");
        }
    }

    #[test]
    fn other_events_pass() {
        let host = setup();
        assert_eq!(send(&host, "c1", "room:join", "c2"), Outcome::Pass);
    }

    #[test]
    fn sends_nothing_itself() {
        let host = setup();
        let before = host.sent().len();
        send(&host, "c1", "sdp:offer", "c2");
        assert_eq!(host.sent().len(), before);
    }

    #[test]
    fn describes_the_three_relay_events() {
        let descriptor = Signaling::describe();
        let events: Vec<_> = descriptor.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(events, EVENTS);
        assert!(descriptor.hooks.is_empty());
        assert!(Signaling::new("{}").is_ok());
    }
}
