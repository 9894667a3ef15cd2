//! A WebSocket client written by hand on a `TcpStream`, for what a
//! well-behaved client library refuses to send: invalid UTF-8 in a text
//! frame, a frame header announcing more than ever comes, unmasked or
//! reserved-bit frames, floods of control frames, and clients that vanish
//! at any point of the handshake. Frames are built byte by byte
//! (RFC 6455, section 5.2); everything it reads is checked to be what a
//! server may send.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout, timeout_at};

use crate::RECV_TIMEOUT;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The key every frame from [`RawWs`] is masked with. Any key is valid;
/// a fixed one keeps the bytes reproducible.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// How a connection ended, as [`RawWs::expect_end`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A close frame, with its code if it had one.
    CloseFrame(Option<u16>),
    /// EOF or a reset without a close frame.
    Dropped,
}

/// An upgraded connection driven frame by frame.
pub struct RawWs {
    stream: TcpStream,
    /// Bytes read past what has been parsed.
    buf: Vec<u8>,
    /// `clientId` from `connected`.
    pub client_id: String,
}

/// The bytes of one frame header: FIN, `opcode`, the mask bit, and
/// `len` in the shortest encoding (the length need not match what
/// follows: that is the point of some tests). Masked headers end with
/// [`MASK`].
pub fn frame_header(fin: bool, opcode: u8, len: u64, masked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    let mask_bit = if masked { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
    }
    out
}

/// A whole client frame: header, then `payload` masked.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len() as u64, true);
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ MASK[i % 4]),
    );
    out
}

/// A client close frame with `code`.
pub fn close_frame(code: u16) -> Vec<u8> {
    client_frame(true, OP_CLOSE, &code.to_be_bytes())
}

/// The upgrade request [`RawWs`] sends.
fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET /ws HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         \r\n"
    )
}

impl RawWs {
    /// Connects to `/ws` on `addr`, upgrades and reads `connected`; fails
    /// the test on any error.
    pub async fn connect(addr: SocketAddr) -> RawWs {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        RawWs::upgrade(stream, addr)
            .await
            .unwrap_or_else(|e| panic!("upgrade on {addr}: {e}"))
    }

