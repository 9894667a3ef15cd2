//! Asking another version the recorded calls of one entry, and what came
//! out differently.

use std::fmt;

use crate::{Call, Decision, Recording};

/// One call that was decided differently.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The call's [`Call::seq`].
    pub seq: u64,
    pub room: String,
    /// The call in a few words (the [`Input`](crate::Input)'s display).
    pub call: String,
    pub recorded: Decision,
    pub replayed: Decision,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The chain entry replayed.
    pub entry: String,
    /// Calls asked again and compared.
    pub compared: usize,
    /// Calls not asked again: their input was redacted (auth tokens).
    pub skipped: usize,
    pub differences: Vec<Difference>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Asks `run` each recorded call of `entry`, in order, and compares what it
/// decides with what was recorded. `run` gets the call (its input and the
/// view it ran against) and returns the decision of the version under
/// test; a call with a redacted input is skipped, since the version would
/// not be asked what the recorded one was.
pub fn compare(
    recording: &Recording,
    entry: &str,
    mut run: impl FnMut(&Call) -> Decision,
) -> Report {
    let mut report = Report {
        entry: entry.to_owned(),
        compared: 0,
        skipped: 0,
        differences: Vec::new(),
    };
    for call in recording.calls.iter().filter(|call| call.entry == entry) {
        if call.input.is_redacted() {
            report.skipped += 1;
            continue;
        }
        report.compared += 1;
        let replayed = run(call);
        if !replayed.same_as(&call.decision) {
            report.differences.push(Difference {
                seq: call.seq,
                room: call.room.clone(),
                call: call.input.to_string(),
                recorded: call.decision.clone(),
                replayed,
            });
        }
    }
    report
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "call {} in room {}: {}", self.seq, self.room, self.call)?;
        writeln!(f, "  recorded: {}", self.recorded)?;
        write!(f, "  replayed: {}", self.replayed)
    }
}

/// Every difference, then the summary line.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for difference in &self.differences {
            writeln!(f, "{difference}")?;
        }
        write!(
            f,
            "{}: {} calls replayed, {} differ",
            self.entry,
            self.compared,
            self.differences.len()
        )?;
        if self.skipped > 0 {
            write!(f, ", {} skipped (auth tokens are redacted)", self.skipped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Client, FORMAT_VERSION, Header, Input, Line, REDACTED, Ruling, Step, View};

    fn call(seq: u64, entry: &str, input: Input, outcome: Ruling) -> Call {
        Call {
            seq,
            room: "r1".into(),
            entry: entry.into(),
            hash: "h".into(),
            input,
            view: View::default(),
            decision: Decision {
                outcome,
                effects: vec![Step::KvSet {
                    room: "r1".into(),
                    key: "k".into(),
                    value: "v".into(),
                }],
            },
        }
    }

    fn client() -> Client {
        Client {
            id: "0000000000000001".into(),
            ..Client::default()
        }
    }

    fn event(data: &str) -> Input {
        Input::Event {
            client: client(),
            event: "chat:message".into(),
            data: serde_json::from_str(data).unwrap(),
        }
    }

    fn file(calls: &[Call]) -> String {
        let header = Header {
            format: FORMAT_VERSION,
            started_at: 1,
            rooms: vec!["r1".into()],
            chain: vec![],
        };
        let mut lines = vec![serde_json::to_string(&Line::Header(header)).unwrap()];
        for call in calls {
            lines.push(serde_json::to_string(&Line::Call(Box::new(call.clone()))).unwrap());
        }
        lines.join("\n")
    }

    #[test]
    fn a_file_reads_back_as_written() {
        let calls = [
            call(1, "chat", event(r#"{"text":"hi"}"#), Ruling::Handled),
            call(
                2,
                "rooms",
                Input::Timer {
                    room: "r1".into(),
                    tag: "t".into(),
                },
                Ruling::Done,
            ),
        ];
        let recording = Recording::from_reader(file(&calls).as_bytes()).unwrap();
        assert_eq!(recording.calls.len(), 2);
        assert_eq!(recording.calls[1].decision, calls[1].decision);
        assert!(recording.end.is_none());
        match &recording.calls[0].input {
            Input::Event { data, .. } => assert_eq!(data.get(), r#"{"text":"hi"}"#),
            other => panic!("read back as {other:?}"),
        }
    }

    #[test]
    fn another_format_or_a_headless_file_is_refused_with_why() {
        let other = file(&[]).replace(&format!("\"format\":{FORMAT_VERSION}"), "\"format\":99");
        let error = Recording::from_reader(other.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("recording format 99"), "{error}");
        let error = Recording::from_reader(&b"{\"call\":{}}"[..]).unwrap_err();
        assert!(
            error.to_string().contains("not a Switchboard recording"),
            "{error}"
        );
        let broken = format!("{}\nnot json", file(&[]));
        let error = Recording::from_reader(broken.as_bytes()).unwrap_err();
        assert!(error.to_string().starts_with("line 2:"), "{error}");
    }

    #[test]
    fn only_differing_decisions_of_the_entry_are_reported_and_redacted_calls_skipped() {
        let auth = Input::Auth {
            client: client(),
            token: "secret".into(),
            room_id: None,
        }
        .redacted();
        assert!(matches!(&auth, Input::Auth { token, .. } if token == REDACTED));
        let recording = Recording::from_reader(
            file(&[
                call(1, "chat", event("{}"), Ruling::Handled),
                call(2, "chat", event("{}"), Ruling::Pass),
                call(3, "rooms", event("{}"), Ruling::Pass),
                call(4, "chat", auth, Ruling::Pass),
            ])
            .as_bytes(),
        )
        .unwrap();
        let report = compare(&recording, "chat", |call| {
            let mut decision = call.decision.clone();
            if call.seq == 2 {
                decision.outcome = Ruling::Reject {
                    code: "FORBIDDEN".into(),
                    message: "no".into(),
                };
            }
            decision
        });
        assert_eq!((report.compared, report.skipped), (2, 1));
        assert_eq!(report.differences.len(), 1);
        let text = report.to_string();
        assert!(
            text.contains("call 2 in room r1: chat:message from 0000000000000001"),
            "{text}"
        );
        assert!(
            text.contains("recorded: pass; then kv-set r1 \"k\" = \"v\""),
            "{text}"
        );
        assert!(text.contains("replayed: reject FORBIDDEN \"no\""), "{text}");
        assert!(
            text.ends_with(
                "chat: 2 calls replayed, 1 differ, 1 skipped (auth tokens are redacted)"
            ),
            "{text}"
        );
    }

    #[test]
    fn decisions_differ_in_outcome_data_or_steps_but_faults_are_alike() {
        let reply = |data| Decision {
            outcome: Ruling::Reply {
                event: "room:joined".into(),
                data,
            },
            effects: vec![],
        };
        assert!(reply(json!({"a": 1, "b": 2})).same_as(&reply(json!({"b": 2, "a": 1}))));
        assert!(!reply(json!({"a": 1})).same_as(&reply(json!({"a": 2}))));
        let mut more = reply(json!({}));
        more.effects.push(Step::Kick {
            client: "c".into(),
            reason: "spam".into(),
        });
        assert!(!more.same_as(&reply(json!({}))));
        assert!(
            Decision::fault("after 1 ms", vec![]).same_as(&Decision::fault("after 2 ms", vec![]))
        );
        assert!(!Decision::fault("trap", vec![]).same_as(&reply(json!({}))));
    }
}
