//! Phase 4: the relay. Two directions run concurrently in one task; each reads what
//! is available, passes whole frames through without re-encoding, and writes them in
//! one batch, so a pipelined client costs one write per read. Backpressure is natural:
//! a direction does not read more until its last batch was written.
//!
//! Never forwards a Query, Parse or FunctionCall without a `Permit` from the gate; a
//! denied one is replaced by a stand-in that fails upstream (see `enforce`).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use std::borrow::Cow;
use std::collections::HashMap;

use pgward_policy::Mode;
use pgward_telemetry::{Decision, SessionInfo};
use pgwire::messages::terminate::Terminate;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::catalog::CatalogHandle;
use crate::conn::ClientConn;
use crate::deps::Deps;
use crate::encoding::ClientEncoding;
use crate::enforce::Denials;
use crate::error::SessionError;
use crate::frame::{
    Backend, BodyReader, Frame, FrameReader, FrameRef, FrameWriter, Frontend, ReadHalf, WriteHalf,
};
use crate::gate::{Decided, SessionMemo, SessionPolicy};
use crate::handshake::ClientIo;
use crate::observe::{audit_decision, decision_of, QueryTrace, Traced};
use crate::pinning::check_parameter_status;
use crate::pool::ReportedParameters;
use crate::upstream::{UpstreamConn, UpstreamIo};

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// The client sent Terminate or closed its connection.
    ClientClosed,
    /// The client sent Terminate with every sync point it sent answered and no
    /// extended-protocol message waiting for a Sync (so no COPY in progress either). The
    /// upstream was not sent Terminate: `pool::give_back` resets it with `DISCARD ALL`,
    /// which fails inside a transaction block, so a session left in one is never kept.
    Terminated,
    /// The upstream closed (after a FATAL, or a server shutdown).
    UpstreamClosed,
    /// pgward is shutting down and the drain period is over.
    Shutdown,
    /// A pinned setting changed upstream; the session was ended.
    PinBroken,
    /// The client sent nothing for `limits.idle_session_timeout_ms`.
    IdleTimeout,
}

impl RelayEnd {
    pub fn as_str(&self) -> &'static str {
        match self {
            RelayEnd::ClientClosed | RelayEnd::Terminated => "client_closed",
            RelayEnd::UpstreamClosed => "upstream_closed",
            RelayEnd::Shutdown => "shutdown",
            RelayEnd::PinBroken => "pin_broken",
            RelayEnd::IdleTimeout => "idle_timeout",
        }
    }
}

/// What one session decides with, shared by both directions.
pub struct SessionCtx {
    pub policy: SessionPolicy,
    pub database: String,
    pub catalog: CatalogHandle,
    /// `None` once the client switched to an encoding pgward cannot decode: every
    /// statement is then denied.
    pub encoding: Mutex<Option<ClientEncoding>>,
    pub denials: Denials,
    /// ReadyForQuery messages the client was sent since the relay started.
    pub syncs_done: AtomicU64,
    /// A catalog reload this session's own DDL started: its next statement waits for
    /// it, so a migration can use the table it just created. Other sessions never wait.
    pub pending_refresh: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub session_span: tracing::Span,
    pub info: SessionInfo,
    pub trace: QueryTrace,
    /// What the upstream last reported in ParameterStatus, for the client a pooled
    /// session goes to next.
    pub parameters: Mutex<ReportedParameters>,
}

/// How long a session waits for the refresh its own DDL started.
const DDL_REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl SessionCtx {
    pub fn new(
        policy: SessionPolicy,
        database: String,
        catalog: CatalogHandle,
        session_span: tracing::Span,
        info: SessionInfo,
    ) -> Self {
        Self {
            session_span,
            info,
            trace: QueryTrace::default(),
            policy,
            database,
            catalog,
            encoding: Mutex::new(Some(ClientEncoding::Utf8)),
            denials: Denials::new(),
            syncs_done: AtomicU64::new(0),
            pending_refresh: Mutex::new(None),
            parameters: Mutex::new(ReportedParameters::default()),
        }
    }

    /// Takes note of a ParameterStatus sent during startup.
    pub fn observe_startup_parameter(&self, frame: &Frame) {
        if frame.backend() != Backend::ParameterStatus {
            return;
        }
        if let Ok(mut reported) = self.parameters.lock() {
            reported.observe(frame);
        }
        let mut b = BodyReader::new(frame.body());
        if let (Some(name), Some(value)) = (b.cstr(), b.cstr()) {
            if name == b"client_encoding" {
                if let Ok(mut current) = self.encoding.lock() {
                    *current = ClientEncoding::from_pg_name(&String::from_utf8_lossy(value));
                }
            }
        }
    }

    fn encoding(&self) -> Option<ClientEncoding> {
        self.encoding.lock().ok().and_then(|e| *e)
    }
}

