//! Framing of protocol messages, and the typed view of the few messages pgward inspects.
//!
//! A `Frame` is one whole message as it arrived (tag, length, body). In the relay, frames
//! are views into the reader's buffer (`FrameRef`, no allocation, no reference count) and
//! the writer copies each into the one output buffer it keeps, so a pass-through message is
//! never decoded or re-encoded, and a round trip of small messages costs a few short
//! copies (the TLS layer copies them once more into its record anyway). The startup
//! phase reads owned frames (`read_frame`) it may keep. Only the reader and writer touch
//! the stream: the session never writes raw bytes past them.

use std::io::BufRead;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use pgwire::messages::{copy, extendedquery, response, simplequery, startup, terminate, Message};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use crate::error::SessionError;
use pgward_policy::Permit;
use pgwire::messages::extendedquery::Parse;
use pgwire::messages::simplequery::Query;

/// pgwire's codec has no FunctionCall ('F', the fastpath interface pgjdbc uses for large
/// objects); this is the one place its type byte is named.
pub const MESSAGE_TYPE_BYTE_FUNCTION_CALL: u8 = b'F';

const READ_CHUNK: usize = 16 * 1024;

/// At most this much is reserved ahead for a frame whose header has arrived: a peer that
/// announces a 64 MiB message and sends 5 bytes must not make pgward allocate 64 MiB.
/// Larger frames grow the buffer as their bytes arrive.
const MAX_RESERVE_AHEAD: usize = 1024 * 1024;

/// The output buffer a writer keeps between flushes, up to this capacity; one that grew
/// past it for a large message is let go after the flush.
const MAX_RETAINED_OUT: usize = 16 * 1024;

/// One whole protocol message: `tag`, `len` (4 bytes, counting itself), body. Owned
/// (`Frame`, the default) or a view into a reader's buffer (`FrameRef`). The reader only
/// makes frames of at least 5 bytes, so `tag` and `body` never index out of range.
#[derive(Debug)]
pub struct Frame<B = BytesMut> {
    bytes: B,
}

/// A frame borrowed from the reader's buffer until the next read.
pub type FrameRef<'a> = Frame<&'a [u8]>;

impl<B: AsRef<[u8]>> Frame<B> {
    pub fn tag(&self) -> u8 {
        self.bytes.as_ref()[0]
    }

    /// The message body after the tag and length.
    pub fn body(&self) -> &[u8] {
        &self.bytes.as_ref()[5..]
    }

    /// The kind of a message a client sent.
    pub fn frontend(&self) -> Frontend {
        match self.tag() {
            simplequery::MESSAGE_TYPE_BYTE_QUERY => Frontend::Query,
            extendedquery::MESSAGE_TYPE_BYTE_PARSE => Frontend::Parse,
            extendedquery::MESSAGE_TYPE_BYTE_BIND => Frontend::Bind,
            extendedquery::MESSAGE_TYPE_BYTE_EXECUTE => Frontend::Execute,
            extendedquery::MESSAGE_TYPE_BYTE_DESCRIBE => Frontend::Describe,
            extendedquery::MESSAGE_TYPE_BYTE_CLOSE => Frontend::Close,
            extendedquery::MESSAGE_TYPE_BYTE_SYNC => Frontend::Sync,
            extendedquery::MESSAGE_TYPE_BYTE_FLUSH => Frontend::Flush,
            MESSAGE_TYPE_BYTE_FUNCTION_CALL => Frontend::FunctionCall,
            copy::MESSAGE_TYPE_BYTE_COPY_DATA => Frontend::CopyData,
            copy::MESSAGE_TYPE_BYTE_COPY_DONE => Frontend::CopyDone,
            copy::MESSAGE_TYPE_BYTE_COPY_FAIL => Frontend::CopyFail,
            terminate::MESSAGE_TYPE_BYTE_TERMINATE => Frontend::Terminate,
            startup::MESSAGE_TYPE_BYTE_PASSWORD_MESSAGE_FAMILY => Frontend::Password,
            other => Frontend::Unknown(other),
        }
    }

