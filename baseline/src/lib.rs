//! The native baseline: PROTOCOL.md's core subset (connected, auth, rooms,
//! relays, ping) written directly on tokio-tungstenite, with no plugins and
//! no validation beyond parsing. It stands for the limit the plugin
//! runtime is measured against, so it stays the simplest fast design: one
//! mutex-guarded table and one task per connection that reads and writes in
//! batches (see `connection`).
//!
//! Not implemented, because no benchmark exercises them: session resume,
//! rate limits, size-based close codes beyond tungstenite's own limit, the
//! auth timeout and heartbeat termination (pings are sent, so idle memory
//! includes the timer a real server needs).

mod connection;
mod hub;
pub mod jwt;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::hub::Hub;

pub const SECRET_VAR: &str = "SWITCHBOARD_JWT_SECRET";

/// The protocol's default, announced in `connected` and used for pings.
const HEARTBEAT: Duration = Duration::from_secs(30);
const MAX_MESSAGE_BYTES: usize = 65536;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

pub struct Server {
    secret: Vec<u8>,
    hub: Hub,
    next_id: AtomicU64,
}

impl Server {
    pub fn new(secret: Vec<u8>) -> Self {
        Server {
            secret,
            hub: Hub::default(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Accepts connections forever, one task each.
    pub async fn accept(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    // Signaling messages are small and latency-bound.
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection::run(Arc::clone(&self), stream));
                }
                // Out of file descriptors, typically: back off, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A 4 KiB read buffer (tungstenite's 128 KiB default would dominate the
/// idle-memory comparison; 4 KiB still takes a window of relays in one
/// read) and a 64 KiB write buffer: frames fed between two flushes go out
/// in one write.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES + 2 * MAX_MESSAGE_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}