/// Relays until one side ends.
#[tracing::instrument(name = "pgward.relay", level = "debug", skip_all)]
pub async fn relay(
    client: &mut ClientConn,
    upstream: &mut UpstreamConn,
    deps: &Arc<Deps>,
    ctx: &SessionCtx,
    shutdown: &CancellationToken,
) -> Result<RelayEnd, SessionError> {
    let UpstreamConn { r, w } = upstream;
    let ClientConn {
        r: client_r,
        w: client_w,
    } = client;
    let to_upstream = pin!(client_to_upstream(client_r, w, deps, ctx));
    let to_client = pin!(upstream_to_client(r, client_w, deps, ctx));
    let drained = pin!(async {
        shutdown.cancelled().await;
        Ok(RelayEnd::Shutdown)
    });
    FirstOf::new([to_upstream, to_client, drained]).await
}

/// The first of several futures to finish, polling only those that were woken since
/// they last returned `Pending` (all at first). `select!` polls every branch whenever
/// the task wakes, so each read on one side would also poll the other side's TLS stream
/// and socket, and the shutdown token, for nothing.
struct FirstOf<'a, T, const N: usize> {
    futures: [Pin<&'a mut (dyn Future<Output = T> + Send + 'a)>; N],
    flags: Arc<WakeFlags>,
    wakers: [Waker; N],
}

/// Which branches were woken, and the task to wake when one is.
struct WakeFlags {
    woken: AtomicUsize,
    task: Mutex<Option<Waker>>,
}

/// The waker a branch of `FirstOf` is polled with.
struct BranchWaker {
    flags: Arc<WakeFlags>,
    bit: usize,
}

impl Wake for BranchWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flags.woken.fetch_or(self.bit, Ordering::AcqRel);
        if let Ok(task) = self.flags.task.lock() {
            if let Some(task) = task.as_ref() {
                task.wake_by_ref();
            }
        }
    }
}

impl<'a, T, const N: usize> FirstOf<'a, T, N> {
    fn new(futures: [Pin<&'a mut (dyn Future<Output = T> + Send + 'a)>; N]) -> Self {
        let flags = Arc::new(WakeFlags {
            woken: AtomicUsize::new(usize::MAX),
            task: Mutex::new(None),
        });
        let wakers = std::array::from_fn(|i| {
            Waker::from(Arc::new(BranchWaker {
                flags: flags.clone(),
                bit: 1 << i,
            }))
        });
        Self {
            futures,
            flags,
            wakers,
        }
    }
}

impl<T, const N: usize> Future for FirstOf<'_, T, N> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        // The task's waker first, so a wake from here on is not lost.
        if let Ok(mut task) = this.flags.task.lock() {
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let woken = this.flags.woken.swap(0, Ordering::AcqRel);
        for (i, future) in this.futures.iter_mut().enumerate() {
            if woken & (1 << i) == 0 {
                continue;
            }
            let mut branch = Context::from_waker(&this.wakers[i]);
            if let Poll::Ready(out) = future.as_mut().poll(&mut branch) {
                return Poll::Ready(out);
            }
        }
        Poll::Pending
    }
}

/// Statement and portal names a client may keep; past this the maps are reset (they
/// only feed spans, never decisions).
const MAX_TRACKED_NAMES: usize = 10_000;

/// What each prepared statement (or portal) of a session was decided as, by name. The
/// unnamed one, which most clients use for every statement, has its own slot: no hashing.
/// A `Traced` shares its analysis (an `Arc`), so a Bind per execution copies no more
/// than a few words.
#[derive(Default)]
struct Names {
    unnamed: Option<Traced>,
    named: HashMap<Box<[u8]>, Traced>,
}

