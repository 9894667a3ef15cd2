//! A `switchboard serve` child process on ports of its own.

use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

use crate::admin::Admin;
use crate::token::JWT_SECRET;

/// How long the server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the server prints on stdout once it accepts connections, before the
/// address.
const LISTENING_PREFIX: &str = "switchboard listening on ws://";

/// What the server prints on stdout, before [`LISTENING_PREFIX`], once its
/// admin listener accepts connections, before the address.
const ADMIN_PREFIX: &str = "switchboard admin on http://";

/// The admin address every test server gets unless a test picks another.
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:0";

/// How long a killed server may take to be reaped. SIGKILL cannot be
/// caught, so this only bounds the kernel's teardown.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running server. Dropping it kills the process; if the test is failing
/// at that moment, the server's log (its stderr) is printed.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    /// Holds the config file and the log; removed on drop.
    dir: TempDir,
}

/// How to start a server: the config and what goes around it on the
/// command line and in the environment. [`Server::start`] is
/// `Server::builder(config).start()`.
#[must_use]
pub struct ServerBuilder {
    config_toml: String,
    admin_listen: Option<String>,
    env: Vec<(OsString, OsString)>,
    args: Vec<OsString>,
    startup_timeout: Duration,
}

impl ServerBuilder {
    /// `--admin-listen ADDR` instead of `127.0.0.1:0`.
    pub fn admin_listen(mut self, addr: &str) -> Self {
        self.admin_listen = Some(addr.to_owned());
        self
    }

    /// No `--admin-listen` at all: the config (or the default) decides.
    pub fn no_admin_listen_flag(mut self) -> Self {
        self.admin_listen = None;
        self
    }

    /// Sets an environment variable for the server.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// `SWITCHBOARD_ADMIN_TOKEN=token`.
    pub fn admin_token(self, token: &str) -> Self {
        self.env("SWITCHBOARD_ADMIN_TOKEN", token)
    }

    /// `--plugins DIR`.
    pub fn plugins_dir(mut self, dir: &Path) -> Self {
        self.args.push("--plugins".into());
        self.args.push(dir.into());
        self
    }

    /// One more command-line argument after the ones every test server
    /// gets, for flags that have no method of their own here (e.g.
    /// `--redis URL`): a test of a flag must pass the flag itself, since
    /// its config twin proves nothing about the command line.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// How long the server may take to print its listening line (30 s by
    /// default): longer for a chain with a plugin that compiles slowly, as
    /// a Python plugin's 18 MB component does without a warm cache.
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// Starts the server and waits until it says where it listens.
    pub async fn start(self) -> Server {
        let (child, dir) = self.spawn();
        Server::wait_listening(child, dir, &self.config_toml, self.startup_timeout).await
    }

    /// Starts a server that must not come up: waits (at most `limit`) for
    /// it to exit and returns its exit status and its log (stderr). Fails
    /// the test if it prints its listening line instead.
    pub async fn start_expecting_failure(self, limit: Duration) -> (ExitStatus, String) {
        let (mut child, dir) = self.spawn();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let outcome = timeout(limit, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with(LISTENING_PREFIX) {
                    return Err(line);
                }
            }
            Ok(child.wait().await.expect("wait for switchboard"))
        })
        .await;
        match outcome {
            Ok(Ok(status)) => (status, read_log(&dir)),
            Ok(Err(line)) => {
                let _ = child.start_kill();
                panic!(
                    "switchboard started although it should have refused to: {line:?}\nlog:\n{}",
                    read_log(&dir)
                )
            }
            Err(_) => {
                let _ = child.start_kill();
                panic!(
                    "switchboard neither listened nor exited within {limit:?}\nlog:\n{}",
                    read_log(&dir)
                )
            }
        }
    }

    fn spawn(&self) -> (Child, TempDir) {
        let bin = binary_path();
        let dir = tempfile::tempdir().expect("create temp dir");
        let config = dir.path().join("switchboard.toml");
        std::fs::write(&config, &self.config_toml).expect("write config");
        let log = File::create(dir.path().join("server.log")).expect("create log");

        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(admin) = &self.admin_listen {
            command.args(["--admin-listen", admin]);
        }
        command
            .args(&self.args)
            .env("SWITCHBOARD_JWT_SECRET", JWT_SECRET)
            .env_remove("SWITCHBOARD_ADMIN_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        (child, dir)
    }
}

impl Server {
    /// Starts the server with the default config (an empty TOML file).
    pub async fn start_default() -> Server {
        Server::start("").await
    }