    /// The kind of a message the upstream sent.
    pub fn backend(&self) -> Backend {
        match self.tag() {
            response::MESSAGE_TYPE_BYTE_READY_FOR_QUERY => Backend::ReadyForQuery,
            response::MESSAGE_TYPE_BYTE_ERROR_RESPONSE => Backend::ErrorResponse,
            response::MESSAGE_TYPE_BYTE_COMMAND_COMPLETE => Backend::CommandComplete,
            response::MESSAGE_TYPE_BYTE_NOTICE_RESPONSE => Backend::NoticeResponse,
            response::MESSAGE_TYPE_BYTE_EMPTY_QUERY_RESPONSE => Backend::EmptyQueryResponse,
            extendedquery::MESSAGE_TYPE_BYTE_PORTAL_SUSPENDED => Backend::PortalSuspended,
            startup::MESSAGE_TYPE_BYTE_PARAMETER_STATUS => Backend::ParameterStatus,
            startup::MESSAGE_TYPE_BYTE_BACKEND_KEY_DATA => Backend::BackendKeyData,
            startup::MESSAGE_TYPE_BYTE_AUTHENTICATION => Backend::Authentication,
            startup::MESSAGE_TYPE_BYTE_NEGOTIATE_PROTOCOL_VERSION => {
                Backend::NegotiateProtocolVersion
            }
            _ => Backend::PassThrough,
        }
    }
}

/// Messages from a client, by kind. Pass-through kinds are never decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    Query,
    Parse,
    Bind,
    Execute,
    Describe,
    Close,
    Sync,
    Flush,
    FunctionCall,
    CopyData,
    CopyDone,
    CopyFail,
    Terminate,
    Password,
    Unknown(u8),
}

/// Messages from the upstream, by kind; everything else (DataRow, RowDescription,
/// CopyData, NotificationResponse, ...) is `PassThrough`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    ReadyForQuery,
    ErrorResponse,
    CommandComplete,
    EmptyQueryResponse,
    PortalSuspended,
    NoticeResponse,
    ParameterStatus,
    BackendKeyData,
    Authentication,
    NegotiateProtocolVersion,
    PassThrough,
}

/// Reads frames from one side. Cancel-safe: `fill` only appends to the buffer, so a
/// `select!` that drops it loses nothing.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    /// Bytes at the front of `buf` already handed out as `FrameRef`s, dropped at the next
    /// read (a view must not outlive them; the borrow checker sees to that).
    consumed: usize,
    max_len: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        Self::with_buffer(inner, BytesMut::with_capacity(READ_CHUNK), max_len)
    }

    /// A reader that starts with bytes already read from the stream.
    pub fn with_buffer(inner: R, buf: BytesMut, max_len: usize) -> Self {
        Self {
            inner,
            buf,
            consumed: 0,
            max_len,
        }
    }

    /// Drops the bytes of the frames handed out as views.
    fn release(&mut self) {
        if self.consumed > 0 {
            if self.consumed >= self.buf.len() {
                // The usual case: every byte read was a whole frame. Keeps the capacity.
                self.buf.clear();
            } else {
                self.buf.advance(self.consumed);
            }
            self.consumed = 0;
        }
    }

    /// Reads more bytes from the stream. Returns `false` at end of stream.
    /// Cancel-safe (a dropped read appends nothing).
    pub async fn fill(&mut self) -> Result<bool, SessionError> {
        self.release();
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self.inner.read_buf(&mut self.buf).await?;
        Ok(n > 0)
    }

    /// The length (tag included) of the frame at the front of the unread bytes, once all
    /// of it has arrived. A length field that is negative, too small or over the cap is an error:
    /// the session ends.
    fn frame_len(&mut self) -> Result<Option<usize>, SessionError> {
        let rest = self.buf.get(self.consumed..).unwrap_or_default();
        let Some(header) = rest.get(..5) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l >= 4)
            .ok_or_else(|| SessionError::Protocol("invalid message length".into()))?;
        if len > self.max_len {
            return Err(SessionError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        let total = len + 1;
        if rest.len() < total {
            let missing = total - rest.len();
            // No view is alive (this borrows the reader mutably): the bytes before the
            // partial frame can go before the buffer grows for the rest of it.
            self.release();
            self.buf.reserve(missing.min(MAX_RESERVE_AHEAD));
            return Ok(None);
        }
        Ok(Some(total))
    }

    /// The next complete frame already buffered, if any, as a view into the buffer: valid
    /// until the next `fill`. The relay's way to read.
    pub fn next_frame_ref(&mut self) -> Result<Option<FrameRef<'_>>, SessionError> {
        let Some(total) = self.frame_len()? else {
            return Ok(None);
        };
        let start = self.consumed;
        self.consumed += total;
        Ok(self
            .buf
            .get(start..start + total)
            .map(|bytes| Frame { bytes }))
    }

    /// The next complete frame already buffered, if any, owned.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SessionError> {
        self.release();
        let Some(total) = self.frame_len()? else {
            return Ok(None);
        };
        Ok(Some(Frame {
            bytes: self.buf.split_to(total),
        }))
    }

    /// Waits for the next whole frame. `Ok(None)` at a clean end of stream.
    /// Cancel-safe: partial frames stay buffered.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, SessionError> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return if self.buf.len() <= self.consumed {
                    Ok(None)
                } else {
                    Err(SessionError::Protocol(
                        "connection closed mid-message".into(),
                    ))
                };
            }
        }
    }
}

