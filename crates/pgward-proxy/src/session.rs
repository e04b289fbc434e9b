//! One client session, phase by phase: handshake -> authenticate -> connect_upstream
//! -> relay. Errors end the session only; what the client sees of them goes through
//! `UserFacing`, the full reason goes to the log under a reference id.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use pgwire::messages::startup::{Authentication, BackendKeyData, SecretKey};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::{authenticate, Authenticated};
use crate::cancel::forward_cancel;
use crate::conn::ClientConn;
use crate::deps::Deps;
use crate::error::{SessionError, UserFacing};
use crate::gate::SessionPolicy;
use crate::handshake::{handshake, Handshake, TlsInfo};
use crate::pinning::{check_startup, pinned_params};
use crate::pool::Idle;
use crate::relay::{relay, RelayEnd, SessionCtx};
use crate::startup::StartupPacket;
use crate::upstream::{connect_upstream, pool_key, Upstream};
use pgward_telemetry::{fields, SessionInfo};

/// Runs one connection to its end. Never panics on client input; never returns an
/// error (it is logged and, where allowed, shown to the client).
pub async fn run_session(
    tcp: TcpStream,
    peer: SocketAddr,
    deps: Arc<Deps>,
    shutdown: CancellationToken,
) {
    let span = pgward_telemetry::session_span(peer);
    let relaying = Arc::new(AtomicBool::new(false));
    let session_span = span.clone();
    let flag = relaying.clone();
    let inner = async move {
        let span = session_span;
        let _ = tcp.set_nodelay(true);
        let outcome = session(tcp, peer, &deps, &shutdown, &flag).await;
        match outcome {
            Ok(end) => {
                span.record(fields::OUTCOME, end.as_str());
            }
            Err(e) => {
                span.record(fields::OUTCOME, e.kind().as_str());
                if let SessionError::Auth { sqlstate, .. } = &e {
                    deps.observe
                        .metrics
                        .auth_failure(auth_failure_label(sqlstate));
                } else if let SessionError::AuthTimeout = &e {
                    deps.observe.metrics.auth_failure("timeout");
                }
                log_session_error(&e);
            }
        }
    };
    SessionFuture {
        span,
        relaying,
        inner: Box::pin(inner),
    }
    .await
}

/// A session's future, in its `pgward.session` span — except while it relays. A relaying
/// session is polled for every message each way, and entering a span costs each layer of
/// the subscriber a registry lookup per poll: with export on, about as much as the rest of
/// a statement's telemetry. What the relay logs names the session span as its parent.
struct SessionFuture<F> {
    span: tracing::Span,
    /// Set by the session around its relay phase.
    relaying: Arc<AtomicBool>,
    inner: Pin<Box<F>>,
}

impl<F: Future<Output = ()>> Future for SessionFuture<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.relaying.load(Ordering::Relaxed) {
            this.inner.as_mut().poll(cx)
        } else {
            let _entered = this.span.enter();
            this.inner.as_mut().poll(cx)
        }
    }
}

/// The `reason` label of the auth-failure metric (a fixed set, never client text).
fn auth_failure_label(sqlstate: &str) -> &'static str {
    match sqlstate {
        "28P01" => "password",
        "42501" => "startup_setting",
        _ => "rejected",
    }
}

fn reference_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn log_session_error(e: &SessionError) {
    match e {
        SessionError::Auth { reason, .. } => warn!(%reason, "authentication failed"),
        SessionError::Io(err) => info!(error = %err, "session ended by i/o error"),
        other => warn!(error = %other, kind = other.kind().as_str(), "session ended with an error"),
    }
}

