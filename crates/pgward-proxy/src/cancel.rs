//! Query cancellation. A client's BackendKeyData carries the upstream backend's real
//! pid and a secret of pgward's own; the upstream's secret never leaves pgward. A
//! CancelRequest is forwarded over a fresh mTLS connection to the right backend.

use std::sync::Arc;

use dashmap::DashMap;
use tracing::{info, warn};

use crate::deps::Deps;
use crate::upstream;

/// The upstream half of a cancel key.
#[derive(Clone, Copy)]
struct Entry {
    client_secret: i32,
    upstream_secret: i32,
}

/// Live sessions by upstream pid.
#[derive(Default)]
pub struct CancelRegistry {
    by_pid: DashMap<i32, Entry>,
}

impl CancelRegistry {
    /// Registers a session; returns the secret to give the client. The guard removes
    /// the entry when the session ends.
    pub fn register(self: &Arc<Self>, pid: i32, upstream_secret: i32) -> (i32, CancelGuard) {
        let client_secret: i32 = rand::random();
        self.by_pid.insert(
            pid,
            Entry {
                client_secret,
                upstream_secret,
            },
        );
        (
            client_secret,
            CancelGuard {
                registry: self.clone(),
                pid,
                client_secret,
            },
        )
    }

    fn lookup(&self, pid: i32, client_secret: i32) -> Option<i32> {
        let entry = *self.by_pid.get(&pid)?;
        // Compare without an early exit on the first differing bit.
        let same = (entry.client_secret ^ client_secret) == 0;
        same.then_some(entry.upstream_secret)
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

/// Removes a session's cancel key when dropped.
pub struct CancelGuard {
    registry: Arc<CancelRegistry>,
    pid: i32,
    client_secret: i32,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.registry
            .by_pid
            .remove_if(&self.pid, |_, e| e.client_secret == self.client_secret);
    }
}

/// Handles a CancelRequest from a client: forwards it if the key matches, logs it if
/// not. Never answers the client (PostgreSQL does not either).
#[tracing::instrument(name = "pgward.cancel", skip_all, fields(pid))]
pub async fn forward_cancel(deps: &Arc<Deps>, pid: i32, client_secret: i32) {
    let registry: &CancelRegistry = &deps.cancel;
    let Some(upstream_secret) = registry.lookup(pid, client_secret) else {
        warn!(
            pid,
            "cancel request with an unknown pid or a wrong key ignored"
        );
        return;
    };
    match upstream::send_cancel(deps, pid, upstream_secret).await {
        Ok(()) => info!(pid, "cancel request forwarded"),
        Err(e) => warn!(pid, error = %e, "cancel request could not be forwarded"),
    }
}
