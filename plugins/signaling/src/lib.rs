//! The default signaling relay: `sdp:offer`, `sdp:answer` and
//! `ice:candidate` go to another member of the sender's room.
//!
//! The plugin only decides whether a relay is allowed; the host delivers it
//! with `to` replaced by `from`.

use switchboard_sdk::{
    Descriptor, ErrorCode, EventDecl, Host, Plugin, Relay, RelayEvent, RelayOutcome,
};

pub struct Signaling;

impl Plugin for Signaling {
    fn describe() -> Descriptor {
        Descriptor {
            name: "signaling".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: RelayEvent::ALL
                .map(|event| EventDecl::new(event.as_str()))
                .into(),
            hooks: vec![],
        }
    }

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Signaling)
    }

    /// The host has validated the data and looked up its `to`: relaying
    /// needs neither the data nor a host call. Only a refusal asks the host
    /// where the sender is, to tell `NOT_IN_ROOM` from `PEER_NOT_FOUND`.
    fn on_relay(&self, host: &dyn Host, relay: &Relay) -> RelayOutcome {
        if relay.same_room && relay.target.as_ref() != Some(&relay.sender) {
            return RelayOutcome::Deliver;
        }
        let in_room = host
            .client_info(&relay.sender)
            .is_some_and(|sender| sender.room.is_some());
        match in_room {
            true => RelayOutcome::reject(ErrorCode::PeerNotFound, "no such peer in your room"),
            false => RelayOutcome::reject(ErrorCode::NotInRoom, "not in a room"),
        }
    }
}

switchboard_sdk::export_plugin!(Signaling);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_sdk::event::ROOM_JOIN;
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

    fn send(host: &TestHost, from: &str, event: RelayEvent, to: &str) -> RelayOutcome {
        let data = json!({ "to": to, "sdp": "v=0" }).to_string();
        Signaling.on_relay(host, &host.relay(from, event, to, &data))
    }

    #[test]
    fn relays_each_event_to_a_member_of_the_same_room() {
        let host = setup();
        for event in RelayEvent::ALL {
            assert_eq!(send(&host, "c1", event, "c2"), RelayOutcome::Deliver);
        }
    }

    #[test]
    fn sender_outside_a_room_is_not_in_room_before_peer_not_found() {
        let host = setup();
        assert_eq!(
            rejection(send(&host, "c4", RelayEvent::SdpOffer, "nobody")),
            ErrorCode::NotInRoom
        );
    }

    #[test]
    fn target_that_is_not_a_member_of_the_room_is_peer_not_found() {
        let host = setup();
        for to in ["c1", "c3", "c4", "nobody", ""] {
            assert_eq!(
                rejection(send(&host, "c1", RelayEvent::SdpAnswer, to)),
                ErrorCode::PeerNotFound,
                "to {to:?}"
            );
        }
    }

    #[test]
    fn events_without_a_target_pass() {
        let host = setup();
        let outcome = Signaling.on_event(&host, &host.client("c1"), ROOM_JOIN, "{}");
        assert_eq!(outcome, Outcome::Pass);
    }

    #[test]
    fn sends_nothing_itself() {
        let host = setup();
        let before = host.sent().len();
        send(&host, "c1", RelayEvent::SdpOffer, "c2");
        assert_eq!(host.sent().len(), before);
    }

    #[test]
    fn describes_the_three_relay_events() {
        let descriptor = Signaling::describe();
        let events: Vec<_> = descriptor.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(events, RelayEvent::ALL.map(RelayEvent::as_str));
        assert!(descriptor.hooks.is_empty());
        assert!(Signaling::new("{}").is_ok());
    }
}
