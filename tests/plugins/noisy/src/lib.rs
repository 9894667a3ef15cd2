//! A test plugin for plugin output and per-plugin limits. Its config names
//! it (`{"name": "small"}`), so one component can sit in a chain several
//! times, each entry with limits of its own. It declares `noisy:act`
//! `{"to", "act", "stream"?, "text"?, "times"?, "n"?}`; the entry `to`
//! names does `act` and replies `noisy:done` `{"to", "act"}`, every other
//! entry passes:
//!
//! | act | does |
//! |---|---|
//! | `print` | writes `text` `times` times to `stream` (`stdout` or `stderr`) with `print!`/`eprint!` |
//! | `grow` | allocates and writes `n` MiB, then frees them |
//! | `spin` | busy-loops for `n` ms of wall-clock time |

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

const EVENT: &str = "noisy:act";

pub struct Noisy {
    name: String,
}

#[derive(Deserialize)]
struct Config {
    name: String,
}

#[derive(Deserialize)]
struct Act {
    to: String,
    act: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    text: String,
    #[serde(default = "once")]
    times: u64,
    #[serde(default)]
    n: u64,
}

fn once() -> u64 {
    1
}

impl Plugin for Noisy {
    fn describe() -> Descriptor {
        Descriptor {
            name: "noisy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![EventDecl::new(EVENT)],
            hooks: vec![],
        }
    }

    fn new(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config).map_err(|e| format!("config: {e}"))?;
        Ok(Noisy { name: config.name })
    }

    fn on_event(&self, _host: &dyn Host, _client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if event != EVENT {
            return Outcome::Pass;
        }
        let act: Act = match serde_json::from_str(data) {
            Ok(act) => act,
            Err(e) => return Outcome::reject(ErrorCode::InvalidMessage, format!("{EVENT}: {e}")),
        };
        if act.to != self.name {
            return Outcome::Pass;
        }
        match act.act.as_str() {
            "print" => print(&act.stream, &act.text, act.times),
            "grow" => grow(act.n),
            "spin" => spin(act.n),
            other => {
                return Outcome::reject(ErrorCode::InvalidMessage, format!("unknown act {other}"));
            }
        }
        Outcome::Reply {
            event: "noisy:done".into(),
            data: json!({ "to": act.to, "act": act.act }).to_string(),
        }
    }
}

fn print(stream: &str, text: &str, times: u64) {
    for _ in 0..times {
        match stream {
            "stderr" => eprint!("{text}"),
            _ => print!("{text}"),
        }
    }
}

fn grow(mib: u64) {
    const MIB: usize = 1 << 20;
    // Writing every byte makes the pages real, not just reserved.
    let kept: Vec<Vec<u8>> = (0..mib).map(|_| black_box(vec![1u8; MIB])).collect();
    black_box(kept);
}

fn spin(ms: u64) {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        black_box(());
    }
}

switchboard_sdk::export_plugin!(Noisy);

#[cfg(test)]
mod tests {
    use switchboard_sdk::testing::TestHost;

    use super::*;

    #[test]
    fn acts_only_when_named() {
        let host = TestHost::new();
        let client = host.add_client("c1", "alice");
        let noisy = Noisy::new(r#"{"name":"small"}"#).unwrap();
        let data = r#"{"to":"big","act":"grow","n":1}"#;
        assert_eq!(noisy.on_event(&host, &client, EVENT, data), Outcome::Pass);
        let data = r#"{"to":"small","act":"grow","n":1}"#;
        assert!(matches!(
            noisy.on_event(&host, &client, EVENT, data),
            Outcome::Reply { .. }
        ));
    }
}
