//! A sandbox probe for the host's end-to-end tests. It declares
//! `sandbox:probe` `{"probe": string, "arg"?: string, "n"?: int}` and
//! answers `sandbox:result` `{"probe", "ok": bool, "value"?: any,
//! "error"?: string}` with what the sandbox let it do:
//!
//! | probe | tries |
//! |---|---|
//! | `read-file` | `std::fs::read` of the path `arg` |
//! | `list-dir` | `std::fs::read_dir` of the path `arg` |
//! | `tcp-connect` | `std::net::TcpStream::connect` to the address `arg` |
//! | `tcp-listen` | `std::net::TcpListener::bind` to the address `arg` |
//! | `udp-bind` | `std::net::UdpSocket::bind` to the address `arg` |
//! | `resolve` | a DNS lookup of the host name `arg` |
//! | `env-vars` | `std::env::vars()`, all of them (`value`: an object) |
//! | `env-var` | `std::env::var` of the name `arg` |
//! | `args` | `std::env::args()` |
//! | `clock` | the wall clock and the monotonic clock (`value`: unix ms) |
//! | `random` | 16 bytes of randomness, twice (`value`: both, hex) |
//! | `alloc` | allocates and writes `n` MiB, then frees them |
//! | `spin` | busy-loops for `n` ms of wall-clock time |
//! | `sleep` | `std::thread::sleep` for `n` ms |
//!
//! The outcome is always a reply, so a test tells "the sandbox refused"
//! (`ok: false` with the guest-side error) from "the call failed"
//! (`PLUGIN_ERROR` from the host).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_sdk::{ClientInfo, Descriptor, ErrorCode, EventDecl, Host, Outcome, Plugin};

const EVENT: &str = "sandbox:probe";
const REPLY: &str = "sandbox:result";

pub struct Sandbox;

#[derive(Deserialize)]
struct Probe {
    probe: String,
    #[serde(default)]
    arg: String,
    #[serde(default)]
    n: u64,
}

impl Plugin for Sandbox {
    fn describe() -> Descriptor {
        let schema = json!({
            "type": "object",
            "properties": {
                "probe": { "type": "string", "minLength": 1 },
                "arg": { "type": "string" },
                "n": { "type": "integer", "minimum": 0 },
            },
            "required": ["probe"],
        });
        Descriptor {
            name: "sandbox".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![EventDecl {
                name: EVENT.into(),
                schema: Some(schema.to_string()),
            }],
            hooks: vec![],
        }
    }

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Sandbox)
    }

    fn on_event(&self, _host: &dyn Host, _client: &ClientInfo, event: &str, data: &str) -> Outcome {
        if event != EVENT {
            return Outcome::Pass;
        }
        let probe: Probe = match serde_json::from_str(data) {
            Ok(probe) => probe,
            Err(e) => return Outcome::reject(ErrorCode::InvalidMessage, format!("{EVENT}: {e}")),
        };
        let result = match run(&probe) {
            Ok(value) => json!({ "probe": probe.probe, "ok": true, "value": value }),
            Err(error) => json!({ "probe": probe.probe, "ok": false, "error": error }),
        };
        Outcome::Reply {
            event: REPLY.into(),
            data: result.to_string(),
        }
    }
}

