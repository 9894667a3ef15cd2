//! A plugin's stdout and stderr: kept in memory during a call, bounded,
//! and written to the server's log once the call is over, one log line per
//! line, with the plugin's name and the stream.
//!
//! The guest's writes only append to a buffer, so a plugin that prints
//! costs its own call a copy and never waits on the log. After the call,
//! the buffer goes to a thread of its own that writes the log lines: a log
//! line costs microseconds of formatting and a write that may block on a
//! full pipe, which must not land on the tokio worker that made the call.
//! What a call writes beyond [`CALL_BYTES`] or [`CALL_LINES`], and the end
//! of a line longer than [`LINE_BYTES`], is dropped and counted, and the
//! log says so; so is a call's output that finds [`QUEUE`] others waiting
//! for the log thread.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of one stream kept per call.
pub(crate) const CALL_BYTES: usize = 16 * 1024;
/// Lines of one stream logged per call.
pub(crate) const CALL_LINES: usize = 64;
/// Bytes of one line logged; the rest of it is dropped.
pub(crate) const LINE_BYTES: usize = 2048;

/// Calls' output waiting for the log thread; more is dropped, not waited
/// for.
const QUEUE: usize = 1024;

/// What `check-write` grants: more than any one write of a guest's libc,
/// so that no write waits; past [`CALL_BYTES`] a write is counted, not kept.
const WRITE_PERMIT: usize = 1 << 20;

/// The two streams of one instance, shared by its WASI context (which
/// writes them) and its store's data (which logs them after each call).
#[derive(Clone, Default)]
pub(crate) struct Output(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// Set by any write, so a call that printed nothing costs one load.
    written: AtomicBool,
    stdout: Mutex<Captured>,
    stderr: Mutex<Captured>,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    /// Written past [`CALL_BYTES`] in this call.
    dropped: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One stream of an [`Output`], as the WASI context hands it to the guest.
#[derive(Clone)]
pub(crate) struct Pipe {
    output: Output,
    stream: Stream,
}

impl Output {
    pub(crate) fn pipe(&self, stream: Stream) -> Pipe {
        Pipe {
            output: self.clone(),
            stream,
        }
    }

    /// Hands what the call that just ended wrote to the log thread, and
    /// empties the buffers.
    pub(crate) fn flush(&self, plugin: &Arc<str>) {
        if !self.0.written.load(Relaxed) {
            return;
        }
        self.0.written.store(false, Relaxed);
        for stream in [Stream::Stdout, Stream::Stderr] {
            let mut captured = self.0.captured(stream).lock();
            if captured.kept.is_empty() && captured.dropped == 0 {
                continue;
            }
            send(Batch {
                plugin: Arc::clone(plugin),
                stream,
                kept: std::mem::take(&mut captured.kept),
                dropped: std::mem::take(&mut captured.dropped),
            });
        }
    }
}

impl Shared {
    fn captured(&self, stream: Stream) -> &Mutex<Captured> {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }
}

impl Pipe {
    fn append(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let shared = &self.output.0;
        let mut captured = shared.captured(self.stream).lock();
        let room = CALL_BYTES.saturating_sub(captured.kept.len());
        let kept = bytes.len().min(room);
        captured.kept.extend_from_slice(&bytes[..kept]);
        captured.dropped += bytes.len() - kept;
        shared.written.store(true, Relaxed);
    }
}

/// One stream's output of one call, on its way to the log.
struct Batch {
    plugin: Arc<str>,
    stream: Stream,
    kept: Vec<u8>,
    dropped: usize,
}

/// Batches dropped because the log thread had [`QUEUE`] waiting.
static LOST: AtomicU64 = AtomicU64::new(0);

fn send(batch: Batch) {
    static LOG: OnceLock<Option<SyncSender<Batch>>> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let (sender, receiver) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("plugin-output".into())
            .spawn(move || write_log(receiver))
            .inspect_err(|e| tracing::error!("no plugin output thread ({e}): output is dropped"))
            .ok()
            .map(|_| sender)
    });
    match log {
        Some(log) if log.try_send(batch).is_ok() => {}
        _ => {
            LOST.fetch_add(1, Relaxed);
        }
    }
}

