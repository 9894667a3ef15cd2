//! A socket whose reads take everything the kernel holds at once, while
//! a connection keeps only a small read buffer for its life.
//!
//! tungstenite reads at most its read buffer's size at a time, and that
//! buffer is kept for the connection's life: at 1 KiB (the idle-memory
//! budget), a client's burst of a few kilobytes cost a `recvfrom` per
//! kilobyte. [`ReadAhead`] reads into a per-thread scratch buffer instead
//! and keeps what the reader did not take in a buffer of its own, which it
//! frees once that is read: a busy connection holds it between reads, an
//! idle one nothing.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most one read takes from the kernel: a window of 32 relayed
/// messages of a few hundred bytes each, with room to spare.
const READ_AHEAD: usize = 16 * 1024;

thread_local! {
    /// Where reads land before they are split between the reader and the
    /// spill; one per worker thread, since a read completes within one poll.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_AHEAD].into_boxed_slice());
}

/// `S` with reads of up to [`READ_AHEAD`] bytes whatever the caller's
/// buffer; writes pass through.
pub(crate) struct ReadAhead<S> {
    inner: S,
    /// Read from the socket, not yet by the caller; `None` when empty.
    spill: Option<Spill>,
}

/// Bytes read ahead: `bytes[at..]` is still to be read.
struct Spill {
    bytes: Box<[u8]>,
    at: usize,
}

impl<S> ReadAhead<S> {
    pub(crate) fn new(inner: S) -> ReadAhead<S> {
        ReadAhead { inner, spill: None }
    }

    /// Serves the caller from the spill, and frees it once emptied.
    fn read_spill(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let Some(spill) = &mut self.spill else {
            return false;
        };
        let rest = &spill.bytes[spill.at..];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        spill.at += n;
        if spill.at == spill.bytes.len() {
            self.spill = None;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_spill(buf) {
            return Poll::Ready(Ok(()));
        }
        // Nothing to gain from the scratch buffer, and a read of nothing
        // must not take bytes off the socket.
        if buf.remaining() >= READ_AHEAD || buf.remaining() == 0 {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let read = read.filled();
            let n = read.len().min(buf.remaining());
            buf.put_slice(&read[..n]);
            if n < read.len() {
                this.spill = Some(Spill {
                    bytes: read[n..].into(),
                    at: 0,
                });
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;

    /// A stream that counts the reads it is asked for.
    struct Counted {
        inner: DuplexStream,
        reads: usize,
    }

    impl AsyncRead for Counted {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.reads += 1;
            Pin::new(&mut this.inner).poll_read(cx, buf)
        }
    }

    fn reader(capacity: usize) -> (DuplexStream, ReadAhead<Counted>) {
        let (client, server) = tokio::io::duplex(capacity);
        let server = Counted {
            inner: server,
            reads: 0,
        };
        (client, ReadAhead::new(server))
    }

    #[tokio::test]
    async fn small_reads_of_a_burst_take_it_from_the_socket_in_a_few_reads() {
        let (mut client, mut reader) = reader(4 * READ_AHEAD);
        let burst: Vec<u8> = (0..3 * READ_AHEAD / 2).map(|i| (i % 251) as u8).collect();
        client.write_all(&burst).await.unwrap();
        drop(client);
        let mut got = Vec::new();
        let mut chunk = [0; 1000];
        loop {
            let n = reader.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, burst, "every byte, in order");
        // Two reads for the burst, one for its end; 25 reads of 1,000
        // bytes without the read-ahead.
        assert_eq!(reader.inner.reads, 3);
        assert!(reader.spill.is_none(), "nothing is kept once read");
    }

    #[tokio::test]
    async fn a_read_as_large_as_the_read_ahead_goes_to_the_socket_directly() {
        let (mut client, mut reader) = reader(4 * READ_AHEAD);
        client.write_all(b"hello").await.unwrap();
        let mut big = vec![0; READ_AHEAD];
        assert_eq!(reader.read(&mut big).await.unwrap(), 5);
        assert_eq!(&big[..5], b"hello");
        assert!(reader.spill.is_none());
    }
}