/// Writes frames to one side, coalescing everything pushed until `flush` into one buffer
/// (one TLS record, one socket write per flush while it fits a record).
pub struct FrameWriter<W> {
    inner: W,
    out: BytesMut,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            out: BytesMut::new(),
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Queues a message that carries no statement (Bind, Execute, Sync, CopyData,
    /// and every backend message).
    pub fn push<B: AsRef<[u8]>>(&mut self, frame: Frame<B>) {
        self.append(frame.bytes.as_ref());
    }

    /// Queues a message that carries a statement or a function call. Only a
    /// `Permit` lets it through.
    pub fn push_statement<B: AsRef<[u8]>>(&mut self, frame: Frame<B>, _permit: &Permit) {
        self.append(frame.bytes.as_ref());
    }

    /// Queues, in place of a denied Query or FunctionCall, a Query that fails to parse
    /// upstream, so PostgreSQL's own state machine aborts the transaction and answers in
    /// order; its error is rewritten into the denial on the way back.
    pub fn push_denied_query(&mut self, marker: &str) -> Result<(), SessionError> {
        self.push_message(&Query::new(marker.to_owned()))
    }

    /// Queues, in place of a denied Parse, a Parse of the same statement name that fails
    /// upstream: everything up to the next Sync is then skipped by PostgreSQL itself.
    pub fn push_denied_parse(
        &mut self,
        name: Option<String>,
        marker: &str,
    ) -> Result<(), SessionError> {
        self.push_message(&Parse::new(name, marker.to_owned(), Vec::new()))
    }

    /// Queues a message pgward itself builds, encoded by pgwire.
    pub fn push_message<M: Message>(&mut self, message: &M) -> Result<(), SessionError> {
        let at = self.out.len();
        message.encode(&mut self.out).map_err(|e| {
            // Nothing half-encoded stays queued.
            self.out.truncate(at);
            SessionError::Protocol(format!("cannot encode message: {e}"))
        })
    }

    /// Queues a startup-phase packet without a tag byte (StartupMessage, SSLRequest,
    /// CancelRequest), built by the caller.
    pub fn push_untagged(&mut self, body: &[u8]) {
        self.out
            .put_i32(i32::try_from(body.len() + 4).unwrap_or(i32::MAX));
        self.out.put_slice(body);
    }

    /// Writes everything queued and flushes. Not cancel-safe: a dropped flush may
    /// have written part of the queue, so callers never race it in `select!`.
    pub async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.out.is_empty() {
            self.inner.write_all(&self.out).await?;
            if self.out.capacity() > MAX_RETAINED_OUT {
                self.out = BytesMut::new();
            } else {
                self.out.clear();
            }
        }
        self.inner.flush().await?;
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.inner.shutdown().await;
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Splits a stream into the halves the two directions of a session read and write
/// through. They run in one task, so the lock is never contended. Unlike
/// `tokio::io::split`, a read takes the TLS plaintext one socket read brought and does not
/// try the socket again when it is empty (see `ReadAvailable`).
pub fn split<S>(stream: S) -> (ReadHalf<S>, WriteHalf<S>) {
    let shared = Arc::new(Mutex::new(stream));
    (ReadHalf(shared.clone()), WriteHalf(shared))
}

/// The read half of a `split` stream.
pub struct ReadHalf<S>(Arc<Mutex<S>>);

/// The write half of a `split` stream.
pub struct WriteHalf<S>(Arc<Mutex<S>>);

fn lock<S>(shared: &Mutex<S>) -> std::io::Result<MutexGuard<'_, S>> {
    shared
        .lock()
        .map_err(|_| std::io::Error::other("stream lock poisoned"))
}

/// How a stream is read into a frame buffer.
pub trait ReadAvailable: AsyncRead + Unpin {
    /// Reads what is available. The default is `poll_read`.
    fn poll_read_available(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(self).poll_read(cx, buf)
    }
}

impl ReadAvailable for TcpStream {}

impl<L: ReadAvailable, R: ReadAvailable> ReadAvailable for Either<L, R> {
    fn poll_read_available(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self {
            Either::Left(l) => l.poll_read_available(cx, buf),
            Either::Right(r) => r.poll_read_available(cx, buf),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> ReadAvailable for tokio_rustls::server::TlsStream<IO> {
    fn poll_read_available(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        poll_tls_available(self, cx, buf, |s| s.get_mut().1.reader())
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> ReadAvailable for tokio_rustls::client::TlsStream<IO> {
    fn poll_read_available(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        poll_tls_available(self, cx, buf, |s| s.get_mut().1.reader())
    }
}

/// Reads a TLS stream: socket reads (only if no plaintext is buffered) until a record
/// decrypts, then every record already decrypted, as far as `buf` holds. tokio-rustls's
/// `poll_read` would try the socket once more, which after one read almost always only
/// finds it empty.
fn poll_tls_available<S: AsyncBufRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    plaintext: impl FnOnce(&mut S) -> rustls::Reader<'_>,
) -> Poll<std::io::Result<()>> {
    let data = ready!(Pin::new(&mut *stream).poll_fill_buf(cx))?;
    let n = data.len().min(buf.remaining());
    buf.put_slice(&data[..n]);
    Pin::new(&mut *stream).consume(n);
    let mut reader = plaintext(stream);
    while buf.remaining() > 0 {
        match reader.fill_buf() {
            Ok(more) if !more.is_empty() => {
                let n = more.len().min(buf.remaining());
                buf.put_slice(&more[..n]);
                reader.consume(n);
            }
            // Nothing decrypted left, end of stream or an error: the next read sees it.
            _ => break,
        }
    }
    Poll::Ready(Ok(()))
}

impl<S: ReadAvailable> AsyncRead for ReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        lock(&self.0)?.poll_read_available(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *lock(&self.0)?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *lock(&self.0)?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        lock(&self.0).is_ok_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *lock(&self.0)?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *lock(&self.0)?).poll_shutdown(cx)
    }
}

/// A bounds-checked reader over a message body: never panics on short input.
pub struct BodyReader<'a> {
    buf: &'a [u8],
}

impl<'a> BodyReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let end = memchr::memchr(0, self.buf)?;
        let (s, rest) = self.buf.split_at(end);
        self.buf = &rest[1..];
        Some(s)
    }

