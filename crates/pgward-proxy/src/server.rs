//! The listener: accepts connections and runs a session task for each, until the
//! shutdown token fires; then stops accepting, lets sessions finish for the drain
//! timeout, and ends the rest (STYLE rule 8: listener and shutdown are injected).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::deps::Deps;
use crate::session::run_session;

/// Runs the proxy on `listener` until `shutdown` is cancelled, then drains.
pub async fn run(listener: TcpListener, deps: Arc<Deps>, shutdown: CancellationToken) {
    let sessions = TaskTracker::new();
    let end_sessions = CancellationToken::new();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "pgward listening");
    }
    let background = CancellationToken::new();
    if let Some(addr) = deps.config.admin_listen {
        match TcpListener::bind(addr).await {
            Ok(admin) => {
                info!(%addr, "admin listener (/metrics, /healthz, /readyz)");
                tokio::spawn(pgward_telemetry::serve_admin(
                    admin,
                    deps.observe.admin.clone(),
                    background.clone(),
                ));
            }
            Err(e) => error!(%addr, error = %e, "admin listener could not bind"),
        }
    }
    // Ready once the policy is loaded (it is, or we would not run) and the upstream
    // catalog could be read over mTLS.
    {
        let deps = deps.clone();
        tokio::spawn(async move {
            let db = deps.config.upstream.catalog_database.clone();
            loop {
                if deps.catalogs.get_or_load(&db).await.is_some() {
                    deps.observe.admin.set_ready(true);
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }
    tokio::spawn(crate::reload::watch_files(deps.clone(), background.clone()));
    let refresh = tokio::spawn(
        deps.catalogs
            .clone()
            .refresh_loop(deps.config.upstream.catalog_refresh),
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    sessions.spawn(run_session(tcp, peer, deps.clone(), end_sessions.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    error!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    sessions.close();
    let open = sessions.len();
    if open > 0 {
        info!(
            sessions = open,
            timeout_ms = deps.config.limits.drain_timeout.as_millis() as u64,
            "draining sessions"
        );
    }
    if tokio::time::timeout(deps.config.limits.drain_timeout, sessions.wait())
        .await
        .is_err()
    {
        warn!(
            sessions = sessions.len(),
            "drain timeout: ending remaining sessions"
        );
        end_sessions.cancel();
        sessions.wait().await;
    }
    // Every session is over: nothing gives a backend back to the pool any more.
    deps.pool.close().await;
    background.cancel();
    refresh.abort();
    info!("pgward stopped");
}
