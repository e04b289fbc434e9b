//! Keeping a session consistent with PostgreSQL's own state after a denial.
//!
//! A denied Query, Parse or FunctionCall is replaced upstream by a statement that fails
//! to parse (`pgward_denied_<session token>_<n>`). PostgreSQL then does what it does for
//! any failing statement — aborts the transaction block, skips the extended-protocol
//! batch up to Sync, answers in order — and its syntax error is rewritten on the way
//! back into the denial (SQLSTATE 42501, the reason, the policy hint).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use pgward_policy::Denial;
use pgwire::messages::response::ErrorResponse;

use crate::frame::error_fields;

struct Pending {
    n: u64,
    /// The ReadyForQuery (counted from the start of the relay) that closes its batch.
    sync_seq: u64,
    sqlstate: &'static str,
    message: String,
    hint: String,
}

/// The denials of one session whose upstream errors have not come back yet.
pub struct Denials {
    token: String,
    next: AtomicU64,
    pending_count: AtomicUsize,
    pending: Mutex<Vec<Pending>>,
}

impl Default for Denials {
    fn default() -> Self {
        Self::new()
    }
}

impl Denials {
    pub fn new() -> Self {
        Self {
            token: format!("pgward_denied_{:016x}_", rand::random::<u64>()),
            next: AtomicU64::new(1),
            pending_count: AtomicUsize::new(0),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Records a denial whose batch ends at ReadyForQuery number `sync_seq`; returns the
    /// statement text to send upstream in its place.
    pub fn register(&self, denial: &Denial, sync_seq: u64) -> String {
        self.register_error("42501", denial.message(), denial.hint(), sync_seq)
    }

    /// Like [`Denials::register`] for a refusal that is not a policy denial (a rate
    /// limit: 53400).
    pub fn register_error(
        &self,
        sqlstate: &'static str,
        message: String,
        hint: String,
        sync_seq: u64,
    ) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let pending = Pending {
            n,
            sync_seq,
            sqlstate,
            message,
            hint,
        };
        if let Ok(mut list) = self.pending.lock() {
            list.push(pending);
            self.pending_count.store(list.len(), Ordering::Release);
        }
        format!("{}{n}", self.token)
    }

    /// If this ErrorResponse body is the upstream's answer to one of our stand-in
    /// statements, the client's error in its place.
    pub fn rewrite(&self, error_body: &[u8]) -> Option<ErrorResponse> {
        if self.pending_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let fields = error_fields(error_body);
        let message = fields.iter().find(|(c, _)| *c == b'M')?;
        let at = message.1.find(&self.token)?;
        let digits: String = message.1[at + self.token.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let n: u64 = digits.parse().ok()?;
        let mut list = self.pending.lock().ok()?;
        let index = list.iter().position(|p| p.n == n)?;
        let p = list.swap_remove(index);
        self.pending_count.store(list.len(), Ordering::Release);
        Some(refusal_error(p.sqlstate, &p.message, &p.hint))
    }

    /// ReadyForQuery number `seq` arrived: denials of batches up to it are settled
    /// (their stand-ins were answered or skipped).
    pub fn sync_completed(&self, seq: u64) {
        if self.pending_count.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Ok(mut list) = self.pending.lock() {
            list.retain(|p| p.sync_seq > seq);
            self.pending_count.store(list.len(), Ordering::Release);
        }
    }
}

/// The ErrorResponse a client gets for a denial (42501) or a rate limit (53400).
pub fn refusal_error(sqlstate: &str, message: &str, hint: &str) -> ErrorResponse {
    ErrorResponse::new(vec![
        (b'S', "ERROR".to_owned()),
        (b'V', "ERROR".to_owned()),
        (b'C', sqlstate.to_owned()),
        (b'M', message.to_owned()),
        (b'H', hint.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn denial() -> Denial {
        let policy =
            pgward_policy::Policy::from_sources(&[("t.yaml", "roles:\n  r: {}\n")]).unwrap();
        policy.deny_unanalysable("r", "test", 0)
    }

    #[test]
    fn stand_in_errors_are_rewritten_once() {
        let d = Denials::new();
        let marker = d.register(&denial(), 1);
        let body = format!("SERROR\0C42601\0Msyntax error at or near \"{marker}\"\0P1\0\0");
        let e = d.rewrite(body.as_bytes()).unwrap();
        assert!(e.fields.contains(&(b'C', "42501".to_owned())));
        assert!(d.rewrite(body.as_bytes()).is_none());
        // A client cannot forge another session's marker.
        let other = Denials::new();
        let m2 = other.register(&denial(), 1);
        let body2 = format!("SERROR\0C42601\0Msyntax error at or near \"{m2}\"\0\0");
        assert!(d.rewrite(body2.as_bytes()).is_none());
    }

    #[test]
    fn skipped_stand_ins_are_settled_at_their_sync() {
        let d = Denials::new();
        d.register(&denial(), 2);
        d.sync_completed(1);
        assert_eq!(d.pending_count.load(Ordering::Acquire), 1);
        d.sync_completed(2);
        assert_eq!(d.pending_count.load(Ordering::Acquire), 0);
    }
}
