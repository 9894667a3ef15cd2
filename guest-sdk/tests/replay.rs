//! Replaying a recording against a plugin's trait impl with
//! `testing::replay`: the same version decides alike, another version's
//! differences are named, and a file that is not a recording says so.

use serde_json::Value;
use switchboard_sdk::testing::{Ruling, replay, replay_entry};
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

const RECORDING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/recordings/tally.jsonl");

/// A running total per room: `tally:add {n}` adds to it, tells the others
/// the new total and answers with it; a total over `max` is refused.
struct Tally {
    max: u64,
}

impl Plugin for Tally {
    fn describe() -> Descriptor {
        Descriptor {
            name: "tally".into(),
            version: "0.1.0".into(),
            events: vec![EventDecl::new("tally:add")],
            hooks: vec![],
        }
    }

    fn new(config: &str) -> Result<Self, String> {
        let config: Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        let max = config["max"].as_u64().ok_or("`max` is missing")?;
        Ok(Tally { max })
    }

    fn on_event(&self, host: &dyn Host, client: &ClientInfo, _event: &str, data: &str) -> Outcome {
        let Some(room) = &client.room else {
            return Outcome::reject(ErrorCode::NotInRoom, "join a room first");
        };
        let data: Value = serde_json::from_str(data).unwrap_or_default();
        let Some(n) = data["n"].as_u64() else {
            return Outcome::reject(ErrorCode::InvalidMessage, "tally:add takes {n}");
        };
        let before: u64 = host
            .kv_get(room, "total")
            .and_then(|total| total.parse().ok())
            .unwrap_or(0);
        let total = before + n;
        if total > self.max {
            return Outcome::reject(ErrorCode::Forbidden, "over the max");
        }
        host.kv_set(room, "total", &total.to_string());
        let data = format!(r#"{{"total":{total}}}"#);
        host.broadcast(room, "tally:total", &data, Some(&client.id));
        Outcome::Reply {
            event: "tally:added".into(),
            data,
        }
    }
}

#[test]
fn the_recorded_version_decides_every_call_alike() {
    let report = replay(RECORDING, &Tally::new(r#"{"max":20}"#).unwrap()).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.compared, 3);
    assert_eq!(report.skipped, 1, "the auth call's token is redacted");
}

#[test]
fn a_version_that_decides_otherwise_is_named_with_the_call() {
    let report = replay(RECORDING, &Tally::new(r#"{"max":10}"#).unwrap()).unwrap();
    assert_eq!(report.differences.len(), 1, "{report}");
    let difference = &report.differences[0];
    assert_eq!((difference.seq, difference.room.as_str()), (4, "r1"));
    assert_eq!(difference.call, "tally:add from 00000000000000a1");
    assert!(matches!(difference.recorded.outcome, Ruling::Reply { .. }));
    assert_eq!(
        difference.replayed.outcome,
        Ruling::Reject {
            code: "FORBIDDEN".into(),
            message: "over the max".into()
        }
    );
    assert!(
        difference.replayed.effects.is_empty(),
        "it stored and sent nothing"
    );
    let text = report.to_string();
    assert!(
        text.contains(
            "recorded: reply tally:added {\"total\":11}; then kv-set r1 \"total\" = \"11\""
        ),
        "{text}"
    );
}

#[test]
fn an_entry_the_recording_does_not_have_is_an_empty_report() {
    let report = replay_entry(RECORDING, "rooms", &Tally { max: 20 }).unwrap();
    assert_eq!((report.compared, report.skipped), (0, 0));
}

#[test]
fn a_file_that_is_not_a_recording_is_an_error_that_says_so() {
    let this_file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/replay.rs");
    let error = replay(this_file, &Tally { max: 20 }).unwrap_err();
    assert!(
        error.to_string().contains("not a Switchboard recording"),
        "{error}"
    );
    let error = replay("/nonexistent.jsonl", &Tally { max: 20 }).unwrap_err();
    assert!(
        error.to_string().contains("reading /nonexistent.jsonl"),
        "{error}"
    );
}