async fn session(
    tcp: TcpStream,
    peer: SocketAddr,
    deps: &Arc<Deps>,
    shutdown: &CancellationToken,
    relaying: &AtomicBool,
) -> Result<RelayEnd, SessionError> {
    let limits = &deps.config.limits;
    // Handshake and client authentication share one deadline.
    let started = tokio::time::timeout(limits.auth_timeout, handshake(tcp, deps)).await;
    let (stream, startup, tls) = match started {
        Err(_) => return Err(SessionError::AuthTimeout),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Handshake::Closed)) => return Ok(RelayEnd::ClientClosed),
        Ok(Ok(Handshake::Cancel { pid, secret })) => {
            forward_cancel(deps, pid, secret).await;
            return Ok(RelayEnd::ClientClosed);
        }
        Ok(Ok(Handshake::Startup {
            stream,
            startup,
            tls,
        })) => (stream, startup, tls),
    };
    let span = tracing::Span::current();
    if let Some(p) = &tls.protocol {
        span.record(fields::TLS_PROTOCOL_VERSION, p.as_str());
    }
    let mut client = ClientConn::new(*stream, limits.max_message_bytes);
    let result =
        authenticated_session(&mut client, &startup, peer, &tls, deps, shutdown, relaying).await;
    if let Err(e) = &result {
        let reference = reference_id();
        if let Some(shown) = e.to_client(&reference) {
            client.send_fatal(shown.sqlstate, &shown.message).await;
        }
        if matches!(e, SessionError::Upstream(_)) {
            warn!(reference = %reference, error = %e, "upstream connection failed");
        }
    }
    if let Ok(RelayEnd::Shutdown) = &result {
        client
            .send_fatal(
                "57P01",
                "terminating connection due to administrator command",
            )
            .await;
    }
    client.w.shutdown().await;
    result
}

