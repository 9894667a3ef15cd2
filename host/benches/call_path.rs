//! Micro-benchmarks of the plugin call path (`cargo bench -p switchboard`).
//!
//! - `relay/ice_candidate`: one `ice:candidate` from the text of the frame
//!   to the frame queued for its target, through `Router::handle_text` and
//!   the default chain (`auth-jwt`, `rooms`, `signaling`), as a connection
//!   task hands it over.
//! - `signaling/on_relay`: the `signaling` plugin's `on-relay` alone, on a
//!   warm instance.
//! - `signaling/on_event`: the general `on-event` call of the same plugin
//!   with the same data and the sender's record (it passes), for
//!   comparison: what the relay took before `on-relay` (WIT 0.3.0).
//! - `signaling/on_relay_fresh_instance`: the `on-relay` call on an instance
//!   instantiated (and `init`ed) for it and dropped after it: the difference
//!   from the warm call is the cost of an instantiation.
//! - `swap/cached` and `swap/cold_compile`: loading a new version of the
//!   largest shipped plugin and making it live, as `PUT /admin/plugins/rooms`
//!   does, with its compiled code in the disk cache and without.
//! - `plugin_call/LANG/pass` and `plugin_call/LANG/chat`: one `on-event`
//!   call of the chat plugin written in Rust (`plugins/chat`), TypeScript
//!   (`plugins-js/chat`) and Python (`plugins-py/chat`), on a warm
//!   instance, from a member of a room: with an event the plugin does not
//!   handle, so that it passes at its first check (the empty handler: the
//!   floor of a call in that language, the SDK's dispatch included), and
//!   with a `chat:message` (parse, check, one `broadcast`). The JavaScript
//!   and Python components are built by `scripts/build-js-plugins` and
//!   `scripts/build-py-plugins`; a language whose component is not built is
//!   skipped with a note. `SWITCHBOARD_BENCH_CHATS=NAME=PATH,...` adds
//!   other builds of the chat to the comparison.
//!
//! Everything runs on the benchmark's thread, no sockets: the figures are
//! the server's CPU cost, without the network or the scheduler.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use switchboard::builtin::{self, JWT_SECRET_VAR};
use switchboard::config::Config;
use switchboard::{
    App, ClientIds, ClientInfo, CompileCache, Conn, Inbox, Loader, Outbound, Plugin, PluginSource,
    QueueLimits, Relay, default_cache_dir, queue,
};
use switchboard_protocol::schema;
use switchboard_vocab::RelayEvent;

/// What the load generator sends (`switchboard-bench relay`), `to` aside.
const CANDIDATE: &str = r#""candidate":{"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0 bench=0:1234567890123"}"#;

/// The default chain behind a router, with two clients in one room.
struct Fixture {
    app: App,
    sender: Conn,
    target: Conn,
    target_inbox: Inbox,
    /// The router's timer task lives on it; nothing here sets a timer.
    _runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Fixture {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let entered = runtime.enter();
        let mut config = Config::default();
        // Every connection counts as authenticated: auth is not on the
        // relay path, and the chain still holds `auth-jwt`. The compile
        // cache is the server's default, so that setting up (three times,
        // and under callgrind too) compiles nothing the server has compiled.
        config.auth.required = false;
        let app = App::build(config, None, jwt_secret, None).unwrap();
        let router = app.router();
        let ids = ClientIds::new();
        let limits = QueueLimits {
            messages: 1024,
            bytes: 1 << 20,
        };
        let (sender_outbox, mut sender_inbox) = queue(limits);
        let (target_outbox, mut target_inbox) = queue(limits);
        let mut sender = router.connect(ids.next(), sender_outbox);
        let mut target = router.connect(ids.next(), target_outbox);
        let join = r#"{"event":"room:join","data":{"roomId":"bench"}}"#;
        router.handle_text(&mut sender, join);
        router.handle_text(&mut target, join);
        while sender_inbox.try_recv().is_some() {}
        while target_inbox.try_recv().is_some() {}
        drop(entered);
        Fixture {
            app,
            sender,
            target,
            target_inbox,
            _runtime: runtime,
        }
    }

    fn candidate_to_target(&self) -> String {
        format!(
            r#"{{"event":"ice:candidate","data":{{"to":"{}",{CANDIDATE}}}}}"#,
            self.target.id()
        )
    }

    /// The `data` the router hands the chain for that candidate.
    fn normalized_data(&self) -> String {
        format!(
            r#"{{"to":"{}","candidate":{{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0 bench=0:1234567890123","sdpMid":"0","sdpMLineIndex":0}}}}"#,
            self.target.id()
        )
    }

    /// The sender's record as the hub has it: in the room `bench`.
    fn sender_info(&self) -> ClientInfo {
        self.app
            .hub()
            .client_info(self.sender.id())
            .expect("the sender is connected")
    }

    fn signaling(&self) -> Arc<Plugin> {
        let chain = self.app.registry().chain();
        Arc::clone(chain.find("signaling").unwrap())
    }

    /// Relays one candidate and takes it off the target's queue.
    fn relay(&mut self, text: &str) {
        self.app.router().handle_text(&mut self.sender, text);
        match self.target_inbox.try_recv() {
            Some(Outbound::Frame(frame)) => {
                black_box(frame);
            }
            other => panic!("expected the relayed candidate, got {other:?}"),
        }
    }
}

fn loader(fixture: &Fixture, cache: CompileCache) -> Loader {
    fixture.app.loader(cache).unwrap()
}

fn jwt_secret(name: &str) -> Option<String> {
    (name == JWT_SECRET_VAR).then(|| "bench-secret".to_owned())
}

