//! Idle upstream sessions kept between clients, as PgBouncer's session mode does: a
//! client that ends cleanly leaves its upstream session here once `DISCARD ALL` reset
//! it, and the next login with the very same upstream startup packet, over the TLS
//! config still in use, takes it instead of a new TCP + mutual-TLS handshake + fork.
//!
//! Never hands out a session whose reset did not answer exactly CommandComplete +
//! ReadyForQuery 'I', that fails its liveness probe, that was logged in with another
//! startup packet, or over a TLS config a reload has since replaced. The upstream's
//! cancel secret stays here with the connection; it never reaches a client.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pgwire::messages::extendedquery::Sync as SyncMessage;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus, READY_STATUS_IDLE};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::terminate::Terminate;
use pgwire::messages::Message;
use rustls::ClientConfig;
use tracing::debug;

use crate::config::PoolConfig;
use crate::deps::Deps;
use crate::error::SessionError;
use crate::frame::{Backend, BodyReader, Frame, FrameReader};
use crate::upstream::{Upstream, UpstreamConn};

/// How long `DISCARD ALL` may take before the session is dropped instead of pooled.
const RESET_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the liveness probe of a pooled session may take before a fresh connect.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A pooled session idle longer than this is probed with a round trip before reuse.
const PROBE_AFTER_IDLE: Duration = Duration::from_secs(10);
/// How long a discarded session gets to take its Terminate.
const TERMINATE_TIMEOUT: Duration = Duration::from_millis(500);
/// ParameterStatus names kept per session (PostgreSQL reports about fifteen).
const MAX_PARAMETERS: usize = 256;

/// What makes two logins interchangeable upstream: the exact startup packet pgward
/// sends (user, database, the client's parameters minus refused ones, the pinned
/// search_path) and the TLS client config (certificate) the connection was made with.
pub struct PoolKey {
    startup: Vec<u8>,
    /// Compared by identity: every reload that loads TLS files builds a new config, so a
    /// connection made with a rotated-out certificate never matches again. Holding the
    /// `Arc` keeps its address from being reused by a later config.
    tls: Arc<ClientConfig>,
}

impl PoolKey {
    pub fn new(startup: Vec<u8>, tls: Arc<ClientConfig>) -> Self {
        Self { startup, tls }
    }

    /// The upstream startup packet body.
    pub fn startup(&self) -> &[u8] {
        &self.startup
    }

    /// The TLS client config to connect with.
    pub fn tls(&self) -> Arc<ClientConfig> {
        self.tls.clone()
    }

    fn same_as(&self, other: &PoolKey) -> bool {
        Arc::ptr_eq(&self.tls, &other.tls) && self.startup == other.startup
    }
}

/// The ParameterStatus values an upstream session last reported, in the order it
/// first reported them: what a client taking the session over is told.
#[derive(Debug, Default, Clone)]
pub struct ReportedParameters(Vec<(String, String)>);

impl ReportedParameters {
    /// Takes note of a ParameterStatus frame; other frames are ignored.
    pub fn observe<B: AsRef<[u8]>>(&mut self, frame: &Frame<B>) {
        if frame.backend() != Backend::ParameterStatus {
            return;
        }
        let mut b = BodyReader::new(frame.body());
        if let (Some(name), Some(value)) = (b.cstr(), b.cstr()) {
            self.set(
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            );
        }
    }

    fn set(&mut self, name: String, value: String) {
        if let Some(entry) = self.0.iter_mut().find(|(n, _)| *n == name) {
            entry.1 = value;
        } else if self.0.len() < MAX_PARAMETERS {
            self.0.push((name, value));
        }
    }

    /// The values as ParameterStatus frames, as a fresh login would have sent them.
    fn frames(&self) -> Result<Vec<Frame>, SessionError> {
        let mut buf = BytesMut::new();
        for (name, value) in &self.0 {
            ParameterStatus::new(name.clone(), value.clone())
                .encode(&mut buf)
                .map_err(|e| SessionError::Protocol(format!("cannot encode message: {e}")))?;
        }
        let mut reader = FrameReader::with_buffer(tokio::io::empty(), buf, usize::MAX);
        let mut frames = Vec::with_capacity(self.0.len());
        while let Some(frame) = reader.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }
}

/// An upstream session between two clients.
pub struct Idle {
    pub conn: UpstreamConn,
    pub pid: i32,
    pub secret: i32,
    pub parameters: ReportedParameters,
}

struct Pooled {
    key: PoolKey,
    idle: Idle,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// Oldest first; a take scans from the newest.
    idle: Vec<Pooled>,
    /// A sweeper task is running (it stops when the pool is empty).
    sweeping: bool,
}

/// The idle upstream sessions of one pgward process, at most `max_idle` of them.
pub struct UpstreamPool {
    config: PoolConfig,
    state: Mutex<State>,
}