async fn authenticated_session(
    client: &mut ClientConn,
    startup: &StartupPacket,
    peer: SocketAddr,
    tls: &TlsInfo,
    deps: &Arc<Deps>,
    shutdown: &CancellationToken,
    relaying: &AtomicBool,
) -> Result<RelayEnd, SessionError> {
    let auth: Authenticated = tokio::time::timeout(
        deps.config.limits.auth_timeout,
        authenticate(client, startup, peer, tls, deps),
    )
    .await
    .map_err(|_| SessionError::AuthTimeout)??;
    let span = tracing::Span::current();
    span.record(fields::DB_USER, auth.user.as_str());
    span.record(fields::ROLE, auth.role.as_str());
    span.record(fields::DB_NAMESPACE, auth.database.as_str());
    span.record(fields::AUTH_METHOD, auth.method.as_str());
    info!("client authenticated");

    check_startup(startup)?;
    let limits = &deps.config.limits;
    // Before AuthenticationOk (the upstream's, relayed below): the role is only known now
    // for a JWT login, so the role's allowlist is checked here for every method.
    if !limits.role_source_allowed(&auth.role, peer.ip()) {
        return Err(SessionError::Auth {
            sqlstate: "28000",
            client: format!(
                "no access rule for host \"{}\", user \"{}\", database \"{}\"",
                peer.ip(),
                auth.user,
                auth.database
            ),
            reason: format!("client address not in limits.roles.{}.source", auth.role),
        });
    }
    let session_permit = deps
        .sessions
        .try_acquire(
            &auth.user,
            &auth.role,
            limits.max_sessions_of_user(&auth.user),
            limits.max_sessions_of_role(&auth.role),
        )
        .map_err(|e| SessionError::Auth {
            sqlstate: e.sqlstate(),
            client: e.client_message(),
            reason: format!("session limit: {e}"),
        })?;
    let policy = deps.gate.policy();
    let search_path = policy
        .role_settings(&auth.role)
        .map(|s| s.search_path().to_vec())
        .unwrap_or_else(|| vec!["public".to_owned()]);
    if policy.role(&auth.role).is_none() {
        warn!(role = %auth.role, "the user's role has no policy: every statement will be denied");
    }
    drop(policy);
    let pinned = pinned_params(&search_path);
    let key = pool_key(deps, startup, &auth, &pinned);
    let catalog = deps.catalogs.handle(&auth.database);
    let upstream = match deps.pool.take(&key).await {
        Some(reused) => Ok(reused),
        None => {
            let connecting = std::time::Instant::now();
            let upstream = connect_upstream(deps, &key, &auth, client).await;
            match &upstream {
                Ok(_) => deps
                    .observe
                    .metrics
                    .upstream_connected(connecting.elapsed()),
                Err(SessionError::UpstreamRefused(_)) => {
                    deps.observe.metrics.upstream_connect_error("refused")
                }
                Err(_) => deps.observe.metrics.upstream_connect_error("connect"),
            }
            upstream
        }
    };
    let Upstream {
        mut conn,
        pid,
        secret,
        startup_frames,
        ready,
    } = upstream?;
    // The first session of a database waits for its catalog (later refreshes never block).
    if deps.catalogs.get_or_load(&auth.database).await.is_none() {
        warn!(database = %auth.database, "no catalog: statements that need it will be denied");
    }
    let info = SessionInfo {
        session_id: format!("{:016x}", rand::random::<u64>()),
        user: auth.user.clone(),
        role: Some(auth.role.clone()),
        client_address: peer,
        database: auth.database.clone(),
    };
    let ctx = SessionCtx::new(
        SessionPolicy {
            role: auth.role.clone(),
            search_path,
        },
        auth.database.clone(),
        catalog,
        tracing::Span::current(),
        info,
    );
    // The client_encoding the session starts with (PGCLIENTENCODING, startup packet).
    for frame in &startup_frames {
        ctx.observe_startup_parameter(frame);
    }
    let (client_secret, cancel_guard) = deps.cancel.register(pid, secret);

    // What PostgreSQL itself sends after authentication, with pgward's own cancel
    // secret in place of the upstream's.
    client.w.push_message(&Authentication::Ok)?;
    for frame in startup_frames {
        client.w.push(frame);
    }
    client
        .w
        .push_message(&BackendKeyData::new(pid, SecretKey::I32(client_secret)))?;
    client.w.push(ready);
    client.w.flush().await?;

    let observe = &deps.observe;
    observe.metrics.session_started();
    if let Some(audit) = &observe.audit {
        audit.session_start(&ctx.info);
    }
    // From the next poll on, the relay runs outside the session span (SessionFuture).
    relaying.store(true, Ordering::Relaxed);
    let end = relay(client, &mut conn, deps, &ctx, shutdown).await;
    relaying.store(false, Ordering::Relaxed);
    // The rest (audit, pool, the session's outcome) in a poll inside the span again.
    tokio::task::yield_now().await;
    observe.metrics.session_ended();
    if let Some(audit) = &observe.audit {
        let outcome = match &end {
            Ok(e) => e.as_str(),
            Err(e) => e.kind().as_str(),
        };
        audit.session_end(&ctx.info, outcome);
    }
    // The client is gone: its cancel key and session slot go before the upstream session
    // is reset, so neither reaches whoever takes it over.
    drop(cancel_guard);
    drop(session_permit);
    if let Ok(RelayEnd::Terminated) = &end {
        let parameters = ctx.parameters.lock().map(|p| p.clone()).unwrap_or_default();
        let idle = Idle {
            conn,
            pid,
            secret,
            parameters,
        };
        deps.pool
            .give_back(key, idle, deps, shutdown.is_cancelled())
            .await;
    }
    end
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    /// The session span is current in every poll but those of the relay phase, and again
    /// for what follows it.
    #[tokio::test(flavor = "current_thread")]
    async fn the_relay_phase_runs_outside_the_session_span() {
        let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
        let span = tracing::info_span!("pgward.session");
        let relaying = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (flag, record, expected) = (relaying.clone(), seen.clone(), span.id());
        let in_span = move || tracing::Span::current().id() == expected;
        let inner = async move {
            record.lock().unwrap().push(in_span());
            flag.store(true, Ordering::Relaxed);
            // Still this poll: the relay's first poll is in the span.
            record.lock().unwrap().push(in_span());
            tokio::task::yield_now().await;
            record.lock().unwrap().push(in_span());
            flag.store(false, Ordering::Relaxed);
            tokio::task::yield_now().await;
            record.lock().unwrap().push(in_span());
        };
        SessionFuture {
            span,
            relaying,
            inner: Box::pin(inner),
        }
        .await;
        assert_eq!(*seen.lock().unwrap(), vec![true, true, false, true]);
    }
}