impl Names {
    fn get(&self, name: &[u8]) -> Option<&Traced> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    fn insert(&mut self, name: &[u8], traced: Traced) {
        if name.is_empty() {
            self.unnamed = Some(traced);
            return;
        }
        if self.named.len() >= MAX_TRACKED_NAMES {
            self.named.clear();
        }
        match self.named.get_mut(name) {
            Some(slot) => *slot = traced,
            None => {
                self.named.insert(Box::from(name), traced);
            }
        }
    }

    fn remove(&mut self, name: &[u8]) {
        if name.is_empty() {
            self.unnamed = None;
        } else {
            self.named.remove(name);
        }
    }
}

/// Client -> upstream. Statements go through the gate; everything else passes.
async fn client_to_upstream(
    client: &mut FrameReader<ReadHalf<ClientIo>>,
    upstream: &mut FrameWriter<WriteHalf<UpstreamIo>>,
    deps: &Deps,
    ctx: &SessionCtx,
) -> Result<RelayEnd, SessionError> {
    // Sync points (Query, Sync, FunctionCall) sent upstream: each gets one ReadyForQuery.
    let mut syncs_sent: u64 = 0;
    // Extended-protocol messages sent since the last sync point.
    let mut unsynced = false;
    // What each prepared statement and portal was decided as, for the Execute spans.
    let mut statements = Names::default();
    let mut portals = Names::default();
    let mut memo = SessionMemo::default();
    let limits = &deps.config.limits;
    let user_rate = limits
        .rate_of_user(&ctx.info.user)
        .map(|r| deps.rates.bucket(&ctx.info.user, r.per_second, r.burst));
    let role_rate = limits.rate_of_role(&ctx.policy.role).map(|r| {
        deps.role_rates
            .bucket(&ctx.policy.role, r.per_second, r.burst)
    });
    // A statement over the rate limit is refused (53400) the way a denial is: a stand-in
    // that fails upstream keeps the session's state consistent. The login's own bucket is
    // asked first, then the role's shared one.
    let over_rate = |sync_seq: u64| -> Option<String> {
        if user_rate.is_none() && role_rate.is_none() {
            return None;
        }
        let now = std::time::Instant::now();
        let (e, hint) = if let Some(b) = user_rate.as_ref().filter(|b| !b.try_take(now)) {
            (
                crate::limits::LimitError::StatementRate {
                    name: ctx.info.user.clone(),
                    per_second: b.per_second(),
                },
                "slow down, or ask for a higher limits.statements_per_second",
            )
        } else if let Some(b) = role_rate.as_ref().filter(|b| !b.try_take(now)) {
            (
                crate::limits::LimitError::RoleStatementRate {
                    role: ctx.policy.role.clone(),
                    per_second: b.per_second(),
                },
                "the role's sessions together are over limits.roles.<role>.statements_per_second",
            )
        } else {
            return None;
        };
        warn!(parent: &ctx.session_span, reason = %e, "statement refused: rate limit");
        let refused = Traced {
            statements: Arc::from(Vec::new()),
            index: 0,
            decision: Decision::Deny,
            reason: Some(e.client_message()),
            parse: None,
        };
        ctx.trace
            .start(&ctx.session_span, &ctx.database, None, &refused, sync_seq);
        Some(ctx.denials.register_error(
            e.sqlstate(),
            e.client_message(),
            hint.to_owned(),
            sync_seq,
        ))
    };
    loop {
        // Idle: everything sent was answered. Only then does the idle timeout run (a
        // client waiting for a long query is not idle).
        let idle = syncs_sent == ctx.syncs_done.load(Ordering::Acquire);
        let filled = match limits.idle_session_timeout.filter(|_| idle) {
            Some(limit) => match tokio::time::timeout(limit, client.fill()).await {
                Ok(filled) => filled?,
                Err(_) => {
                    let _ = upstream.push_message(&Terminate::new());
                    let _ = upstream.flush().await;
                    return Ok(RelayEnd::IdleTimeout);
                }
            },
            None => client.fill().await?,
        };
        if !filled {
            // The client vanished without Terminate: end the upstream session politely.
            let _ = upstream.push_message(&Terminate::new());
            let _ = upstream.flush().await;
            return Ok(RelayEnd::ClientClosed);
        }
        let pending = ctx.pending_refresh.lock().ok().and_then(|mut p| p.take());
        if let Some(refresh) = pending {
            let _ = tokio::time::timeout(DDL_REFRESH_WAIT, refresh).await;
        }
        let mut terminated = false;
        let mut reusable = false;
        while let Some(frame) = client.next_frame_ref()? {
            let kind = frame.frontend();
            unsynced = waits_for_sync(kind, unsynced);
            match kind {
                Frontend::Query => {
                    syncs_sent += 1;
                    if let Some(marker) = over_rate(syncs_sent) {
                        upstream.push_denied_query(&marker)?;
                        continue;
                    }
                    let sql = statement_text(Frontend::Query, frame.body());
                    let (decided, text) = decide_sql(deps, ctx, &mut memo, sql);
                    let traced = observe(deps, ctx, &decided);
                    let spans = decided.statements.len().max(1);
                    for i in 0..spans {
                        let t = Traced {
                            index: i,
                            ..traced.clone()
                        };
                        ctx.trace.start(
                            &ctx.session_span,
                            &ctx.database,
                            text.as_deref(),
                            &t,
                            syncs_sent,
                        );
                        if decided.result.is_err() {
                            break;
                        }
                    }
                    match decided.result {
                        Ok(permit) => upstream.push_statement(frame, &permit),
                        Err(denial) => {
                            let marker = ctx.denials.register(&denial, syncs_sent);
                            upstream.push_denied_query(&marker)?;
                        }
                    }
                }
                Frontend::Parse => {
                    let sql = statement_text(Frontend::Parse, frame.body());
                    let name = parse_name(frame.body());
                    let key = name.as_deref().unwrap_or_default().as_bytes();
                    if let Some(marker) = over_rate(syncs_sent + 1) {
                        statements.remove(key);
                        upstream.push_denied_parse(name, &marker)?;
                        continue;
                    }
                    let (decided, text) = decide_sql(deps, ctx, &mut memo, sql);
                    let traced = observe(deps, ctx, &decided);
                    match decided.result {
                        Ok(permit) => {
                            // A named statement gets a `pgward.parse` span its Executes link
                            // to. The unnamed one, which drivers parse again before each
                            // execution, does not: its query span carries the same decision.
                            let parse = name.is_some().then(|| {
                                ctx.trace
                                    .parse_span(&ctx.session_span, &ctx.database, &traced)
                            });
                            let traced = Traced { parse, ..traced };
                            statements.insert(key, traced);
                            upstream.push_statement(frame, &permit);
                        }
                        Err(denial) => {
                            statements.remove(key);
                            ctx.trace.start(
                                &ctx.session_span,
                                &ctx.database,
                                text.as_deref(),
                                &traced,
                                syncs_sent + 1,
                            );
                            let marker = ctx.denials.register(&denial, syncs_sent + 1);
                            upstream.push_denied_parse(name, &marker)?;
                        }
                    }
                }
                Frontend::Bind => {
                    let mut b = BodyReader::new(frame.body());
                    if let (Some(portal), Some(stmt)) = (b.cstr(), b.cstr()) {
                        match statements.get(stmt) {
                            Some(t) => portals.insert(portal, t.clone()),
                            None => portals.remove(portal),
                        }
                    }
                    upstream.push(frame);
                }
                Frontend::Execute => {
                    if let Some(portal) = BodyReader::new(frame.body()).cstr() {
                        if let Some(t) = portals.get(portal) {
                            ctx.trace.start(
                                &ctx.session_span,
                                &ctx.database,
                                None,
                                t,
                                syncs_sent + 1,
                            );
                        }
                    }
                    upstream.push(frame);
                }
                Frontend::FunctionCall => {
                    syncs_sent += 1;
                    if let Some(marker) = over_rate(syncs_sent) {
                        upstream.push_denied_query(&marker)?;
                        continue;
                    }
                    let oid = BodyReader::new(frame.body())
                        .i32()
                        .map(|v| u32::from_be_bytes(v.to_be_bytes()))
                        .ok_or_else(|| SessionError::Protocol("malformed FunctionCall".into()))?;
                    let catalog = ctx.catalog.current();
                    let decided =
                        deps.gate
                            .decide_function_call(&ctx.policy, catalog.as_deref(), oid);
                    let traced = observe(deps, ctx, &decided);
                    ctx.trace
                        .start(&ctx.session_span, &ctx.database, None, &traced, syncs_sent);
                    match decided.result {
                        Ok(permit) => upstream.push_statement(frame, &permit),
                        Err(denial) => {
                            let marker = ctx.denials.register(&denial, syncs_sent);
                            upstream.push_denied_query(&marker)?;
                        }
                    }
                }
                Frontend::Sync => {
                    syncs_sent += 1;
                    upstream.push(frame);
                }
                Frontend::Terminate => {
                    // Nothing in flight: the upstream session may outlive the client (see
                    // `RelayEnd::Terminated`); otherwise it ends with it.
                    reusable = !unsynced && syncs_sent == ctx.syncs_done.load(Ordering::Acquire);
                    if !reusable {
                        upstream.push(frame);
                    }
                    terminated = true;
                    break;
                }
                Frontend::Unknown(tag) => {
                    return Err(SessionError::Protocol(format!(
                        "invalid frontend message type {tag}"
                    )));
                }
                Frontend::Describe
                | Frontend::Close
                | Frontend::Flush
                | Frontend::CopyData
                | Frontend::CopyDone
                | Frontend::CopyFail
                | Frontend::Password => upstream.push(frame),
            }
        }
        upstream.flush().await?;
        if terminated {
            debug!(parent: &ctx.session_span, reusable, "client sent Terminate");
            return Ok(if reusable {
                RelayEnd::Terminated
            } else {
                RelayEnd::ClientClosed
            });
        }
    }
}

