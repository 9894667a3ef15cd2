//! The bookkeeping of a soak, on one server (soak.rs) or across nodes
//! (cluster.rs): numbered relays between churning clients, what each
//! client sent, saw accepted and received, and the check that every relay
//! arrived at most once, in order, and exactly once where the receiver
//! stayed to its `room:left`.
//!
//! A sender learns which of its relays were accepted by following each
//! batch with a request whose answer comes back behind theirs (a `ping` on
//! one server; across nodes, a `room:state`, which the room's owner
//! answers): once that answer is in, every relay without an error was
//! accepted.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

use crate::{Client, Incoming};

/// A small xorshift generator: the runs must be reproducible from a seed,
/// and the tests have no other use for randomness.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One relay: who sent it to whom, and its number among the sender's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Relay {
    pub from: String,
    pub to: String,
    pub seq: u64,
}

/// The relay events; each carries the relay's identity in its payload.
pub const RELAY_EVENTS: [&str; 3] = ["sdp:offer", "sdp:answer", "ice:candidate"];

pub fn relay_message(event: &str, id: &str, relay: &Relay) -> Value {
    let tag = format!("soak {} {} {}", relay.from, relay.to, relay.seq);
    let data = match event {
        "ice:candidate" => {
            json!({ "to": relay.to, "candidate": { "candidate": tag, "sdpMid": "0" } })
        }
        _ => json!({ "to": relay.to, "sdp": tag }),
    };
    json!({ "event": event, "id": id, "data": data })
}

/// The relay a received relay event carries, checked against its `from`.
pub fn parse_relay(message: &Value) -> Relay {
    let data = &message["data"];
    let tag = data["sdp"]
        .as_str()
        .or_else(|| data["candidate"]["candidate"].as_str())
        .unwrap_or_else(|| panic!("relay without its tag: {message}"));
    let parts: Vec<&str> = tag.split(' ').collect();
    let ["soak", from, to, seq] = parts[..] else {
        panic!("malformed relay tag: {message}")
    };
    assert_eq!(data["from"], from, "relay with a forged `from`: {message}");
    Relay {
        from: from.to_owned(),
        to: to.to_owned(),
        seq: seq.parse().expect("relay seq"),
    }
}

/// One client's life in a room and what it saw.
pub struct Life {
    pub client: Client,
    pub id: String,
    pub peers: HashSet<String>,
    pub received: Vec<Relay>,
    pub accepted: Vec<Relay>,
    /// Relays refused, by error code.
    pub refused: HashMap<String, u64>,
    /// Relays sent and not yet known to be accepted or refused, by id.
    pending: HashMap<String, Relay>,
    seq: u64,
    /// The error codes a relay may be refused with: the target left after
    /// the sender last heard of it.
    refusals: &'static [&'static str],
    /// How long one expected answer may take.
    patience: Duration,
}

impl Life {
    /// `client`, authenticated, before it joins a room.
    pub fn new(client: Client, refusals: &'static [&'static str], patience: Duration) -> Life {
        Life {
            id: client.client_id.clone(),
            client,
            peers: HashSet::new(),
            received: Vec::new(),
            accepted: Vec::new(),
            refused: HashMap::new(),
            pending: HashMap::new(),
            seq: 0,
            refusals,
            patience,
        }
    }

    /// Handles one message that is not the reply being waited for.
    fn on_message(&mut self, message: Value) {
        let event = message["event"].as_str().unwrap_or_default();
        match event {
            e if RELAY_EVENTS.contains(&e) && message.get("id").is_none() => {
                let relay = parse_relay(&message);
                assert_eq!(relay.to, self.id, "a relay for someone else: {message}");
                self.received.push(relay);
            }
            "room:peer-joined" => {
                let peer = message["data"]["peer"]["clientId"].as_str();
                self.peers.insert(peer.expect("peer id").to_owned());
            }
            "room:peer-left" => {
                let peer = message["data"]["clientId"].as_str().expect("peer id");
                self.peers.remove(peer);
            }
            "error" => {
                let id = message["id"].as_str().unwrap_or_default();
                let relay = self
                    .pending
                    .remove(id)
                    .unwrap_or_else(|| panic!("{}: an error for no relay: {message}", self.id));
                let code = message["data"]["code"].as_str().unwrap_or_default();
                assert!(
                    self.refusals.contains(&code),
                    "{}: relay {relay:?} refused with {message}",
                    self.id
                );
                *self.refused.entry(code.to_owned()).or_default() += 1;
            }
            _ => panic!("{}: unexpected {message}", self.id),
        }
    }

    /// Reads, handling everything else, until `event` with `id` arrives;
    /// returns it. An `error` with `id` is returned too.
    pub async fn until_reply(&mut self, event: &str, id: &str) -> Value {
        loop {
            let next = timeout(self.patience, self.client.next_incoming())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: no `{event}` ({id}) within {:?}",
                        self.id, self.patience
                    )
                });
            match next {
                Incoming::Message(message) if message["id"] == id => {
                    let got = message["event"].as_str().unwrap_or_default();
                    assert!(
                        got == event || got == "error",
                        "{}: wanted `{event}`: {message}",
                        self.id
                    );
                    return message;
                }
                Incoming::Message(message) => self.on_message(message),
                other => panic!(
                    "{}: connection ended waiting for `{event}`: {other:?}",
                    self.id
                ),
            }
        }
    }

    /// Reads whatever comes for `window`.
    pub async fn listen(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        while let Ok(next) = tokio::time::timeout_at(deadline, self.client.next_incoming()).await {
            match next {
                Incoming::Message(message) => self.on_message(message),
                other => panic!("{}: connection ended while listening: {other:?}", self.id),
            }
        }
    }

    /// Sends up to five relays to `targets` (none if there are none), then
    /// `request` with id `sync{round}`, and reads up to its answer,
    /// `answer`, which it returns: by then every relay without an error was
    /// accepted.
    pub async fn relay_round(
        &mut self,
        rng: &mut Rng,
        round: u64,
        targets: &[String],
        (request, answer): (&str, &str),
    ) -> Value {
        if !targets.is_empty() {
            for _ in 0..1 + rng.below(5) {
                let to = targets[rng.below(targets.len() as u64) as usize].clone();
                self.seq += 1;
                let relay = Relay {
                    from: self.id.clone(),
                    to,
                    seq: self.seq,
                };
                let id = format!("r{}", self.seq);
                let event = RELAY_EVENTS[rng.below(RELAY_EVENTS.len() as u64) as usize];
                self.client
                    .send_json(relay_message(event, &id, &relay))
                    .await;
                self.pending.insert(id, relay);
            }
        }
        let sync = format!("sync{round}");
        self.client
            .send_json(json!({ "event": request, "id": sync }))
            .await;
        let reply = self.until_reply(answer, &sync).await;
        assert_eq!(reply["event"], answer, "{}: {reply}", self.id);
        self.accepted
            .extend(self.pending.drain().map(|(_, relay)| relay));
        reply
    }
}