    pub fn i32(&mut self) -> Option<i32> {
        if self.buf.len() < 4 {
            return None;
        }
        let v = (&self.buf[..4]).get_i32();
        self.buf = &self.buf[4..];
        Some(v)
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (first, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(*first)
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (s, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(s)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The fields of an ErrorResponse/NoticeResponse body, decoded without panicking.
pub fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    let mut r = BodyReader::new(body);
    let mut fields = Vec::new();
    while let Some(code) = r.u8() {
        if code == 0 {
            break;
        }
        match r.cstr() {
            Some(v) => fields.push((code, String::from_utf8_lossy(v).into_owned())),
            None => break,
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn test_permit() -> Permit {
        let policy =
            pgward_policy::Policy::from_sources(&[("t.yaml", "roles:\n  r: {}\n")]).unwrap();
        policy.check("r", &[]).unwrap()
    }

    #[tokio::test]
    async fn frames_split_and_rejoin_without_loss() {
        let mut wire = BytesMut::new();
        for q in ["SELECT 1", "SELECT 2"] {
            wire.put_u8(b'Q');
            wire.put_i32(4 + q.len() as i32 + 1);
            wire.put_slice(q.as_bytes());
            wire.put_u8(0);
        }
        wire.put_u8(b'S');
        wire.put_i32(4);
        let original = wire.clone();
        let mut r = FrameReader::new(&original[..], 1 << 20);
        let mut kinds = vec![];
        let (tx, mut rx) = tokio::io::duplex(1024);
        let mut w = FrameWriter::new(tx);
        while let Some(f) = r.read_frame().await.unwrap() {
            kinds.push(f.frontend());
            w.push_statement(f, &test_permit());
        }
        w.flush().await.unwrap();
        drop(w);
        let mut got = vec![];
        rx.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, &original[..]);
        assert_eq!(
            kinds,
            vec![Frontend::Query, Frontend::Query, Frontend::Sync]
        );
    }

    /// The relay's way: frames as views, read as the bytes trickle in (a frame split over
    /// reads, several frames in one read), copied into the writer: the bytes come out as
    /// they went in.
    #[tokio::test]
    async fn frame_views_across_partial_reads_come_out_whole() {
        let mut wire = BytesMut::new();
        for i in 0..50u8 {
            let q = "SELECT x FROM t WHERE y = 'a fairly long literal' AND i = "
                .repeat(usize::from(i % 7));
            wire.put_u8(b'Q');
            wire.put_i32(4 + q.len() as i32 + 2);
            wire.put_slice(q.as_bytes());
            wire.put_u8(i);
            wire.put_u8(0);
        }
        wire.put_u8(b'S');
        wire.put_i32(4);
        let original = wire.freeze();
        let (mut feed, source) = tokio::io::duplex(64);
        let sent = original.clone();
        let feeder = tokio::spawn(async move {
            for chunk in sent.chunks(37) {
                feed.write_all(chunk).await.unwrap();
            }
        });
        let mut r = FrameReader::new(source, 1 << 20);
        let (tx, mut rx) = tokio::io::duplex(1 << 20);
        let mut w = FrameWriter::new(tx);
        let mut frames = 0;
        while r.fill().await.unwrap() {
            while let Some(f) = r.next_frame_ref().unwrap() {
                assert!(matches!(f.frontend(), Frontend::Query | Frontend::Sync));
                w.push(f);
                frames += 1;
            }
            w.flush().await.unwrap();
        }
        feeder.await.unwrap();
        drop(w);
        let mut got = vec![];
        rx.read_to_end(&mut got).await.unwrap();
        assert_eq!(frames, 51);
        assert_eq!(got, &original[..]);
    }

    /// The writer keeps its buffer for the next round trip, unless a large message grew it.
    #[tokio::test]
    async fn the_writer_keeps_a_small_buffer_and_drops_a_large_one() {
        let (tx, _rx) = tokio::io::duplex(1 << 20);
        let mut w = FrameWriter::new(tx);
        w.push_untagged(&[0; 100]);
        w.flush().await.unwrap();
        assert!(
            w.out.is_empty() && w.out.capacity() >= 104,
            "{}",
            w.out.capacity()
        );
        w.push_untagged(&vec![0; 2 * MAX_RETAINED_OUT]);
        w.flush().await.unwrap();
        assert_eq!(w.out.capacity(), 0);
    }

    #[tokio::test]
    async fn oversized_and_negative_lengths_are_errors() {
        let mut big = BytesMut::new();
        big.put_u8(b'Q');
        big.put_i32(10_000);
        let mut r = FrameReader::new(&big[..], 1024);
        assert!(matches!(
            r.read_frame().await,
            Err(SessionError::TooLarge { .. })
        ));
        let mut neg = BytesMut::new();
        neg.put_u8(b'Q');
        neg.put_i32(-5);
        let mut r = FrameReader::new(&neg[..], 1024);
        assert!(matches!(
            r.read_frame().await,
            Err(SessionError::Protocol(_))
        ));
    }

    #[tokio::test]
    async fn an_announced_length_does_not_allocate_ahead() {
        let mut head = BytesMut::new();
        head.put_u8(b'Q');
        head.put_i32(60 * 1024 * 1024);
        let mut r = FrameReader::new(&head[..], 64 * 1024 * 1024);
        assert!(r.fill().await.unwrap());
        assert!(r.next_frame().unwrap().is_none());
        assert!(
            r.buf.capacity() <= 2 * MAX_RESERVE_AHEAD,
            "{}",
            r.buf.capacity()
        );
    }

    #[test]
    fn body_reader_never_panics_on_short_input() {
        let mut r = BodyReader::new(b"abc");
        assert_eq!(r.cstr(), None);
        assert_eq!(r.i32(), None);
        assert_eq!(r.bytes(10), None);
        assert_eq!(error_fields(b"Sabc"), vec![]);
        assert_eq!(
            error_fields(b"SERROR\0C42501\0\0"),
            vec![(b'S', "ERROR".into()), (b'C', "42501".into())]
        );
    }
}