/// What the probe got, or the error the guest saw.
fn run(probe: &Probe) -> Result<Value, String> {
    let err = |e: std::io::Error| e.to_string();
    match probe.probe.as_str() {
        "read-file" => std::fs::read(&probe.arg)
            .map(|bytes| Value::from(String::from_utf8_lossy(&bytes).into_owned()))
            .map_err(err),
        "list-dir" => {
            let entries = std::fs::read_dir(&probe.arg).map_err(err)?;
            let names: Result<Vec<Value>, _> = entries
                .map(|e| e.map(|e| Value::from(e.file_name().to_string_lossy().into_owned())))
                .collect();
            names.map(Value::from).map_err(err)
        }
        "tcp-connect" => std::net::TcpStream::connect(&probe.arg)
            .map(|stream| Value::from(format!("connected: {stream:?}")))
            .map_err(err),
        "tcp-listen" => std::net::TcpListener::bind(&probe.arg)
            .map(|listener| Value::from(format!("listening: {listener:?}")))
            .map_err(err),
        "udp-bind" => std::net::UdpSocket::bind(&probe.arg)
            .map(|socket| Value::from(format!("bound: {socket:?}")))
            .map_err(err),
        "resolve" => std::net::ToSocketAddrs::to_socket_addrs(&(probe.arg.as_str(), 80))
            .map(|addrs| Value::from(addrs.map(|a| a.to_string()).collect::<Vec<_>>()))
            .map_err(err),
        "env-vars" => Ok(Value::Object(
            std::env::vars()
                .map(|(k, v)| (k, Value::from(v)))
                .collect::<Map<_, _>>(),
        )),
        "env-var" => std::env::var(&probe.arg)
            .map(Value::from)
            .map_err(|e| e.to_string()),
        "args" => Ok(Value::from(std::env::args().collect::<Vec<_>>())),
        "clock" => {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| e.to_string())?;
            // Touching the monotonic clock is part of the probe.
            let _ = Instant::now();
            Ok(Value::from(wall.as_millis() as u64))
        }
        "random" => {
            let mut first = [0u8; 16];
            let mut second = [0u8; 16];
            getrandom::fill(&mut first).map_err(|e| e.to_string())?;
            getrandom::fill(&mut second).map_err(|e| e.to_string())?;
            Ok(json!([hex(&first), hex(&second)]))
        }
        "alloc" => {
            const MIB: usize = 1 << 20;
            let mut kept = Vec::new();
            for _ in 0..probe.n {
                // Written, so the pages are real and not just reserved.
                kept.push(black_box(vec![1u8; MIB]));
            }
            Ok(Value::from(kept.len()))
        }
        "spin" => {
            let until = Instant::now() + Duration::from_millis(probe.n);
            let mut n = 0u64;
            while Instant::now() < until {
                n = black_box(n.wrapping_add(1));
            }
            Ok(Value::from(n))
        }
        "sleep" => {
            std::thread::sleep(Duration::from_millis(probe.n));
            Ok(Value::from(probe.n))
        }
        other => Err(format!("unknown probe `{other}`")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

switchboard_sdk::export_plugin!(Sandbox);

#[cfg(test)]
mod tests {
    use switchboard_sdk::testing::TestHost;

    use super::*;

    fn probe(data: Value) -> Value {
        let host = TestHost::new();
        let client = host.add_client("c1", "alice");
        match Sandbox.on_event(&host, &client, EVENT, &data.to_string()) {
            Outcome::Reply { event, data } => {
                assert_eq!(event, REPLY);
                serde_json::from_str(&data).expect("reply is JSON")
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn unknown_probe_is_an_error_reply() {
        let reply = probe(json!({ "probe": "nope" }));
        assert_eq!(reply["ok"], false);
        assert_eq!(reply["error"], "unknown probe `nope`");
    }

    #[test]
    fn natively_the_probes_reach_the_system() {
        // Natively nothing is sandboxed: this shows the probes do what they
        // say, so an `ok: false` under the host is the sandbox's doing.
        assert_eq!(
            probe(json!({ "probe": "list-dir", "arg": "." }))["ok"],
            true
        );
        assert_eq!(probe(json!({ "probe": "alloc", "n": 2 }))["value"], 2);
        let random = probe(json!({ "probe": "random" }));
        assert_ne!(random["value"][0], random["value"][1]);
    }

    #[test]
    fn other_events_pass() {
        let host = TestHost::new();
        let client = host.add_client("c1", "alice");
        assert_eq!(
            Sandbox.on_event(&host, &client, "chat:message", "{}"),
            Outcome::Pass
        );
    }
}
