//! A `switchboard serve` child process on a port of its own.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

use crate::token::JWT_SECRET;

/// How long the server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the server prints on stdout once it accepts connections, before the
/// address.
const LISTENING_PREFIX: &str = "switchboard listening on ws://";

/// A running server. Dropping it kills the process; if the test is failing
/// at that moment, the server's log (its stderr) is printed.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    /// Holds the config file and the log; removed on drop.
    dir: TempDir,
}

impl Server {
    /// Starts the server with the default config (an empty TOML file).
    pub async fn start_default() -> Server {
        Server::start("").await
    }

    /// Writes `config_toml` to a file and runs
    /// `switchboard serve --config FILE --listen 127.0.0.1:0` with the test
    /// JWT secret, then waits until it says where it listens.
    pub async fn start(config_toml: &str) -> Server {
        let bin = binary_path();
        let dir = tempfile::tempdir().expect("create temp dir");
        let config = dir.path().join("switchboard.toml");
        std::fs::write(&config, config_toml).expect("write config");
        let log = File::create(dir.path().join("server.log")).expect("create log");

        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .env("SWITCHBOARD_JWT_SECRET", JWT_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));

        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = timeout(STARTUP_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("read server stdout") {
                if let Some(addr) = line
                    .strip_prefix(LISTENING_PREFIX)
                    .and_then(|rest| rest.strip_suffix("/ws"))
                {
                    return Some(addr.parse::<SocketAddr>().unwrap_or_else(|e| {
                        panic!("bad address in listening line {line:?}: {e}")
                    }));
                }
            }
            None
        })
        .await;
        let addr = match addr {
            Ok(Some(addr)) => addr,
            Ok(None) => panic!(
                "switchboard exited before listening.\nconfig:\n{config_toml}\nlog:\n{}",
                read_log(&dir)
            ),
            Err(_) => panic!(
                "switchboard did not print `{LISTENING_PREFIX}ADDR/ws` within {STARTUP_TIMEOUT:?}.\nlog:\n{}",
                read_log(&dir)
            ),
        };
        // Keep draining stdout so that a later print never hits a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, addr, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("server already reaped")
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
fn binary_path() -> PathBuf {
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