fn builtin_source(name: &str) -> PluginSource {
    let plugin = builtin::find(name).unwrap();
    PluginSource {
        origin: format!("built-in `{name}`"),
        bytes: plugin.wasm.to_vec(),
    }
}

fn relay(c: &mut Criterion) {
    let mut fixture = Fixture::new();
    let text = fixture.candidate_to_target();
    let mut group = c.benchmark_group("relay");
    group.bench_function("ice_candidate", |b| b.iter(|| fixture.relay(&text)));
    group.finish();
}

fn signaling(c: &mut Criterion) {
    let fixture = Fixture::new();
    let info = fixture.sender_info();
    let data = fixture.normalized_data();
    let relay_data = schema::read_relay("ice:candidate", &data).expect("relay data");
    let relay = Relay {
        event: RelayEvent::IceCandidate,
        sender: fixture.sender.id(),
        target: Some(fixture.target.id()),
        same_room: true,
    };
    let warm = fixture.signaling();
    let mut group = c.benchmark_group("signaling");
    group.bench_function("on_relay", |b| {
        b.iter(|| black_box(warm.on_relay(&relay, &relay_data).unwrap()))
    });
    // The general call, with the client's record and the data as strings,
    // for comparison (the plugin passes: it declares only relay events).
    group.bench_function("on_event", |b| {
        b.iter(|| black_box(warm.on_event(&info, "ice:candidate", &data).unwrap()))
    });
    // A retired version keeps no idle instance, so every call instantiates
    // one and drops it afterwards.
    let cache = CompileCache::new(default_cache_dir());
    let loader = loader(&fixture, cache);
    let source = builtin_source("signaling");
    let limits = loader.default_limits().clone();
    let fresh = loader
        .load("signaling", &source, "{}".into(), vec![], limits)
        .unwrap();
    fresh.retire();
    group.bench_function("on_relay_fresh_instance", |b| {
        b.iter(|| black_box(fresh.on_relay(&relay, &relay_data).unwrap()))
    });
    group.finish();
}

fn swap(c: &mut Criterion) {
    let fixture = Fixture::new();
    let registry = fixture.app.registry();
    let source = builtin_source("rooms");
    let cache_dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    let mut group = c.benchmark_group("swap");
    group.sample_size(10);

    let cached = loader(&fixture, CompileCache::new(Some(cache_dir.clone())));
    group.bench_function("cached", |b| {
        b.iter(|| {
            let limits = cached.default_limits().clone();
            let plugin = cached
                .load("rooms", &source, "{}".into(), vec![], limits)
                .unwrap();
            registry.replace(plugin).unwrap()
        })
    });

    let cold = loader(&fixture, CompileCache::new(None));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("cold_compile", |b| {
        b.iter(|| {
            let limits = cold.default_limits().clone();
            let plugin = cold
                .load("rooms", &source, "{}".into(), vec![], limits)
                .unwrap();
            registry.replace(plugin).unwrap()
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(cache_dir);
}

/// The chat plugin in each language: its name and where its component is
/// (`None`: the built-in Rust one).
const CHATS: [(&str, Option<&str>); 3] = [
    ("rust", None),
    (
        "js",
        Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins-js/chat/dist/chat.wasm"
        )),
    ),
    (
        "python",
        Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins-py/chat/dist/chat.wasm"
        )),
    ),
];

/// More builds of the chat to compare, as `NAME=PATH,NAME=PATH` (another
/// engine, other build flags).
const MORE_CHATS_VAR: &str = "SWITCHBOARD_BENCH_CHATS";

/// Each chat's memory cap: room for a JavaScript or Python runtime's heap
/// between collections, over the hundreds of thousands of calls a
/// benchmark makes.
const CHAT_MEMORY: usize = 256 << 20;

fn plugin_call(c: &mut Criterion) {
    let fixture = Fixture::new();
    let member = fixture.sender_info();
    // The server's own cache: a JavaScript or Python component takes
    // seconds to compile, and only the first run here pays for it.
    let loader = loader(&fixture, CompileCache::new(default_cache_dir()));
    let more = std::env::var(MORE_CHATS_VAR).unwrap_or_default();
    let more = more.split(',').filter_map(|entry| entry.split_once('='));
    let chats = CHATS
        .into_iter()
        .map(|(lang, path)| (lang, path.map(str::to_owned)))
        .chain(more.map(|(name, path)| (name, Some(path.to_owned()))));
    let mut group = c.benchmark_group("plugin_call");
    for (lang, path) in chats {
        let source = match path {
            None => builtin_source("chat"),
            Some(path) => match std::fs::read(&path) {
                Ok(bytes) => PluginSource {
                    origin: path,
                    bytes,
                },
                Err(e) => {
                    eprintln!("plugin_call/{lang}: skipped, {path}: {e}");
                    continue;
                }
            },
        };
        let mut limits = loader.default_limits().clone();
        limits.memory_bytes = CHAT_MEMORY;
        let chat = loader
            .load("chat", &source, "{}".into(), vec![], limits)
            .unwrap();
        group.bench_function(format!("{lang}/pass"), |b| {
            b.iter(|| black_box(chat.on_event(&member, "bench:other", "{}").unwrap()))
        });
        group.bench_function(format!("{lang}/chat"), |b| {
            b.iter(|| {
                let called = chat
                    .on_event(&member, "chat:message", r#"{"text":"hello"}"#)
                    .unwrap();
                assert_eq!(called.effects.len(), 1, "one broadcast");
                black_box(called)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, relay, signaling, swap, plugin_call);
criterion_main!(benches);
