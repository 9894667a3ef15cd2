//! A recording made by a real server (two rooms: joins, chat, a relay, a
//! re-authentication, a leave), replayed against this crate's `Chat`
//! through the SDK's harness: it decides every recorded `chat:message` as
//! the component did, and a lower `max_chars` is caught.

use chat::Chat;
use switchboard_sdk::Plugin;
use switchboard_sdk::testing::{Ruling, replay};

const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/recordings/two-rooms.jsonl"
);

#[test]
fn decides_the_recorded_traffic_as_the_live_component_did() {
    let report = replay(RECORDING, &Chat::new("{}").unwrap()).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.compared, 2);
}

#[test]
fn a_lower_max_chars_refuses_the_longer_message() {
    let report = replay(RECORDING, &Chat::new(r#"{"max_chars":4}"#).unwrap()).unwrap();
    let [difference] = report.differences.as_slice() else {
        panic!("one difference expected: {report}");
    };
    assert_eq!(difference.seq, 3);
    assert!(
        matches!(&difference.replayed.outcome, Ruling::Reject { code, .. } if code == "INVALID_MESSAGE"),
        "{report}"
    );
}