/// The log thread: every batch in the order calls ended.
fn write_log(batches: Receiver<Batch>) {
    for batch in batches {
        let lost = LOST.swap(0, Relaxed);
        if lost > 0 {
            tracing::warn!(
                lost,
                "plugin output dropped: calls printed faster than the log was written"
            );
        }
        for line in lines(&batch.kept, batch.dropped) {
            emit(&batch.plugin, batch.stream, &line);
        }
    }
}

/// The log lines for what one stream got in a call: each line written (the
/// last one even without its newline, since the call is over), cut at
/// [`LINE_BYTES`], at most [`CALL_LINES`] of them, then a note of what was
/// dropped, if anything was.
fn lines(kept: &[u8], dropped_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut dropped_lines = 0;
    if !kept.is_empty() {
        let text = kept.strip_suffix(b"\n").unwrap_or(kept);
        for line in text.split(|&b| b == b'\n') {
            if out.len() == CALL_LINES {
                dropped_lines += 1;
                continue;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let shown = &line[..line.len().min(LINE_BYTES)];
            let mut logged = String::from_utf8_lossy(shown).into_owned();
            if line.len() > LINE_BYTES {
                logged.push_str(&format!(
                    " [line cut: {} more bytes]",
                    line.len() - LINE_BYTES
                ));
            }
            out.push(logged);
        }
    }
    if dropped_lines > 0 || dropped_bytes > 0 {
        out.push(format!(
            "[output truncated: {dropped_lines} more lines and {dropped_bytes} more bytes \
             dropped; a call keeps {CALL_LINES} lines and {} KiB per stream]",
            CALL_BYTES / 1024,
        ));
    }
    out
}

/// stderr is what a runtime writes an uncaught error or a panic to, so it
/// is logged as a warning; stdout as information.
fn emit(plugin: &str, stream: Stream, line: &str) {
    let stream = stream.name();
    match stream {
        "stderr" => tracing::warn!(plugin, stream, "{line}"),
        _ => tracing::info!(plugin, stream, "{line}"),
    }
}

impl IsTerminal for Pipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Pipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    /// The WASIp3 view; this host links WASIp2 only, but the trait asks
    /// for both and they write the same buffer.
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for Pipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for Pipe {
    /// Always ready: a write only appends to memory.
    async fn ready(&mut self) {}
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_one_log_line_and_the_last_needs_no_newline() {
        assert_eq!(lines(b"a\r\nb\n\nc", 0), ["a", "b", "", "c"]);
        assert_eq!(lines(b"one\n", 0), ["one"]);
        assert!(lines(b"", 0).is_empty());
        assert_eq!(lines(b"\n", 0), [""]);
    }

    #[test]
    fn a_long_line_is_cut_and_says_so() {
        let long = vec![b'x'; LINE_BYTES + 10];
        let out = lines(&long, 0);
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with(&"x".repeat(LINE_BYTES)));
        assert!(out[0].ends_with("[line cut: 10 more bytes]"), "{}", out[0]);
    }

    #[test]
    fn lines_and_bytes_past_the_call_bounds_are_counted() {
        let many = "l\n".repeat(CALL_LINES + 5);
        let out = lines(many.as_bytes(), 7);
        assert_eq!(out.len(), CALL_LINES + 1);
        let last = out.last().unwrap();
        assert!(
            last.contains("5 more lines and 7 more bytes dropped"),
            "{last}"
        );
    }

    #[test]
    fn a_pipe_keeps_at_most_the_call_bound_and_flush_empties_it() {
        let output = Output::default();
        let pipe = output.pipe(Stream::Stderr);
        pipe.append(&vec![b'y'; CALL_BYTES - 1]);
        pipe.append(b"abc");
        {
            let captured = output.0.stderr.lock();
            assert_eq!(captured.kept.len(), CALL_BYTES);
            assert_eq!(captured.dropped, 2);
        }
        output.flush(&Arc::from("unit"));
        assert!(output.0.stderr.lock().kept.is_empty());
        assert!(!output.0.written.load(Relaxed));
    }
}