/// Every relay, once all lives have ended.
#[derive(Default)]
pub struct Relays {
    /// Relays accepted: no error came back before the sender's next sync.
    pub accepted: Vec<Relay>,
    /// Relays refused, by error code.
    pub refused: HashMap<String, u64>,
    /// What each client received, in order of arrival.
    pub received: HashMap<String, Vec<Relay>>,
    /// Clients that read up to their `room:left`: every relay accepted for
    /// them was queued before that answer, so each must have arrived. The
    /// others may lose what was on its way.
    pub drained: HashSet<String>,
}

impl Relays {
    /// Files what a life saw (its client gone, so taken apart);
    /// `drained` if it read up to its `room:left`.
    pub fn add(
        &mut self,
        id: String,
        accepted: Vec<Relay>,
        refused: HashMap<String, u64>,
        received: Vec<Relay>,
        drained: bool,
    ) {
        self.accepted.extend(accepted);
        for (code, n) in refused {
            *self.refused.entry(code).or_default() += n;
        }
        if drained {
            self.drained.insert(id.clone());
        }
        self.received.insert(id, received);
    }

    /// Checks every relay: each one received was accepted, sent to its
    /// receiver, and arrived once and in order per sender; each one
    /// accepted for a client that read up to its `room:left` arrived
    /// exactly once. Returns the relays accepted for such clients and
    /// those accepted for the others.
    pub fn check(&self) -> (Vec<&Relay>, Vec<&Relay>) {
        let accepted: HashSet<&Relay> = self.accepted.iter().collect();
        assert_eq!(
            accepted.len(),
            self.accepted.len(),
            "a relay accepted twice"
        );
        let mut arrivals: HashMap<&Relay, usize> = HashMap::new();
        for (receiver, relays) in &self.received {
            let mut last: HashMap<&str, u64> = HashMap::new();
            for relay in relays {
                assert_eq!(&relay.to, receiver);
                assert!(
                    accepted.contains(relay),
                    "{receiver} received {relay:?}, which its sender never saw accepted"
                );
                *arrivals.entry(relay).or_default() += 1;
                let previous = last.insert(&relay.from, relay.seq).unwrap_or(0);
                assert!(
                    relay.seq > previous,
                    "{receiver} received {relay:?} after seq {previous} from the same sender \
                     (out of order, or twice)"
                );
            }
        }
        let (mut to_drained, mut to_departed) = (Vec::new(), Vec::new());
        for relay in &self.accepted {
            let arrived = arrivals.get(relay).copied().unwrap_or(0);
            assert!(arrived <= 1, "{relay:?} arrived {arrived} times");
            if self.drained.contains(&relay.to) {
                assert_eq!(
                    arrived, 1,
                    "{relay:?} was accepted for a peer that stayed to its room:left, and never \
                     arrived"
                );
                to_drained.push(relay);
            } else {
                to_departed.push(relay);
            }
        }
        (to_drained, to_departed)
    }
}
