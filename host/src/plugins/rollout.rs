//! Canary rollouts: which rooms run a chain entry's canary version, and
//! the chains a rollout needs.
//!
//! A room's versions are decided once, when it opens, and kept in its
//! [`Pin`] in the hub, so one room's events and storage are always handled
//! by one version. The decision depends only on the room id, the entry's
//! name and the policy (a percentage and a list of rooms), never on a
//! random seed or on what else is open: every node of a cluster decides
//! the same for the same policy.
//!
//! While no canary is active the registry publishes no [`Rollout`], and
//! every event runs on the stable chain without looking at a pin.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::budget::{Budget, Tally};
use super::chain::Chain;
use super::wasm::Plugin;
use crate::ids::RoomId;
use crate::state::Pin;

/// Entries that may run a canary at once: a rollout builds a chain for
/// every combination of them.
pub(crate) const MAX_CANARIES: usize = 4;

/// Chain positions a pin can name, one bit each.
pub(crate) const MAX_POSITION: usize = u64::BITS as usize;

/// A chain entry's canary version and the new rooms that get it.
pub(crate) struct Canary {
    pub(crate) plugin: Arc<Plugin>,
    /// Its component, for the other nodes of a cluster once it is
    /// promoted.
    pub(crate) bytes: Arc<[u8]>,
    /// Rooms whose bucket ([`bucket`]) is below this run the canary.
    pub(crate) percent: u8,
    /// Rooms that run the canary whatever their bucket.
    pub(crate) rooms: HashSet<RoomId>,
    /// The registry's count of canaries started, this one included. A pin
    /// decided before this canary started ([`Pin::at`] below it) does not
    /// run it, even if it has the bit of its position from an earlier
    /// canary there.
    pub(crate) started: u64,
    /// Rolls the canary back when it fails too often; `None`: only an
    /// operator does.
    pub(crate) budget: Option<Budget>,
    /// The version's calls when it became the canary: its budget counts
    /// the calls after.
    pub(crate) tally_at_start: Tally,
}

impl Canary {
    fn takes(&self, room: &RoomId) -> bool {
        self.rooms.contains(room) || bucket(room, &self.plugin.name) < self.percent
    }

    /// Its calls and failed calls since it started.
    pub(crate) fn spent(&self) -> Tally {
        Tally::of(&self.plugin.stats).since(self.tally_at_start)
    }

    pub(crate) fn overdrawn(&self) -> bool {
        self.budget
            .is_some_and(|budget| budget.overdrawn(self.spent()))
    }
}

/// Where a room falls for an entry, 0 to 99: FNV-1a (64-bit) of the room
/// id, a 0xff byte (never in UTF-8, so no two pairs of names run
/// together the same) and the entry's name, modulo 100. A fixed function
/// of the names, so every node and every restart agrees; rooms fall
/// differently for different entries, so two canaries at 10% do not land
/// on the same tenth of the rooms.
pub(crate) fn bucket(room: &RoomId, entry: &str) -> u8 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = room.as_str().bytes().chain([0xff]).chain(entry.bytes());
    let hash = bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    (hash % 100) as u8
}

/// The chains in use while at least one canary is active: immutable,
/// published with the stable chain, so an event that took it finishes on
/// the versions it started with.
pub(crate) struct Rollout {
    /// Canaries started when this was published: the `at` of every pin it
    /// decides.
    at: u64,
    /// Each canary with its entry's position in the chain, in chain order.
    canaries: Vec<(usize, Arc<Canary>)>,
    /// For each set `m` of canaries (bit `j` for `canaries[j]`), the stable
    /// chain with those canaries in their entries' places. `chains[0]` is
    /// the stable chain itself.
    chains: Vec<Arc<Chain>>,
}