/// Whether extended-protocol messages wait for a Sync after a message of this kind: a
/// Query, Sync or FunctionCall ends them; COPY messages and Terminate change nothing
/// (a COPY is a sync point still unanswered); everything else is, or may be, one.
fn waits_for_sync(kind: Frontend, before: bool) -> bool {
    match kind {
        Frontend::Query | Frontend::Sync | Frontend::FunctionCall => false,
        Frontend::CopyData | Frontend::CopyDone | Frontend::CopyFail | Frontend::Terminate => {
            before
        }
        Frontend::Parse
        | Frontend::Bind
        | Frontend::Execute
        | Frontend::Describe
        | Frontend::Close
        | Frontend::Flush
        | Frontend::Password
        | Frontend::Unknown(_) => true,
    }
}

/// Decodes and decides the SQL of a Query or Parse; also returns the decoded text
/// (for a sqlcommenter traceparent), if it decoded — borrowed for UTF-8, not copied.
fn decide_sql<'a>(
    deps: &Deps,
    ctx: &SessionCtx,
    memo: &mut SessionMemo,
    sql: &'a [u8],
) -> (Decided, Option<Cow<'a, str>>) {
    let catalog = ctx.catalog.current();
    match ctx.encoding().and_then(|e| e.decode(sql)) {
        Some(text) => {
            let decided = deps
                .gate
                .decide_sql_in(memo, &ctx.policy, catalog.as_deref(), &text);
            (decided, Some(text))
        }
        None => {
            let denial = deps.gate.policy().deny_unanalysable(
                &ctx.policy.role,
                "the statement is not valid text in the session's client_encoding",
                0,
            );
            let decided = Decided {
                result: denial.audit_permit(),
                statements: Arc::from(Vec::new()),
            };
            (decided, None)
        }
    }
}

