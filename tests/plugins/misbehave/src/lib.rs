//! A deliberately broken plugin for the end-to-end tests of the host's fault
//! isolation. It declares `sdp:offer`; an offer whose `sdp` is `"trap"`
//! panics (a trap), `"loop"` never returns, and `"alloc"` allocates until the
//! memory cap stops it; `"relay"` relays the offer to its `to` without
//! checking that any such client exists, which leaves that to the host.
//! Three break the host
//! contract, each after queuing a valid `misbehave:queued` for `to` (which
//! the host must then drop with the rest of the call): `"bad-send"` sends an
//! invalid event name, `"bad-join"` joins with metadata that is not an
//! object, `"bad-reply"` replies with data that is not an object. Any other
//! offer passes on down the chain.

use std::hint::black_box;

use serde::Deserialize;
use switchboard_sdk::{ClientInfo, Descriptor, EventDecl, Host, Outcome, Plugin};

pub struct Misbehave;

#[derive(Deserialize)]
struct Offer {
    to: String,
    sdp: String,
}

impl Plugin for Misbehave {
    fn describe() -> Descriptor {
        Descriptor {
            name: "misbehave".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![EventDecl::new("sdp:offer")],
            hooks: vec![],
        }
    }

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Misbehave)
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, _event: &str, data: &str) -> Outcome {
        let Ok(offer) = serde_json::from_str::<Offer>(data) else {
            return Outcome::Pass;
        };
        match offer.sdp.as_str() {
            "trap" => panic!("misbehave: trap requested"),
            "loop" => spin(),
            "alloc" => hoard(),
            "relay" => Outcome::Relay(offer.to),
            breach @ ("bad-send" | "bad-join" | "bad-reply") => {
                host.send(&offer.to, "misbehave:queued", "{}");
                // Each breaks the contract once; had the host let it pass,
                // the client would get this valid reply.
                let mut data = "{}";
                match breach {
                    "bad-send" => host.send(&offer.to, "Not An Event", "{}"),
                    "bad-join" => {
                        let _ = host.join_room(&client.id, "elsewhere", "[1]");
                    }
                    _ => data = "not an object",
                }
                Outcome::Reply {
                    event: "misbehave:reply".into(),
                    data: data.into(),
                }
            }
            _ => Outcome::Pass,
        }
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        // Opaque to the optimiser, so the loop cannot be proven side-effect
        // free and removed.
        n = black_box(n.wrapping_add(1));
    }
}

fn hoard() -> ! {
    const MIB: usize = 1 << 20;
    let mut kept = Vec::new();
    loop {
        // Writing every byte makes the pages real, not just reserved.
        kept.push(black_box(vec![1u8; MIB]));
    }
}

switchboard_sdk::export_plugin!(Misbehave);

#[cfg(test)]
mod tests {
    use switchboard_sdk::testing::TestHost;

    use super::*;

    #[test]
    fn ordinary_offers_and_odd_data_pass() {
        let host = TestHost::new();
        let client = host.add_client("c1", "alice");
        for data in [r#"{"to":"c2","sdp":"v=0"}"#, "{}", "not json"] {
            assert_eq!(
                Misbehave.on_event(&host, &client, "sdp:offer", data),
                Outcome::Pass
            );
        }
    }

    #[test]
    fn declares_only_sdp_offer() {
        let events: Vec<_> = Misbehave::describe()
            .events
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(events, ["sdp:offer"]);
    }
}
