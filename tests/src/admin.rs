//! A small HTTP/1.1 client for the admin listener: one request per
//! connection (`Connection: close`), the response read to the end.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use crate::Metrics;

/// How long one admin request may take, from connect to the last byte. A
/// hot swap compiles the component before it answers, so this is generous.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How often [`Admin::metrics_until`] scrapes.
const METRICS_POLL: Duration = Duration::from_millis(50);

/// The admin endpoint of one server, with or without a bearer token.
#[derive(Clone)]
pub struct Admin {
    addr: SocketAddr,
    token: Option<String>,
}

/// A whole HTTP response.
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Admin {
    pub fn new(addr: SocketAddr, token: Option<String>) -> Admin {
        Admin { addr, token }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[]).await
    }

    pub async fn put(&self, path: &str, body: &[u8]) -> Response {
        self.request("PUT", path, body).await
    }

    pub async fn post(&self, path: &str) -> Response {
        self.request("POST", path, &[]).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, &[]).await
    }

    /// `GET path`, expecting 200 with a JSON body; returns the body.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status, 200, "GET {path}: {response}");
        response.json()
    }

    /// `GET /metrics`, expecting 200; returns the body as text.
    pub async fn metrics_text(&self) -> String {
        let response = self.get("/metrics").await;
        assert_eq!(response.status, 200, "GET /metrics: {response}");
        response.text()
    }

    /// `GET /metrics`, parsed.
    pub async fn metrics(&self) -> Metrics {
        Metrics::parse(&self.metrics_text().await)
    }

    /// Scrapes `/metrics` until `check` holds and returns that scrape;
    /// fails after `limit`, naming `what` and showing the last scrape.
    /// Gauges settle a moment after what a client sees (a close is counted
    /// once the server has handled it), so tests poll rather than sleep.
    pub async fn metrics_until(
        &self,
        what: &str,
        limit: Duration,
        check: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        let deadline = Instant::now() + limit;
        loop {
            let metrics = self.metrics().await;
            if check(&metrics) {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {limit:?}; last scrape: {}",
                metrics.summary()
            );
            sleep(METRICS_POLL).await;
        }
    }

    /// Sends one request with `body` and reads the whole response.
    pub async fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        let extra = match &self.token {
            Some(token) => format!("Authorization: Bearer {token}\r\n"),
            None => String::new(),
        };
        self.raw_request(method, path, &extra, body).await
    }

    /// Sends one request with `extra_headers` (each line ending in CRLF)
    /// instead of this client's token, and reads the whole response.
    pub async fn raw_request(
        &self,
        method: &str,
        path: &str,
        extra_headers: &str,
        body: &[u8],
    ) -> Response {
        let head = format!(
            "{method} {path} HTTP/1.1\r\n\
             Host: {}\r\n\
             Content-Length: {}\r\n\
             Connection: close\r\n\
             {extra_headers}\
             \r\n",
            self.addr,
            body.len()
        );
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr)
                .await
                .unwrap_or_else(|e| panic!("connect to admin listener {}: {e}", self.addr));
            stream.write_all(head.as_bytes()).await.expect("write head");
            stream.write_all(body).await.expect("write body");
            let mut raw = Vec::new();
            // A server may reset after a complete response; keep what came.
            let _ = stream.read_to_end(&mut raw).await;
            raw
        };
        let raw = timeout(ADMIN_TIMEOUT, exchange).await.unwrap_or_else(|_| {
            panic!("{method} {path}: no complete response in {ADMIN_TIMEOUT:?}")
        });
        Response::parse(&raw).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: bad HTTP response ({e}): {:?}",
                String::from_utf8_lossy(&raw)
            )
        })
    }
}

impl Response {
    fn parse(raw: &[u8]) -> Result<Response, String> {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no end of headers")?;
        let head = std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().ok_or("empty response")?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let rest = &raw[end + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)?
        } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
            let len: usize = len.parse().map_err(|_| format!("bad length {len:?}"))?;
            if rest.len() < len {
                return Err(format!("body of {} bytes, expected {len}", rest.len()));
            }
            rest[..len].to_vec()
        } else {
            rest.to_vec()
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone())
            .unwrap_or_else(|e| panic!("response body is not UTF-8: {e}"))
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self}"))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP {} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        )
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_line = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Percent-encodes `segment` for use as one path segment: everything but
/// the unreserved characters of RFC 3986.
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
