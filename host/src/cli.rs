//! The command line: `serve`, `token`, `check`, `compile`, `new` and
//! `replay`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;

use crate::app::App;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::plugins::builtin::JWT_SECRET_VAR;
use crate::plugins::{
    CompileCache, Import, Loader, PluginSource, Support, WIT_VERSION, unix_millis,
};
use crate::record::{self, Replay};
use crate::schema;
use crate::state::Hub;
use crate::token::{self, Claims};

const ADMIN_TOKEN_VAR: &str = "SWITCHBOARD_ADMIN_TOKEN";

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "WebRTC signaling server with WebAssembly plugins"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (with no arguments: 127.0.0.1:8080, built-in plugins).
    Serve {
        /// TOML config file; every key has a default.
        #[arg(long)]
        config: Option<PathBuf>,
        /// WebSocket listen address, overriding the config's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin API address, overriding the config's `admin.listen`.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
        /// Directory of plugin components: `<name>.wasm` there is used for
        /// the chain entry `<name>` instead of the built-in one.
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// Cluster mode: the Redis this node shares with the others,
        /// overriding the config's `cluster.redis_url` (and turning
        /// cluster mode on without a `[cluster]` section).
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Serve a two-tab call page at /demo, built on the JavaScript
        /// client SDK, which hands a dev token to anyone who opens it: for
        /// development only.
        #[arg(long)]
        demo: bool,
    },
    /// Mint a development token signed with $SWITCHBOARD_JWT_SECRET.
    Token {
        #[arg(long)]
        user: String,
        /// The only room the token may join.
        #[arg(long)]
        room: Option<String>,
        #[arg(long)]
        role: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Load a plugin component and print what it imports and declares,
    /// without serving.
    Check { plugin: PathBuf },
    /// Compile a plugin component into the compile cache ahead of time,
    /// so that a server start or hot swap loads it without compiling.
    Compile {
        plugin: PathBuf,
        /// The server's config: its `[plugin_cache]` and `[plugin_limits]`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The compile cache directory to write to, instead of the
        /// config's; ship it as the server's `[plugin_cache] dir`.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Create a plugin project in ./NAME: a sample handler, a test, the
    /// WIT, and a one-command build to a component.
    New {
        /// The plugin's (and the package's) name, e.g. `room-policy`.
        name: String,
        #[arg(long, value_enum)]
        lang: crate::scaffold::Lang,
        /// The Switchboard checkout whose SDK the project depends on
        /// (default: the one this binary was built from).
        #[arg(long, value_name = "DIR")]
        switchboard: Option<PathBuf>,
    },
    /// Ask a plugin version the calls a recording holds (`POST
    /// /admin/recordings`) and print every decision that differs from the
    /// recorded one. Exits 0 when none does, 1 when any does, 2 when the
    /// replay cannot run.
    Replay {
        /// The recording file.
        file: PathBuf,
        /// The version to replay against (a component).
        #[arg(long, value_name = "WASM")]
        plugin: PathBuf,
        /// The chain entry whose calls to replay (default: the name the
        /// component describes itself with).
        #[arg(long, value_name = "NAME")]
        entry: Option<String>,
        /// The version's config as JSON (default: the recorded entry's).
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let done = match cli.command {
        Command::Serve {
            config,
            listen,
            admin_listen,
            plugins,
            redis,
            log_format,
            demo,
        } => {
            init_tracing(log_format);
            let mut config = match &config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(listen) = admin_listen {
                config.admin.listen = listen;
            }
            config.demo |= demo;
            if let Some(url) = redis {
                config
                    .cluster
                    .get_or_insert_with(Default::default)
                    .redis_url = url;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(serve(config, plugins.as_deref()))
        }
        Command::Token {
            user,
            room,
            role,
            ttl,
        } => {
            let secret = std::env::var(JWT_SECRET_VAR).with_context(|| {
                format!("{JWT_SECRET_VAR} is not set; set it to the server's secret")
            })?;
            let claims = Claims {
                user: &user,
                room: room.as_deref(),
                role: role.as_deref(),
                ttl_secs: ttl,
            };
            println!(
                "{}",
                token::mint(secret.as_bytes(), &claims, unix_millis() / 1000)
            );
            Ok(())
        }
        Command::Check { plugin } => check(&plugin),
        Command::Compile {
            plugin,
            config,
            out,
        } => compile(&plugin, config.as_deref(), out),
        Command::New {
            name,
            lang,
            switchboard,
        } => {
            let dir = crate::scaffold::create(&name, lang, Path::new("."), switchboard.as_deref())?;
            println!(
                "created {}: see its README.md to build, test and load it",
                dir.display()
            );
            Ok(())
        }
        // Its own exit status, its errors included (2).
        Command::Replay {
            file,
            plugin,
            entry,
            config,
        } => {
            let replay = Replay {
                file,
                plugin,
                entry,
                config,
            };
            return Ok(record::replay(&replay));
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

async fn serve(config: Config, plugins_dir: Option<&Path>) -> anyhow::Result<()> {
    let admin_token = std::env::var(ADMIN_TOKEN_VAR)
        .ok()
        .filter(|t| !t.is_empty());
    if admin_token.is_none() && !config.admin.listen.ip().is_loopback() {
        bail!(
            "the admin API would listen on {} without a token: set {ADMIN_TOKEN_VAR} or use a loopback address",
            config.admin.listen
        );
    }
    let secret = jwt_secret();
    let lookup_env = |name: &str| {
        if name == JWT_SECRET_VAR {
            Some(secret.clone())
        } else {
            std::env::var(name).ok()
        }
    };
    let cluster = match &config.cluster {
        Some(settings) => Some(Cluster::connect(settings, &config).await?),
        None => None,
    };
    let app = App::build_in(config, cluster, plugins_dir, lookup_env, admin_token)?;
    app.join_cluster().await?;
    let config = app.config();
    let shutdown = app.shutdown().clone();

    // Installed before the addresses are announced: a SIGTERM right after
    // must drain, not kill.
    let stop = shutdown_signal()?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("admin API: listening on {}", config.admin.listen))?;
    let listener = crate::net::listen(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    let admin_addr = admin_listener.local_addr()?;
    let addr = listener.local_addr()?;
    tokio::spawn(Arc::clone(app.admin()).serve(admin_listener));
    tokio::spawn(Arc::clone(app.swapper()).watch(
        Duration::from_millis(config.watch.interval_ms),
        shutdown.clone(),
    ));
    tokio::spawn(Arc::clone(app.swapper()).guard_budgets(shutdown.clone()));
    tokio::spawn(crate::memory::give_back(
        Arc::clone(app.hub()),
        shutdown.clone(),
    ));
    let server = Arc::clone(app.server());
    let accept = tokio::spawn(Arc::clone(&server).accept(listener));
    tracing::info!(%addr, %admin_addr, "serving");
    println!("switchboard admin on http://{admin_addr}");
    println!("switchboard listening on ws://{addr}/ws");
    if config.demo {
        tracing::warn!("demo call page on http://{addr}/demo; it hands a dev token to anyone");
    }

    stop.await?;
    tracing::info!("shutting down: closing connections");
    shutdown.cancel();
    let _ = accept.await;
    server.connections.close();
    let drain = Duration::from_millis(config.shutdown.drain_timeout_ms);
    if tokio::time::timeout(drain, server.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = server.connections.len(),
            "drain timeout passed; exiting anyway"
        );
    }
    Ok(())
}

/// The JWT secret from the environment, or an ephemeral one with a dev
/// token printed for it.
fn jwt_secret() -> String {
    if let Ok(secret) = std::env::var(JWT_SECRET_VAR)
        && !secret.is_empty()
    {
        return secret;
    }
    let secret = token::ephemeral_secret();
    let claims = Claims {
        user: "dev",
        room: None,
        role: None,
        ttl_secs: 24 * 3600,
    };
    let dev_token = token::mint(secret.as_bytes(), &claims, unix_millis() / 1000);
    tracing::warn!(
        "{JWT_SECRET_VAR} is not set: using an ephemeral secret; tokens die with this process"
    );
    println!("dev token (user `dev`, 24 h): {dev_token}");
    secret
}

/// Resolves on SIGTERM or SIGINT; both handlers are installed at once.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = anyhow::Result<()>>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    })
}

fn check(path: &Path) -> anyhow::Result<()> {
    // The loader's warnings go to stderr.
    init_tracing(LogFormat::Text);
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let source = PluginSource {
        origin: path.display().to_string(),
        bytes,
    };
    let loader = Loader::new(
        Arc::new(Hub::new(Config::default().limits.max_rooms)),
        Config::default().plugin_limits,
        CompileCache::new(None),
    )?;
    let inspection = loader.inspect(&source)?;
    print_imports(&inspection.imports);
    let descriptor = inspection.described?;
    println!("plugin    {} {}", descriptor.name, descriptor.version);
    println!("interface switchboard:plugin@{WIT_VERSION} (compatible)");
    let hooks = descriptor.hooks;
    let hook_names: Vec<&str> = [
        (hooks.connect, "connect"),
        (hooks.auth, "auth"),
        (hooks.disconnect, "disconnect"),
        (hooks.timer, "timer"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    println!(
        "hooks     {}",
        if hook_names.is_empty() {
            "-".into()
        } else {
            hook_names.join(", ")
        }
    );
    println!("events");
    for event in &descriptor.events {
        match &event.schema {
            Some(schema) => println!("  {}  schema: {schema}", event.name),
            None if schema::is_protocol_event(&event.name) => {
                println!("  {}  (protocol schema)", event.name)
            }
            None => println!("  {}  (any object)", event.name),
        }
    }
    Ok(())
}

fn compile(path: &Path, config: Option<&Path>, out: Option<PathBuf>) -> anyhow::Result<()> {
    init_tracing(LogFormat::Text);
    let config = match config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let dir = out.or_else(|| crate::app::cache_dir(&config)).context(
        "no compile cache directory: pass `-o DIR`, or enable `[plugin_cache]` with a `dir`",
    )?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let source = PluginSource {
        origin: path.display().to_string(),
        bytes,
    };
    let cache = CompileCache::new(Some(dir.clone())).bounded(config.plugin_cache.max_bytes);
    let loader = Loader::new(
        Arc::new(Hub::new(config.limits.max_rooms)),
        config.plugin_limits.clone(),
        cache,
    )?;
    let started = std::time::Instant::now();
    // Linked and described too: what is compiled here can be loaded.
    let descriptor = loader.inspect(&source)?.described?;
    let artifact = loader.cached(&source).with_context(|| {
        format!(
            "the compiled plugin could not be written to {}",
            dir.display()
        )
    })?;
    println!(
        "compiled  {} {} in {:.1} s",
        descriptor.name,
        descriptor.version,
        started.elapsed().as_secs_f64()
    );
    println!("artifact  {}", artifact.display());
    println!(
        "a server whose `[plugin_cache] dir` is {} loads this component without compiling it",
        dir.display()
    );
    Ok(())
}

/// Each import with what it does here; what traps or fails is a warning,
/// what the host does not provide an error (the load's error says what to
/// do about it).
fn print_imports(imports: &[Import]) {
    println!("imports");
    let width = imports.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for import in imports {
        let name = &import.name;
        match import.support {
            Support::Works(note) => println!("  {name:width$}  {note}"),
            Support::Refused(note) => println!("  {name:width$}  warning, if used: {note}"),
            Support::Missing => println!("  {name:width$}  error: this host does not provide it"),
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: in a file or a pipe the escapes are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
