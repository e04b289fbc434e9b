//! Hot reload without a signal: a change to any file in the policy directory (or to the
//! users file) triggers the same reload as SIGHUP. Polls modification times — cheap,
//! portable, and a broken file simply keeps the previous policy.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::deps::Deps;

const POLL: Duration = Duration::from_secs(2);

/// A fingerprint of the watched files: names, sizes and modification times.
fn fingerprint(policies: &Path, users: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut files: Vec<(String, u64, Option<SystemTime>)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(policies) {
        for entry in entries.flatten() {
            if let Ok(meta) = entry.metadata() {
                files.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    meta.len(),
                    meta.modified().ok(),
                ));
            }
        }
    }
    if let Ok(meta) = std::fs::metadata(users) {
        files.push(("users".to_owned(), meta.len(), meta.modified().ok()));
    }
    files.sort();
    files
}

/// Watches the policy directory and users file until `shutdown`.
pub async fn watch_files(deps: Arc<Deps>, shutdown: CancellationToken) {
    let policies = deps.config.policies.clone();
    let users = deps.config.users.clone();
    let mut last = fingerprint(&policies, &users);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let now = fingerprint(&policies, &users);
        if now != last {
            last = now;
            if let Err(e) = deps.reload() {
                warn!(error = %e, "reload after a file change failed; previous configuration kept");
            }
        }
    }
}