    /// Like [`RawWs::connect`] from the local address `from` (any port),
    /// so that many connections can come from many loopback addresses.
    /// Returns the error instead of failing, for churn loops that count
    /// failures.
    pub async fn connect_from(from: IpAddr, addr: SocketAddr) -> std::io::Result<RawWs> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let stream = socket.connect(addr).await?;
        RawWs::upgrade(stream, addr).await
    }

    /// Sends the upgrade request on `stream`, expects 101, and reads the
    /// `connected` message.
    pub async fn upgrade(mut stream: TcpStream, addr: SocketAddr) -> std::io::Result<RawWs> {
        stream.write_all(upgrade_request(addr).as_bytes()).await?;
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed during the upgrade",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(std::io::Error::other(format!("upgrade refused: {head:?}")));
        }
        buf.drain(..head_end);
        let mut ws = RawWs {
            stream,
            buf,
            client_id: String::new(),
        };
        let frame = ws
            .read_frame()
            .await?
            .ok_or_else(|| std::io::Error::other("closed before `connected`"))?;
        let connected: Value = serde_json::from_slice(&frame.payload)
            .map_err(|e| std::io::Error::other(format!("`connected` is not JSON: {e}")))?;
        if frame.opcode != OP_TEXT || connected["event"] != "connected" {
            return Err(std::io::Error::other(format!(
                "expected `connected` first, got {frame:?}"
            )));
        }
        ws.client_id = connected["data"]["clientId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(ws)
    }

    /// The socket, e.g. to set `SO_LINGER` before dropping it.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes `bytes` as they are.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Writes one masked frame.
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.write_raw(&client_frame(fin, opcode, payload))
            .await
            .unwrap_or_else(|e| panic!("write a frame (opcode {opcode:#x}): {e}"));
    }

    /// Writes one masked text frame holding `text`.
    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(true, OP_TEXT, text.as_bytes()).await;
    }

    /// The next frame, or `None` at EOF; an error for a reset or for bytes
    /// that are not a valid server frame.
    pub async fn read_frame(&mut self) -> std::io::Result<Option<RawFrame>> {
        read_frame(&mut self.stream, &mut self.buf).await
    }

    /// The next text message, parsed as JSON, skipping pings and pongs;
    /// fails the test on anything else or after [`RECV_TIMEOUT`].
    pub async fn expect_text(&mut self) -> Value {
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let frame = timeout_at(deadline, self.read_frame())
                .await
                .unwrap_or_else(|_| panic!("no text message within {RECV_TIMEOUT:?}"))
                .unwrap_or_else(|e| panic!("connection failed while waiting for text: {e}"))
                .unwrap_or_else(|| panic!("connection ended while waiting for text"));
            match frame.opcode {
                OP_PING | OP_PONG => continue,
                OP_TEXT if frame.fin => {
                    return serde_json::from_slice(&frame.payload).unwrap_or_else(|e| {
                        panic!("server sent non-JSON text {:?}: {e}", frame.payload)
                    });
                }
                _ => panic!("expected a text message, got {frame:?}"),
            }
        }
    }

    /// Reads until the connection ends, within `limit`: returns how it
    /// ended and the data messages that came first. Pings and pongs are
    /// skipped (and not answered).
    pub async fn expect_end(&mut self, limit: Duration) -> (Ending, Vec<Value>) {
        expect_end(&mut self.stream, &mut self.buf, limit).await
    }

    /// Writes `bytes` while reading until the connection ends, for input
    /// the server stops reading halfway through (it may reset the
    /// connection under the writer, which is not an error here). Returns
    /// what [`RawWs::expect_end`] would.
    pub async fn write_until_end(&mut self, bytes: &[u8], limit: Duration) -> (Ending, Vec<Value>) {
        let (mut reader, mut writer) = self.stream.split();
        let write = async {
            let _ = timeout(limit, writer.write_all(bytes)).await;
        };
        let read = expect_end(&mut reader, &mut self.buf, limit);
        let ((), end) = tokio::join!(write, read);
        end
    }
}

async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<RawFrame>> {
    loop {
        if let Some((frame, used)) = parse_server_frame(buf)? {
            buf.drain(..used);
            return Ok(Some(frame));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn expect_end(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    limit: Duration,
) -> (Ending, Vec<Value>) {
    let mut messages = Vec::new();
    let ending =
        timeout(limit, async {
            loop {
                match read_frame(stream, buf).await {
                    Ok(Some(frame)) => match frame.opcode {
                        OP_CLOSE => {
                            let code = (frame.payload.len() >= 2)
                                .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                            return Ending::CloseFrame(code);
                        }
                        OP_PING | OP_PONG => continue,
                        _ => messages.push(serde_json::from_slice(&frame.payload).unwrap_or_else(
                            |_| Value::String(String::from_utf8_lossy(&frame.payload).into()),
                        )),
                    },
                    Ok(None) | Err(_) => return Ending::Dropped,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("connection still open after {limit:?}"));
    (ending, messages)
}

/// One complete server frame at the start of `buf` and its length, `None`
/// if more bytes are needed. Server frames are never masked.
fn parse_server_frame(buf: &[u8]) -> std::io::Result<Option<(RawFrame, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    if buf[0] & 0x70 != 0 || buf[1] & 0x80 != 0 {
        return Err(std::io::Error::other(format!(
            "invalid server frame header {:02x} {:02x}",
            buf[0], buf[1]
        )));
    }
    let (len, header) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")),
            10,
        ),
        126 | 127 => return Ok(None),
        short => (u64::from(short), 2),
    };
    let total = header + usize::try_from(len).map_err(std::io::Error::other)?;
    if buf.len() < total {
        return Ok(None);
    }
    let frame = RawFrame {
        fin,
        opcode,
        payload: buf[header..total].to_vec(),
    };
    Ok(Some((frame, total)))
}