impl UpstreamPool {
    pub fn new(config: PoolConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::new(State::default()),
        })
    }

    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.idle.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most recently returned live session for `key`, checked with a Sync that must
    /// answer ReadyForQuery 'I'; a session that fails it is closed and the next tried.
    /// `None`: connect a new one. Not cancel-safe (a probe in flight is lost).
    pub async fn take(&self, key: &PoolKey) -> Option<Upstream> {
        if self.config.max_idle == 0 {
            return None;
        }
        loop {
            let (found, expired) = self.pop(key);
            close_all(expired);
            let (mut idle, since) = found?;
            match check(&mut idle, since).await {
                Ok(ready) => match idle.parameters.frames() {
                    Ok(startup_frames) => {
                        debug!(pid = idle.pid, "reusing an idle upstream session");
                        return Some(Upstream {
                            conn: idle.conn,
                            pid: idle.pid,
                            secret: idle.secret,
                            startup_frames,
                            ready,
                        });
                    }
                    Err(e) => debug!(pid = idle.pid, error = %e, "pooled session dropped"),
                },
                Err(e) => debug!(pid = idle.pid, error = %e, "pooled session failed its check"),
            }
            drop(idle);
        }
    }

    /// Removes and returns the newest entry for `key`, and every expired one.
    fn pop(&self, key: &PoolKey) -> (Option<(Idle, Instant)>, Vec<Idle>) {
        let Ok(mut state) = self.state.lock() else {
            return (None, Vec::new());
        };
        let expired = self.drain_expired(&mut state);
        let found = state
            .idle
            .iter()
            .rposition(|p| p.key.same_as(key))
            .map(|i| {
                let Pooled { idle, since, .. } = state.idle.remove(i);
                (idle, since)
            });
        (found, expired)
    }

    fn drain_expired(&self, state: &mut State) -> Vec<Idle> {
        let timeout = self.config.idle_timeout;
        let mut expired = Vec::new();
        let mut i = 0;
        while i < state.idle.len() {
            if state.idle[i].since.elapsed() >= timeout {
                expired.push(state.idle.remove(i).idle);
            } else {
                i += 1;
            }
        }
        expired
    }

    /// Returns a session whose client ended cleanly (Terminate, everything answered):
    /// resets it with `DISCARD ALL` and keeps it only if that answered CommandComplete +
    /// ReadyForQuery 'I' with no error, and no cancel for its pid is still on its way.
    /// Anything else, or a full pool's oldest entry, gets a Terminate. The client's
    /// cancel key must already be unregistered. Not cancel-safe.
    pub async fn give_back(
        self: &Arc<Self>,
        key: PoolKey,
        mut idle: Idle,
        deps: &Deps,
        shutting_down: bool,
    ) {
        // A reload replaced the TLS config meanwhile: nobody could take this one.
        let replaced = !Arc::ptr_eq(&key.tls, &deps.upstream_tls.load());
        if self.config.max_idle == 0 || shutting_down || replaced {
            terminate(idle).await;
            return;
        }
        match tokio::time::timeout(RESET_TIMEOUT, reset(&mut idle)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(pid = idle.pid, error = %e, "upstream session not reusable");
                terminate(idle).await;
                return;
            }
            Err(_) => {
                debug!(
                    pid = idle.pid,
                    "DISCARD ALL timed out: upstream session dropped"
                );
                terminate(idle).await;
                return;
            }
        }
        // A cancel looked up while the old client was still registered may arrive after
        // the next client took the session over: such a session is not kept.
        if deps.cancel.cancel_in_flight(idle.pid) {
            debug!(
                pid = idle.pid,
                "a cancel is on its way: upstream session dropped"
            );
            terminate(idle).await;
            return;
        }
        let (evicted, start_sweeper) = {
            let Ok(mut state) = self.state.lock() else {
                drop(idle);
                return;
            };
            let mut evicted = self.drain_expired(&mut state);
            while state.idle.len() >= self.config.max_idle {
                evicted.push(state.idle.remove(0).idle);
            }
            state.idle.push(Pooled {
                key,
                idle,
                since: Instant::now(),
            });
            let start = !state.sweeping;
            state.sweeping = true;
            (evicted, start)
        };
        close_all(evicted);
        if start_sweeper {
            tokio::spawn(sweep(Arc::downgrade(self), self.config.idle_timeout));
        }
    }

    /// Ends every idle session with a Terminate and waits for them (each at most
    /// `TERMINATE_TIMEOUT`, all at once): at shutdown, so that PostgreSQL sees a client
    /// that said goodbye, not a lost connection.
    pub async fn close(&self) {
        let mut ends = tokio::task::JoinSet::new();
        for idle in self.take_all() {
            ends.spawn(terminate(idle));
        }
        while ends.join_next().await.is_some() {}
    }

    /// Closes every idle session (a reload replaced the upstream TLS config).
    pub fn clear(&self) {
        close_all(self.take_all());
    }

    /// Empties the pool.
    fn take_all(&self) -> Vec<Idle> {
        match self.state.lock() {
            Ok(mut state) => std::mem::take(&mut state.idle)
                .into_iter()
                .map(|p| p.idle)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Closes idle sessions that expired while the pool is otherwise untouched; ends when
/// the pool is empty or gone.
async fn sweep(pool: Weak<UpstreamPool>, idle_timeout: Duration) {
    let every = (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let expired = match pool.state.lock() {
            Ok(mut state) => {
                let expired = pool.drain_expired(&mut state);
                if state.idle.is_empty() {
                    state.sweeping = false;
                    drop(state);
                    close_all(expired);
                    return;
                }
                expired
            }
            Err(_) => return,
        };
        close_all(expired);
    }
}

/// Sends `DISCARD ALL` and reads its answer, updating the reported parameters.
async fn reset(idle: &mut Idle) -> Result<(), SessionError> {
    let conn = &mut idle.conn;
    conn.w.push_message(&Query::new("DISCARD ALL".to_owned()))?;
    conn.w.flush().await?;
    let mut completed = false;
    loop {
        let frame = conn
            .r
            .read_frame()
            .await?
            .ok_or_else(|| SessionError::Upstream("closed during DISCARD ALL".into()))?;
        match frame.backend() {
            Backend::CommandComplete if !completed => completed = true,
            Backend::ParameterStatus => idle.parameters.observe(&frame),
            Backend::NoticeResponse => {}
            Backend::ReadyForQuery if completed && ready_idle(&frame) => {
                // Anything already behind it (a FATAL that came with it) is not left for
                // the next client: `check` only sees what arrives later.
                return match conn.r.next_frame()? {
                    None => Ok(()),
                    Some(f) => Err(SessionError::Upstream(format!(
                        "{:?} after DISCARD ALL",
                        f.backend()
                    ))),
                };
            }
            other => {
                return Err(SessionError::Upstream(format!(
                    "DISCARD ALL answered {other:?}"
                )))
            }
        }
    }
}

/// Whether a pooled session is still what it was when it was returned, and the
/// ReadyForQuery to give its next client. A session the server wrote to since (a FATAL
/// before closing it, a notice, the end of the stream) or that has been idle for
/// `PROBE_AFTER_IDLE` is asked with a Sync round trip (see `probe`); a quiet, recent one
/// is taken as it is, as PgBouncer does within `server_check_delay`.
async fn check(idle: &mut Idle, since: Instant) -> Result<Frame, SessionError> {
    if !has_input(&mut idle.conn) && since.elapsed() < PROBE_AFTER_IDLE {
        return ready_for_query();
    }
    tokio::time::timeout(PROBE_TIMEOUT, probe(idle))
        .await
        .map_err(|_| SessionError::Upstream("pooled session did not answer its probe".into()))?
}

/// Whether the upstream sent anything (or closed) since the session went idle: one
/// read attempt that does not wait. What it read stays buffered for `probe`.
fn has_input(conn: &mut UpstreamConn) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let fill = pin!(conn.r.fill());
    fill.poll(&mut cx).is_ready()
}

/// ReadyForQuery 'I', as the upstream itself would send it.
fn ready_for_query() -> Result<Frame, SessionError> {
    let mut buf = BytesMut::new();
    ReadyForQuery::new(TransactionStatus::Idle)
        .encode(&mut buf)
        .map_err(|e| SessionError::Protocol(format!("cannot encode message: {e}")))?;
    FrameReader::with_buffer(tokio::io::empty(), buf, usize::MAX)
        .next_frame()?
        .ok_or_else(|| SessionError::Protocol("cannot encode ReadyForQuery".into()))
}

/// Sends a Sync and waits for ReadyForQuery 'I', which it returns; anything else (an
/// error, a FATAL before a close, the end of the stream) fails.
async fn probe(idle: &mut Idle) -> Result<Frame, SessionError> {
    let conn = &mut idle.conn;
    conn.w.push_message(&SyncMessage::new())?;
    conn.w.flush().await?;
    loop {
        let frame = conn
            .r
            .read_frame()
            .await?
            .ok_or_else(|| SessionError::Upstream("pooled session closed".into()))?;
        match frame.backend() {
            Backend::ParameterStatus => idle.parameters.observe(&frame),
            Backend::NoticeResponse => {}
            Backend::ReadyForQuery if ready_idle(&frame) => return Ok(frame),
            other => return Err(SessionError::Upstream(format!("probe answered {other:?}"))),
        }
    }
}

fn ready_idle(frame: &Frame) -> bool {
    frame.body().first() == Some(&READY_STATUS_IDLE)
}

/// Ends an upstream session politely (Terminate), without waiting long for it.
async fn terminate(mut idle: Idle) {
    let w = &mut idle.conn.w;
    if w.push_message(&Terminate::new()).is_ok() {
        let _ = tokio::time::timeout(TERMINATE_TIMEOUT, w.flush()).await;
    }
}

/// Terminates sessions in the background (or just closes them outside a runtime).
fn close_all(sessions: Vec<Idle>) {
    if sessions.is_empty() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move {
                for idle in sessions {
                    terminate(idle).await;
                }
            });
        }
        Err(_) => drop(sessions),
    }
}
