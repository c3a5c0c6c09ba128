//! A byte budget on what a Redis server may send.
//!
//! Why: the redis crate buffers a whole reply before handing it over, and a
//! reply is whatever the server says it is. A 50 MB `INFO` took the exporter
//! above the shipped unit's `MemoryMax=128M`; an endless bulk string grew to
//! gigabytes within one scrape deadline. The crate has no size limit of its own
//! (it does not pre-allocate a declared `$<len>`, and caps array pre-allocation
//! at 4096 elements, but it keeps reading), so the limit sits under it: every
//! Redis connection the exporter opens reads through a [`CappedStream`].
//!
//! The budget is "bytes read since this connection last wrote": the exporter
//! writes one command batch and waits for its replies, so this is the size of
//! one batch's replies (the handshake, the feature probe, the scrape pipeline,
//! one `SCAN` step). Past the budget every read fails, the crate drops the
//! connection and the buffered bytes with it, and [`CapSignal`] tells the
//! owner why.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes one command batch's replies may take. `INFO ALL` on a busy
/// server with every command used and latency tracking on is a few hundred
/// KiB; a `CONFIG GET`, `SLOWLOG GET 1` or `SCAN` page is far smaller.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// The payload of the I/O error a connection fails with past its budget.
#[derive(Debug, thiserror::Error)]
#[error("reply exceeded {limit} bytes")]
pub struct ReplyTooLarge {
    pub limit: usize,
}

/// Shared with the connection's owner: set once the budget was exceeded.
#[derive(Debug, Clone, Default)]
pub struct CapSignal(Arc<AtomicBool>);

impl CapSignal {
    /// Whether the connection failed because a reply exceeded the budget.
    pub fn exceeded(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A stream whose reads fail once more than `limit` bytes arrived since the last write.
pub struct CappedStream<S> {
    inner: S,
    limit: usize,
    read_since_write: usize,
    signal: CapSignal,
}

impl<S> CappedStream<S> {
    pub fn new(inner: S, limit: usize) -> (Self, CapSignal) {
        let signal = CapSignal::default();
        (CappedStream { inner, limit, read_since_write: 0, signal: signal.clone() }, signal)
    }

    fn too_large(&self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, ReplyTooLarge { limit: self.limit })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CappedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.signal.exceeded() {
            return Poll::Ready(Err(self.too_large()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        self.read_since_write = self.read_since_write.saturating_add(n);
        if self.read_since_write > self.limit {
            // Hand nothing of this read to the parser: the reply is refused as a whole.
            buf.set_filled(before);
            self.signal.0.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(self.too_large()));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CappedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, data))?;
        if written > 0 {
            // A new command batch: its replies get a fresh budget.
            self.read_since_write = 0;
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_fail_past_the_budget_and_a_write_resets_it() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let (mut capped, signal) = CappedStream::new(client, 100);
        server.write_all(&[b'x'; 60]).await.expect("write");
        let mut buf = vec![0u8; 1024];
        assert_eq!(capped.read(&mut buf).await.expect("60 bytes fit"), 60);
        capped.write_all(b"PING\r\n").await.expect("write resets the budget");
        server.write_all(&[b'x'; 90]).await.expect("write");
        assert_eq!(capped.read(&mut buf).await.expect("90 bytes fit a fresh budget"), 90);
        server.write_all(&[b'x'; 20]).await.expect("write");
        let err = capped.read(&mut buf).await.expect_err("110 bytes since the last write");
        assert!(err.get_ref().is_some_and(|e| e.is::<ReplyTooLarge>()), "{err}");
        assert!(signal.exceeded());
        // Sticky: a write does not revive a connection that was refused.
        capped.write_all(b"PING\r\n").await.expect("write");
        assert!(capped.read(&mut buf).await.is_err());
    }
}
