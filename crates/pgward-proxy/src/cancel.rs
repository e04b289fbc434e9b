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
    /// Cancels looked up and not yet delivered, by pid: a pooled upstream session must
    /// not be handed to the next client while one of the previous client's is on its way.
    in_flight: DashMap<i32, u32>,
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

    /// The upstream secret for a matching key, counted as in flight until the guard
    /// drops. Counted while the entry is still held, so a session that unregisters after
    /// this lookup sees the count (see `cancel_in_flight`).
    fn begin(self: &Arc<Self>, pid: i32, client_secret: i32) -> Option<(i32, InFlight)> {
        let entry = self.by_pid.get(&pid)?;
        // Compare without an early exit on the first differing bit.
        let same = (entry.client_secret ^ client_secret) == 0;
        if !same {
            return None;
        }
        *self.in_flight.entry(pid).or_insert(0) += 1;
        let upstream_secret = entry.upstream_secret;
        drop(entry);
        Some((
            upstream_secret,
            InFlight {
                registry: self.clone(),
                pid,
            },
        ))
    }

    /// Whether a cancel for `pid` was looked up and is not yet delivered.
    pub fn cancel_in_flight(&self, pid: i32) -> bool {
        self.in_flight.contains_key(&pid)
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

/// A cancel on its way upstream.
struct InFlight {
    registry: Arc<CancelRegistry>,
    pid: i32,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.registry.in_flight.remove_if_mut(&self.pid, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

/// Handles a CancelRequest from a client: forwards it if the key matches, logs it if
/// not. Never answers the client (PostgreSQL does not either).
#[tracing::instrument(name = "pgward.cancel", skip_all, fields(pid))]
pub async fn forward_cancel(deps: &Arc<Deps>, pid: i32, client_secret: i32) {
    let Some((upstream_secret, _in_flight)) = deps.cancel.begin(pid, client_secret) else {
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