/// Logs and audits what the gate decided (no statement text in the log: it may hold
/// literal values; the audit line has the normalized text).
fn observe(deps: &Deps, ctx: &SessionCtx, decided: &Decided) -> Traced {
    let (decision, reason) = decision_of(&decided.result);
    match decision {
        Decision::Allow => {}
        Decision::WouldDeny => {
            info!(
                parent: &ctx.session_span,
                decision = "would_deny",
                reason = reason.as_deref().unwrap_or_default(),
                "audit mode: forwarded"
            )
        }
        Decision::Deny => {
            warn!(
                parent: &ctx.session_span,
                decision = "deny",
                reason = reason.as_deref().unwrap_or_default(),
                "statement denied"
            )
        }
    }
    audit_decision(
        deps.observe.audit.as_ref(),
        &ctx.info,
        &decided.statements,
        decision,
        reason.as_deref(),
    );
    Traced {
        statements: decided.statements.clone(),
        index: 0,
        decision,
        reason,
        parse: None,
    }
}

/// The SQL text of a Query (`query\0`) or Parse (`name\0query\0...`) body.
fn statement_text(kind: Frontend, body: &[u8]) -> &[u8] {
    let mut r = BodyReader::new(body);
    if kind == Frontend::Parse {
        let _ = r.cstr();
    }
    r.cstr().unwrap_or_default()
}