impl Rollout {
    /// The rollout of `canaries` (by position) over `stable`; `None` when
    /// there are none. Fails when a combination does not make a chain.
    pub(crate) fn new(
        stable: &Arc<Chain>,
        at: u64,
        canaries: &BTreeMap<usize, Arc<Canary>>,
    ) -> anyhow::Result<Option<Rollout>> {
        if canaries.is_empty() {
            return Ok(None);
        }
        let canaries: Vec<(usize, Arc<Canary>)> = canaries
            .iter()
            .map(|(position, canary)| (*position, Arc::clone(canary)))
            .collect();
        let mut chains = vec![Arc::clone(stable)];
        for set in 1..1usize << canaries.len() {
            let mut plugins = stable.plugins.clone();
            for (j, (position, canary)) in canaries.iter().enumerate() {
                if set & (1 << j) != 0 {
                    plugins[*position] = Arc::clone(&canary.plugin);
                }
            }
            chains.push(Arc::new(Chain::new(plugins)?));
        }
        Ok(Some(Rollout {
            at,
            canaries,
            chains,
        }))
    }

    /// The pin of a room opening now.
    pub(crate) fn assign(&self, room: &RoomId) -> Pin {
        let canaries = self
            .canaries
            .iter()
            .filter(|(_, canary)| canary.takes(room))
            .fold(0, |mask, (position, _)| mask | 1 << position);
        Pin {
            canaries,
            at: self.at,
        }
    }

    /// The chain a room with `pin` runs on. A bit whose canary has ended
    /// (promoted, aborted, replaced by a hot swap), or was started after
    /// the pin was decided, means the entry's stable version.
    pub(crate) fn chain(&self, pin: Pin) -> &Arc<Chain> {
        if pin.canaries == 0 {
            return &self.chains[0];
        }
        let set = self
            .canaries
            .iter()
            .enumerate()
            .filter(|(_, (position, canary))| {
                pin.canaries & (1 << position) != 0 && canary.started <= pin.at
            })
            .fold(0, |set, (j, _)| set | 1 << j);
        &self.chains[set]
    }

    pub(crate) fn has_canary_at(&self, position: usize) -> bool {
        self.canaries.iter().any(|(p, _)| *p == position)
    }

    /// `pin` with the entry at `position` moved onto its canary
    /// (`to_canary`) or its stable version; the room's other entries stay
    /// on the versions they run now.
    pub(crate) fn repin(&self, pin: Pin, position: usize, to_canary: bool) -> Pin {
        let running = (self.canaries.iter())
            .filter(|(p, canary)| pin.canaries & (1 << p) != 0 && canary.started <= pin.at)
            .fold(0, |mask, (p, _)| mask | 1 << p);
        let canaries = if to_canary {
            running | 1 << position
        } else {
            running & !(1 << position)
        };
        Pin {
            canaries,
            at: self.at,
        }
    }

    /// Whether a chain with a canary in it handles `event`: a canary may
    /// declare events its stable version does not.
    fn declares(&self, event: &str) -> bool {
        let with_canaries = &self.chains[1..];
        with_canaries
            .iter()
            .any(|chain| !chain.route(event).is_empty())
    }
}

/// The chains one message may run on: the stable one and, while a canary
/// is active, the rollout that picks a room's.
#[derive(Clone, Copy)]
pub(crate) struct Chains<'a> {
    pub(crate) stable: &'a Chain,
    pub(crate) rollout: Option<&'a Rollout>,
}