    /// Writes `config_toml` to a file and runs
    /// `switchboard serve --config FILE --listen 127.0.0.1:0
    /// --admin-listen 127.0.0.1:0` with the test JWT secret, then waits
    /// until it says where it listens.
    pub async fn start(config_toml: &str) -> Server {
        Server::builder(config_toml).start().await
    }

    /// A server with `config_toml` and anything else a test needs around it.
    pub fn builder(config_toml: &str) -> ServerBuilder {
        ServerBuilder {
            config_toml: config_toml.to_owned(),
            admin_listen: Some(DEFAULT_ADMIN_LISTEN.to_owned()),
            env: Vec::new(),
            args: Vec::new(),
            startup_timeout: STARTUP_TIMEOUT,
        }
    }

    async fn wait_listening(
        mut child: Child,
        dir: TempDir,
        config_toml: &str,
        startup_timeout: Duration,
    ) -> Server {
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addrs = timeout(startup_timeout, async {
            let mut admin_addr = None;
            while let Some(line) = lines.next_line().await.expect("read server stdout") {
                if let Some(addr) = line.strip_prefix(ADMIN_PREFIX) {
                    let addr = addr.trim_end_matches('/');
                    admin_addr = Some(
                        addr.parse::<SocketAddr>()
                            .unwrap_or_else(|e| panic!("bad address in admin line {line:?}: {e}")),
                    );
                }
                if let Some(addr) = line
                    .strip_prefix(LISTENING_PREFIX)
                    .and_then(|rest| rest.strip_suffix("/ws"))
                {
                    let addr = addr
                        .parse::<SocketAddr>()
                        .unwrap_or_else(|e| panic!("bad address in listening line {line:?}: {e}"));
                    return Some((addr, admin_addr));
                }
            }
            None
        })
        .await;
        let (addr, admin_addr) = match addrs {
            Ok(Some(addrs)) => addrs,
            Ok(None) => panic!(
                "switchboard exited before listening.\nconfig:\n{config_toml}\nlog:\n{}",
                read_log(&dir)
            ),
            Err(_) => panic!(
                "switchboard did not print `{LISTENING_PREFIX}ADDR/ws` within {startup_timeout:?}.\nlog:\n{}",
                read_log(&dir)
            ),
        };
        // Keep draining stdout so that a later print never hits a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            child,
            addr,
            admin_addr,
            dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Where the admin HTTP listener is, from the `switchboard admin on`
    /// line the server printed before its listening line.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr.unwrap_or_else(|| {
            panic!("the server printed no `{ADMIN_PREFIX}ADDR` line before listening")
        })
    }

    /// An admin HTTP client without a bearer token.
    pub fn admin(&self) -> Admin {
        Admin::new(self.admin_addr(), None)
    }

    /// An admin HTTP client that sends `Authorization: Bearer <token>`.
    pub fn admin_with_token(&self, token: &str) -> Admin {
        Admin::new(self.admin_addr(), Some(token.to_owned()))
    }

    /// The server's log (its stderr) so far.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("server already reaped")
    }

    /// The server's resident set size (`VmRSS` in `/proc/<pid>/status`),
    /// in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `VmRSS: N kB` line in {path}:\n{status}"));
        kib * 1024
    }

    /// Sends SIGTERM to the server.
    pub fn sigterm(&self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill -TERM {pid}: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends SIGKILL and reaps the process: a crash, as the OOM killer or an
    /// operator's `kill -9` makes one. No shutdown code runs, so nothing is
    /// closed, released or announced (sockets are reset by the kernel,
    /// leases in Redis simply stop being renewed): what the rest of a
    /// cluster must survive. Returns once the process is gone, so a test
    /// that times what follows starts its clock at the death, not before.
    pub async fn kill9(&mut self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(
            rc,
            0,
            "kill -KILL {pid}: {}",
            std::io::Error::last_os_error()
        );
        let status = self.wait_exit(REAP_TIMEOUT).await;
        // Had it exited by itself first, it would not have been a crash.
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "switchboard {pid} ended with {status}, not by the SIGKILL"
        );
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit; fails the test after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("switchboard still running after {limit:?}"))
            .expect("wait for switchboard")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!(
                "---- switchboard log ({}) ----\n{}",
                self.addr,
                read_log(&self.dir)
            );
        }
    }
}

/// `SWITCHBOARD_BIN`, else `target/debug/switchboard` next to the test
/// executable (`target/debug/deps/<test>-<hash>`).
pub fn binary_path() -> PathBuf {
    if let Some(bin) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps")
        .join(format!("switchboard{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "server binary not found at {}: run `cargo build -p switchboard` first, \
         or set SWITCHBOARD_BIN to its path",
        bin.display()
    );
    bin
}

fn read_log(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path().join("server.log"))
        .unwrap_or_else(|e| format!("(no log: {e})"))
}