/// The statement name of a Parse body (`None` for the unnamed statement).
fn parse_name(body: &[u8]) -> Option<String> {
    BodyReader::new(body)
        .cstr()
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
}

/// Upstream -> client. Decodes nothing but the kinds pgward watches.
async fn upstream_to_client(
    upstream: &mut FrameReader<ReadHalf<UpstreamIo>>,
    client: &mut FrameWriter<WriteHalf<ClientIo>>,
    deps: &Deps,
    ctx: &SessionCtx,
) -> Result<RelayEnd, SessionError> {
    loop {
        if !upstream.fill().await? {
            client.flush().await?;
            return Ok(RelayEnd::UpstreamClosed);
        }
        while let Some(frame) = upstream.next_frame_ref()? {
            match frame.backend() {
                Backend::ErrorResponse => match ctx.denials.rewrite(frame.body()) {
                    Some(denied) => {
                        ctx.trace
                            .complete(&deps.observe.metrics, None, Some("42501"));
                        client.push_message(&denied)?
                    }
                    None => {
                        let code = crate::frame::error_fields(frame.body())
                            .into_iter()
                            .find(|(c, _)| *c == b'C')
                            .map(|(_, v)| v);
                        ctx.trace
                            .complete(&deps.observe.metrics, None, code.as_deref());
                        client.push(frame)
                    }
                },
                Backend::ReadyForQuery => {
                    let seq = ctx.syncs_done.fetch_add(1, Ordering::AcqRel) + 1;
                    ctx.denials.sync_completed(seq);
                    ctx.trace.sync(&deps.observe.metrics, seq);
                    client.push(frame);
                }
                Backend::EmptyQueryResponse | Backend::PortalSuspended => {
                    ctx.trace.complete(&deps.observe.metrics, None, None);
                    client.push(frame);
                }
                Backend::CommandComplete => {
                    ctx.trace
                        .complete(&deps.observe.metrics, Some(frame.body()), None);
                    if is_ddl_tag(frame.body()) {
                        let refresh = deps.catalogs.refresh_in_background(&ctx.database);
                        if let Ok(mut p) = ctx.pending_refresh.lock() {
                            *p = Some(refresh);
                        }
                    }
                    client.push(frame);
                }
                Backend::ParameterStatus => {
                    if let Some(end) = watch_parameter(deps, ctx, &frame) {
                        client.flush().await?;
                        return Ok(end);
                    }
                    client.push(frame);
                }
                Backend::NoticeResponse | Backend::PassThrough => client.push(frame),
                Backend::BackendKeyData
                | Backend::Authentication
                | Backend::NegotiateProtocolVersion => {
                    // Only valid during startup; the upstream's secret must never
                    // reach the client.
                    return Err(SessionError::Upstream(format!(
                        "unexpected {:?} after startup",
                        frame.backend()
                    )));
                }
            }
        }
        client.flush().await?;
    }
}

/// CommandComplete tags of statements that change the catalog.
fn is_ddl_tag(body: &[u8]) -> bool {
    const DDL: [&[u8]; 6] = [
        b"CREATE", b"ALTER", b"DROP", b"COMMENT", b"GRANT", b"REVOKE",
    ];
    DDL.iter().any(|p| body.starts_with(p))
}

/// Tracks client_encoding and ends the session if a pinned value changed.
fn watch_parameter(deps: &Deps, ctx: &SessionCtx, frame: &FrameRef<'_>) -> Option<RelayEnd> {
    if let Ok(mut reported) = ctx.parameters.lock() {
        reported.observe(frame);
    }
    let mut b = BodyReader::new(frame.body());
    let name = String::from_utf8_lossy(b.cstr()?).into_owned();
    let value = String::from_utf8_lossy(b.cstr()?).into_owned();
    if name == "client_encoding" {
        if let Ok(mut current) = ctx.encoding.lock() {
            *current = ClientEncoding::from_pg_name(&value);
        }
    }
    let broken = check_parameter_status(&name, &value)?;
    let audit = deps.gate.policy().mode(&ctx.policy.role) == Some(Mode::Audit);
    if audit {
        info!(
            parent: &ctx.session_span,
            decision = "would_deny",
            reason = %broken,
            "audit mode: pinned setting changed"
        );
        None
    } else {
        warn!(
            parent: &ctx.session_span,
            reason = %broken,
            "pinned setting changed upstream: ending the session"
        );
        Some(RelayEnd::PinBroken)
    }
}