impl Chains<'_> {
    /// Whether some chain a room may run on handles `event`.
    pub(crate) fn declares(&self, event: &str) -> bool {
        !self.stable.route(event).is_empty() || self.rollout.is_some_and(|r| r.declares(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::load_builtin;

    fn room(id: &str) -> RoomId {
        RoomId::parse(id).unwrap()
    }

    #[test]
    fn buckets_are_a_fixed_function_of_room_and_entry() {
        // Worked out apart from this code (FNV-1a in a few lines of
        // Python): a change to the function would move rooms between
        // versions across a cluster's nodes of two builds.
        assert_eq!(bucket(&room("room-1"), "stamp"), 48);
        assert_eq!(bucket(&room("room-2"), "stamp"), 41);
        assert_eq!(bucket(&room("room-1"), "signaling"), 11);
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(bucket(&room("ab"), "c"), bucket(&room("a"), "bc"));
    }

    #[test]
    fn buckets_spread_rooms_evenly_enough_for_a_percentage() {
        let under_ten = (0..10_000)
            .filter(|i| bucket(&room(&format!("room-{i}")), "stamp") < 10)
            .count();
        assert!((900..=1100).contains(&under_ten), "{under_ten} of 10,000");
    }

    fn stable_and_canary() -> (Arc<Chain>, Arc<Plugin>) {
        let rooms = Arc::new(load_builtin("rooms", "{}").unwrap());
        let chat = Arc::new(load_builtin("chat", "{}").unwrap());
        (Arc::new(Chain::new(vec![rooms, chat]).unwrap()), chat_v2())
    }

    /// Another version of the `chat` entry: any other component will do.
    fn chat_v2() -> Arc<Plugin> {
        let found = crate::plugins::builtin::find("moderation").unwrap();
        let source = crate::plugins::PluginSource {
            origin: "test".into(),
            bytes: found.wasm.to_vec(),
        };
        let loader = crate::plugins::testing::loader();
        let limits = loader.default_limits().clone();
        Arc::new(
            loader
                .load("chat", &source, "{}".into(), Vec::new(), limits)
                .unwrap(),
        )
    }

    fn canary(plugin: &Arc<Plugin>, percent: u8, rooms: &[&str], started: u64) -> Arc<Canary> {
        Arc::new(Canary {
            plugin: Arc::clone(plugin),
            bytes: Arc::from([]),
            percent,
            rooms: rooms.iter().map(|r| room(r)).collect(),
            started,
            budget: None,
            tally_at_start: Tally::default(),
        })
    }

    fn runs_canary(rollout: &Rollout, pin: Pin, canary: &Arc<Plugin>) -> bool {
        Arc::ptr_eq(&rollout.chain(pin).plugins[1], canary)
    }

    #[test]
    fn rooms_listed_or_in_the_percentage_run_the_canary() {
        let (stable, v2) = stable_and_canary();
        let listed = ["a", "b"];
        let canaries = BTreeMap::from([(1, canary(&v2, 50, &listed, 1))]);
        let rollout = Rollout::new(&stable, 1, &canaries).unwrap().unwrap();
        let mut on_canary = 0;
        for i in 0..200 {
            let id = room(&format!("room-{i}"));
            let pin = rollout.assign(&id);
            let expected = bucket(&id, "chat") < 50;
            assert_eq!(runs_canary(&rollout, pin, &v2), expected, "{id}");
            assert_eq!(pin, rollout.assign(&id), "the same room, the same pin");
            on_canary += usize::from(expected);
        }
        assert!((60..=140).contains(&on_canary), "{on_canary} of 200");
        for id in listed {
            assert!(runs_canary(&rollout, rollout.assign(&room(id)), &v2));
        }
        assert!(Arc::ptr_eq(rollout.chain(Pin::default()), &stable));
        let chains = Chains {
            stable: &stable,
            rollout: Some(&rollout),
        };
        // `room:lock` is only the canary's (`moderation` as `chat`).
        assert!(chains.declares("room:lock") && chains.declares("chat:message"));
        assert!(!chains.declares("sdp:offer") && !rollout.declares("chat:message"));
    }

    #[test]
    fn a_pin_names_only_canaries_started_before_it() {
        let (stable, v2) = stable_and_canary();
        let first = BTreeMap::from([(1, canary(&v2, 100, &[], 1))]);
        let pinned = Rollout::new(&stable, 1, &first)
            .unwrap()
            .unwrap()
            .assign(&room("r"));
        assert_eq!(pinned.canaries, 0b10);
        // That canary ended and another began at the same position: the
        // room stays on stable rather than moving to the new one.
        let second = BTreeMap::from([(1, canary(&v2, 100, &[], 2))]);
        let rollout = Rollout::new(&stable, 2, &second).unwrap().unwrap();
        assert!(!runs_canary(&rollout, pinned, &v2));
        assert!(runs_canary(&rollout, rollout.assign(&room("r")), &v2));
        // No canary at all: no rollout.
        assert!(
            Rollout::new(&stable, 2, &BTreeMap::new())
                .unwrap()
                .is_none()
        );
    }
}
