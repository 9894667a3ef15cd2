//! Raw HTTP/1.1 requests, for the transport rules about paths and methods.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The headers of a WebSocket upgrade request for `path`.
pub fn upgrade_request(method: &str, path: &str, addr: SocketAddr) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Content-Length: 0\r\n\
         \r\n"
    )
}

/// A plain request for `path`, with no upgrade headers.
pub fn plain_request(method: &str, path: &str, addr: SocketAddr) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Content-Length: 0\r\n\
         Connection: close\r\n\
         \r\n"
    )
}

/// Sends `request` on a fresh connection and returns the response's status
/// code, read from its status line.
pub async fn status_of(addr: SocketAddr, request: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect to server");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut head = Vec::new();
    let read_head = async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read response");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
    };
    timeout(Duration::from_secs(5), read_head)
        .await
        .expect("no HTTP response within 5 s");
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    match (parts.next(), parts.next().and_then(|s| s.parse().ok())) {
        (Some(version), Some(status)) if version.starts_with("HTTP/1.") => status,
        _ => panic!("not an HTTP response: {head:?}"),
    }
}
