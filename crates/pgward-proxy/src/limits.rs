//! Limits (SPEC §7): concurrent sessions per user and per role, a statement-rate token
//! bucket, and the brute-force guard on failed logins per client address.
//!
//! Pure bookkeeping: no sockets, no sleeping, no clock reads — the caller passes `Instant`s
//! and acts on the verdicts. Memory stays bounded under attack: the login guard forgets
//! quiet addresses and caps its table.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// A limit was hit. The Display is the client-facing message (PostgreSQL's wording where
/// it has one); `sqlstate()` is the code to send with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("too many connections for role \"{user}\"")]
    TooManyUserSessions { user: String, max: u32 },
    #[error("too many connections for pgward role \"{role}\"")]
    TooManyRoleSessions { role: String, max: u32 },
    #[error(
        "statement rate limit exceeded for \"{name}\": at most {per_second} statements per second"
    )]
    StatementRate { name: String, per_second: f64 },
    #[error(
        "statement rate limit exceeded for pgward role \"{role}\": at most {per_second} statements per second across its sessions"
    )]
    RoleStatementRate { role: String, per_second: f64 },
}

impl LimitError {
    /// `53300` too_many_connections, `53400` configuration_limit_exceeded.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            LimitError::TooManyUserSessions { .. } | LimitError::TooManyRoleSessions { .. } => {
                "53300"
            }
            LimitError::StatementRate { .. } | LimitError::RoleStatementRate { .. } => "53400",
        }
    }

    /// The text the client may see (the Display; nothing in it is secret).
    pub fn client_message(&self) -> String {
        self.to_string()
    }

    /// A short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LimitError::TooManyUserSessions { .. } => "user_sessions",
            LimitError::TooManyRoleSessions { .. } => "role_sessions",
            LimitError::StatementRate { .. } => "statement_rate",
            LimitError::RoleStatementRate { .. } => "role_statement_rate",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent sessions

/// Counts live sessions per user and per role. Sessions are counted even when no limit is
/// configured, so a limit added by a reload applies to the real current count.
#[derive(Debug, Clone, Default)]
pub struct SessionLimiter {
    counts: Arc<SessionCounts>,
}

#[derive(Debug, Default)]
struct SessionCounts {
    users: DashMap<String, u32>,
    roles: DashMap<String, u32>,
}

/// Evidence that a session holds a slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct SessionPermit {
    counts: Arc<SessionCounts>,
    user: String,
    role: String,
}

impl SessionLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a slot for `user` and one for `role`, or neither. `None` means unlimited.
    pub fn try_acquire(
        &self,
        user: &str,
        role: &str,
        max_user: Option<u32>,
        max_role: Option<u32>,
    ) -> Result<SessionPermit, LimitError> {
        let counts = &self.counts;
        if !take(&counts.users, user, max_user) {
            return Err(LimitError::TooManyUserSessions {
                user: user.to_owned(),
                max: max_user.unwrap_or(0),
            });
        }
        if !take(&counts.roles, role, max_role) {
            give_back(&counts.users, user);
            return Err(LimitError::TooManyRoleSessions {
                role: role.to_owned(),
                max: max_role.unwrap_or(0),
            });
        }
        Ok(SessionPermit {
            counts: Arc::clone(counts),
            user: user.to_owned(),
            role: role.to_owned(),
        })
    }

    /// Live sessions of `user` (for metrics and tests).
    pub fn user_sessions(&self, user: &str) -> u32 {
        self.counts.users.get(user).map_or(0, |c| *c)
    }

    /// Live sessions of `role`.
    pub fn role_sessions(&self, role: &str) -> u32 {
        self.counts.roles.get(role).map_or(0, |c| *c)
    }
}

impl SessionPermit {
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn role(&self) -> &str {
        &self.role
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        give_back(&self.counts.users, &self.user);
        give_back(&self.counts.roles, &self.role);
    }
}

/// Increments `name`'s count unless it is already at `max` (checked and incremented under
/// the entry's lock, so two racing sessions cannot both take the last slot).
fn take(map: &DashMap<String, u32>, name: &str, max: Option<u32>) -> bool {
    let mut count = map.entry(name.to_owned()).or_insert(0);
    if max.is_some_and(|max| *count >= max) {
        let empty = *count == 0;
        drop(count);
        if empty {
            map.remove_if(name, |_, c| *c == 0);
        }
        return false;
    }
    *count = count.saturating_add(1);
    true
}

fn give_back(map: &DashMap<String, u32>, name: &str) {
    if let Some(mut count) = map.get_mut(name) {
        *count = count.saturating_sub(1);
    }
    // Re-checked under the shard lock: a session that arrived in between keeps the entry.
    map.remove_if(name, |_, c| *c == 0);
}

// ---------------------------------------------------------------------------------------
// Statement rate

/// A token bucket: `burst` statements at once, refilled at `per_second`.
///
/// Hand-written rather than `governor`: a dozen lines over `std::time::Instant` that the
/// caller passes in (so tests need no fake clock and no sleeping), no extra dependency,
/// and fractional rates such as 0.5/s work without quota arithmetic.
#[derive(Debug)]
pub struct StatementRate {
    per_second: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl StatementRate {
    /// Starts full. A non-finite or negative rate counts as 0 (only the burst, never
    /// refilled); the burst is at least 1 so a configured limit never blocks everything.
    pub fn new(per_second: f64, burst: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            0.0
        };
        let burst = if burst.is_finite() {
            burst.max(1.0)
        } else {
            1.0
        };
        StatementRate {
            per_second,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                last: None,
            }),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Takes one token if there is one. A `now` earlier than a previous call (callers on
    /// different threads) refills nothing rather than going negative.
    pub fn try_take(&self, now: Instant) -> bool {
        // A panic elsewhere cannot leave the f64s half-written, so a poisoned lock is safe.
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = bucket.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        }
        if bucket.last.is_none_or(|last| now > last) {
            bucket.last = Some(now);
        }
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// `try_take`, as the error the session sends (53400) when the bucket is empty.
    pub fn check(&self, name: &str, now: Instant) -> Result<(), LimitError> {
        if self.try_take(now) {
            Ok(())
        } else {
            Err(LimitError::StatementRate {
                name: name.to_owned(),
                per_second: self.per_second,
            })
        }
    }
}

/// One shared bucket per user (or role) name, so all sessions of a user draw from the
/// same bucket.
#[derive(Debug, Default)]
pub struct StatementRates {
    buckets: DashMap<String, Arc<StatementRate>>,
}

impl StatementRates {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bucket for `name`; a new one when none exists or when the configured rate
    /// changed (after a reload).
    pub fn bucket(&self, name: &str, per_second: f64, burst: f64) -> Arc<StatementRate> {
        let wanted = StatementRate::new(per_second, burst);
        let mut entry = self
            .buckets
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(StatementRate::new(per_second, burst)));
        if entry.per_second != wanted.per_second || entry.burst != wanted.burst {
            *entry = Arc::new(wanted);
        }
        Arc::clone(&entry)
    }

    /// Drops buckets no session holds any more (call it from a periodic task or on
    /// session end).
    pub fn prune(&self) {
        self.buckets.retain(|_, b| Arc::strong_count(b) > 1);
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// Brute-force guard

/// How failed logins from one address are slowed down and then locked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures answered without delay.
    pub free_attempts: u32,
    /// Delay after the first non-free failure; doubles with each further one...
    pub base_delay: Duration,
    /// ...up to this.
    pub max_delay: Duration,
    /// Failures (within `window`) that lock the address out.
    pub lockout_after: u32,
    pub lockout_for: Duration,
    /// An address with no failure for this long is forgotten.
    pub window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            free_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            lockout_after: 10,
            lockout_for: Duration::from_secs(5 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// What to do with a login attempt from an address, decided before authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerdict {
    Allowed,
    /// Wait this long before answering the attempt.
    Delay(Duration),
    /// Refuse without checking credentials.
    LockedOut {
        until: Instant,
    },
}

/// Default cap on tracked addresses.
pub const DEFAULT_MAX_TRACKED: usize = 100_000;
/// Every this many `failed` calls, the whole table is swept for stale entries.
const SWEEP_EVERY: u64 = 1024;

/// Failed logins per client address. IPv6 clients are tracked per /64 (one host usually
/// owns a whole /64, so per-address tracking would be trivially evaded); IPv4-mapped IPv6
/// addresses count as their IPv4 address.
#[derive(Debug)]
pub struct LoginGuard {
    policy: LockoutPolicy,
    max_tracked: usize,
    entries: DashMap<IpAddr, Failures>,
    calls: AtomicU64,
}

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    /// Nothing left to remember: quiet for a whole window, or a lockout that ended.
    fn is_stale(&self, now: Instant, window: Duration) -> bool {
        match self.locked_until {
            Some(until) => now >= until,
            None => now.saturating_duration_since(self.last) >= window,
        }
    }
}

impl LoginGuard {
    pub fn new(policy: LockoutPolicy) -> Self {
        Self::with_capacity_limit(policy, DEFAULT_MAX_TRACKED)
    }

    /// As `new`, tracking at most `max_tracked` addresses (the oldest are evicted).
    pub fn with_capacity_limit(policy: LockoutPolicy, max_tracked: usize) -> Self {
        LoginGuard {
            policy,
            max_tracked: max_tracked.max(1),
            entries: DashMap::new(),
            calls: AtomicU64::new(0),
        }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    pub fn check(&self, ip: IpAddr, now: Instant) -> LoginVerdict {
        let key = tracking_key(ip);
        let window = self.policy.window;
        self.entries.remove_if(&key, |_, f| f.is_stale(now, window));
        let Some(failures) = self.entries.get(&key) else {
            return LoginVerdict::Allowed;
        };
        if let Some(until) = failures.locked_until {
            return LoginVerdict::LockedOut { until };
        }
        match self.delay_after(failures.count) {
            Some(delay) => LoginVerdict::Delay(delay),
            None => LoginVerdict::Allowed,
        }
    }

    /// Records a failed login. Returns `Some(until)` when this failure starts a lockout
    /// (the caller counts it in metrics; it is logged here). Failures during a lockout
    /// change nothing: they neither extend it nor count towards the next one.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Option<Instant> {
        let key = tracking_key(ip);
        let window = self.policy.window;
        self.entries.remove_if(&key, |_, f| f.is_stale(now, window));
        if !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        self.maybe_sweep(now);

        let mut failures = self.entries.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if failures.locked_until.is_some() {
            return None;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        if failures.count < self.policy.lockout_after {
            return None;
        }
        // A configured duration too large for `Instant` locks out for a year instead.
        let until = now
            .checked_add(self.policy.lockout_for)
            .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
            .unwrap_or(now);
        failures.locked_until = Some(until);
        let count = failures.count;
        drop(failures);
        tracing::warn!(
            client_addr = %key,
            failed_logins = count,
            lockout_secs = self.policy.lockout_for.as_secs(),
            "client address locked out after repeated failed logins"
        );
        Some(until)
    }

    /// Forgets the address (a successful login resets its failures).
    pub fn succeeded(&self, ip: IpAddr) {
        self.entries.remove(&tracking_key(ip));
    }

    /// Tracked addresses (for metrics and tests).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The delay owed after `count` failures: none for the free attempts, then
    /// `base_delay * 2^(count - free_attempts)`, capped at `max_delay`.
    fn delay_after(&self, count: u32) -> Option<Duration> {
        let extra = count.checked_sub(self.policy.free_attempts)?;
        let factor = 1u32.checked_shl(extra.min(31)).unwrap_or(u32::MAX);
        let delay = self
            .policy
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.policy.max_delay);
        Some(delay.min(self.policy.max_delay))
    }

    fn maybe_sweep(&self, now: Instant) {
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.prune(now);
        }
    }

    /// Removes every stale entry.
    pub fn prune(&self, now: Instant) {
        let window = self.policy.window;
        self.entries.retain(|_, f| !f.is_stale(now, window));
    }

    /// Keeps the table under `max_tracked` before a new address is inserted: first drop
    /// stale entries, then, if still full, the least recently failing tenth (a batch, so a
    /// flood of new addresses costs one scan per many inserts, not one per insert).
    fn make_room(&self, now: Instant) {
        if self.entries.len() < self.max_tracked {
            return;
        }
        self.prune(now);
        if self.entries.len() < self.max_tracked {
            return;
        }
        let mut by_age: Vec<(Instant, IpAddr)> =
            self.entries.iter().map(|e| (e.last, *e.key())).collect();
        if by_age.is_empty() {
            return;
        }
        let evict = (self.max_tracked / 10).max(1).min(by_age.len());
        by_age.select_nth_unstable_by_key(evict - 1, |(last, _)| *last);
        for (_, ip) in &by_age[..evict] {
            self.entries.remove(ip);
        }
    }
}

/// IPv4 as is; IPv4-mapped IPv6 as IPv4; other IPv6 truncated to its /64.
fn tracking_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MS: Duration = Duration::from_millis(1);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn fail_n(guard: &LoginGuard, ip: IpAddr, n: u32, now: Instant) {
        for _ in 0..n {
            guard.failed(ip, now);
        }
    }

    #[test]
    fn sessions_are_capped_per_user_and_released_on_drop() {
        let limiter = SessionLimiter::new();
        let a = limiter
            .try_acquire("alice", "analyst", Some(2), None)
            .unwrap();
        let b = limiter
            .try_acquire("alice", "analyst", Some(2), None)
            .unwrap();
        let err = limiter
            .try_acquire("alice", "analyst", Some(2), None)
            .unwrap_err();
        assert_eq!(
            err,
            LimitError::TooManyUserSessions {
                user: "alice".into(),
                max: 2
            }
        );
        assert_eq!(err.sqlstate(), "53300");
        assert_eq!(
            err.client_message(),
            "too many connections for role \"alice\""
        );
        // Another user is not affected.
        let _bob = limiter
            .try_acquire("bob", "analyst", Some(2), None)
            .unwrap();
        assert_eq!(limiter.user_sessions("alice"), 2);
        assert_eq!(limiter.role_sessions("analyst"), 3);
        drop(a);
        assert_eq!(limiter.user_sessions("alice"), 1);
        let _c = limiter
            .try_acquire("alice", "analyst", Some(2), None)
            .unwrap();
        drop(b);
        assert_eq!(limiter.user_sessions("alice"), 1);
    }

    #[test]
    fn sessions_are_capped_per_role_and_a_refusal_takes_nothing() {
        let limiter = SessionLimiter::new();
        let _a = limiter.try_acquire("alice", "app", None, Some(2)).unwrap();
        let _b = limiter.try_acquire("bob", "app", None, Some(2)).unwrap();
        let err = limiter
            .try_acquire("carol", "app", Some(5), Some(2))
            .unwrap_err();
        assert_eq!(
            err,
            LimitError::TooManyRoleSessions {
                role: "app".into(),
                max: 2
            }
        );
        assert_eq!(err.sqlstate(), "53300");
        assert!(err.client_message().contains("\"app\""));
        // carol's user slot was given back, and no empty entries are left behind.
        assert_eq!(limiter.user_sessions("carol"), 0);
        assert_eq!(limiter.counts.users.len(), 2);
        let _other = limiter
            .try_acquire("carol", "analyst", Some(1), Some(2))
            .unwrap();
    }

    #[test]
    fn unlimited_sessions_are_still_counted_and_entries_vanish() {
        let limiter = SessionLimiter::new();
        let permits: Vec<_> = (0..50)
            .map(|_| limiter.try_acquire("u", "r", None, None).unwrap())
            .collect();
        assert_eq!(limiter.user_sessions("u"), 50);
        // A limit introduced by a reload applies to the live count.
        assert!(limiter.try_acquire("u", "r", Some(50), None).is_err());
        assert!(limiter.try_acquire("x", "y", Some(0), None).is_err());
        drop(permits);
        assert!(limiter.counts.users.is_empty() && limiter.counts.roles.is_empty());
    }

    #[test]
    fn token_bucket_allows_a_burst_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let rate = StatementRate::new(10.0, 3.0);
        assert!((0..3).all(|_| rate.try_take(t0)));
        assert!(!rate.try_take(t0));
        // 100 ms at 10/s is one token.
        assert!(rate.try_take(t0 + 100 * MS));
        assert!(!rate.try_take(t0 + 100 * MS));
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| rate.try_take(later)));
        assert!(!rate.try_take(later));
        // A stale `now` from another thread refills nothing.
        assert!(!rate.try_take(t0));
        let err = rate.check("alice", later).unwrap_err();
        assert_eq!(err.sqlstate(), "53400");
        assert_eq!(
            err.client_message(),
            "statement rate limit exceeded for \"alice\": at most 10 statements per second"
        );
    }

    #[test]
    fn token_bucket_fractional_rate_and_sanitised_parameters() {
        let t0 = Instant::now();
        let slow = StatementRate::new(0.5, 1.0);
        assert!(slow.try_take(t0));
        assert!(!slow.try_take(t0 + 1900 * MS));
        assert!(slow.try_take(t0 + 2000 * MS));
        let odd = StatementRate::new(f64::NAN, 0.0);
        assert_eq!((odd.per_second(), odd.burst()), (0.0, 1.0));
        assert!(odd.try_take(t0));
        assert!(!odd.try_take(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn statement_rates_share_a_bucket_per_name() {
        let t0 = Instant::now();
        let rates = StatementRates::new();
        let a = rates.bucket("alice", 1.0, 1.0);
        let b = rates.bucket("alice", 1.0, 1.0);
        assert!(a.try_take(t0));
        assert!(!b.try_take(t0));
        let changed = rates.bucket("alice", 5.0, 5.0);
        assert_eq!(changed.burst(), 5.0);
        drop((a, b, changed));
        let _bob = rates.bucket("bob", 1.0, 1.0);
        rates.prune();
        assert_eq!(rates.len(), 1);
    }

    #[test]
    fn delays_grow_progressively_after_the_free_attempts() {
        let guard = LoginGuard::new(LockoutPolicy::default());
        let t0 = Instant::now();
        let a = ip(1);
        let mut seen = Vec::new();
        for n in 0..9 {
            seen.push(guard.check(a, t0));
            assert_eq!(guard.failed(a, t0), None, "failure {}", n + 1);
        }
        use LoginVerdict::{Allowed, Delay};
        let expected = [
            Allowed,
            Allowed,
            Allowed,
            Allowed,
            Allowed,
            Delay(100 * MS),
            Delay(200 * MS),
            Delay(400 * MS),
            Delay(800 * MS),
        ];
        assert_eq!(seen, expected);
        // Capped at max_delay.
        let policy = LockoutPolicy {
            lockout_after: 100,
            ..LockoutPolicy::default()
        };
        let guard = LoginGuard::new(policy);
        fail_n(&guard, a, 40, t0);
        assert_eq!(guard.check(a, t0), Delay(Duration::from_secs(2)));
        // Other addresses are unaffected.
        assert_eq!(guard.check(ip(2), t0), Allowed);
    }

    #[test]
    fn lockout_after_n_failures_then_expiry() {
        let guard = LoginGuard::new(LockoutPolicy::default());
        let t0 = Instant::now();
        let a = ip(1);
        fail_n(&guard, a, 9, t0);
        let until = guard
            .failed(a, t0 + MS)
            .expect("the 10th failure locks out");
        assert_eq!(until, t0 + MS + Duration::from_secs(300));
        assert_eq!(
            guard.check(a, t0 + Duration::from_secs(299)),
            LoginVerdict::LockedOut { until }
        );
        // Failures during the lockout neither extend it nor start another.
        assert_eq!(guard.failed(a, t0 + Duration::from_secs(200)), None);
        assert_eq!(guard.check(a, until), LoginVerdict::Allowed);
        assert!(guard.is_empty());
        assert_eq!(guard.failed(a, until), None);
        assert_eq!(guard.check(a, until), LoginVerdict::Allowed);
    }

    #[test]
    fn success_resets() {
        let guard = LoginGuard::new(LockoutPolicy::default());
        let t0 = Instant::now();
        fail_n(&guard, ip(1), 8, t0);
        assert!(matches!(guard.check(ip(1), t0), LoginVerdict::Delay(_)));
        guard.succeeded(ip(1));
        assert_eq!(guard.check(ip(1), t0), LoginVerdict::Allowed);
        fail_n(&guard, ip(1), 9, t0);
        assert_eq!(guard.check(ip(1), t0), LoginVerdict::Delay(1600 * MS));
    }

    #[test]
    fn quiet_addresses_are_forgotten_after_the_window() {
        let guard = LoginGuard::new(LockoutPolicy::default());
        let t0 = Instant::now();
        let window = Duration::from_secs(15 * 60);
        fail_n(&guard, ip(1), 7, t0);
        fail_n(&guard, ip(2), 7, t0 + window / 2);
        assert_eq!(guard.len(), 2);
        // Still remembered just inside the window; a new failure slides it.
        assert!(matches!(
            guard.check(ip(1), t0 + window - MS),
            LoginVerdict::Delay(_)
        ));
        assert_eq!(guard.check(ip(1), t0 + window), LoginVerdict::Allowed);
        assert_eq!(guard.len(), 1);
        guard.prune(t0 + window / 2 + window);
        assert!(guard.is_empty());
        // Failures spread wider than the window never accumulate to a lockout.
        for i in 0..30 {
            assert_eq!(guard.failed(ip(3), t0 + window * i), None);
        }
    }

    #[test]
    fn the_table_is_capped_evicting_the_oldest() {
        let guard = LoginGuard::with_capacity_limit(LockoutPolicy::default(), 100);
        let t0 = Instant::now();
        for i in 0..100u32 {
            guard.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), t0 + MS * i);
        }
        assert_eq!(guard.len(), 100);
        let newcomer = ip(7);
        guard.failed(newcomer, t0 + Duration::from_secs(1));
        assert!(guard.len() <= 100);
        assert!(guard.entries.contains_key(&newcomer));
        // The oldest went first.
        assert!(!guard
            .entries
            .contains_key(&IpAddr::V4(Ipv4Addr::from(0x0a00_0000))));
        assert!(guard
            .entries
            .contains_key(&IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 99))));
        for i in 0..10_000u32 {
            guard.failed(
                IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)),
                t0 + Duration::from_secs(2),
            );
        }
        assert!(guard.len() <= 100);
    }

    #[test]
    fn ipv6_is_tracked_per_64_and_mapped_ipv4_as_ipv4() {
        let guard = LoginGuard::new(LockoutPolicy::default());
        let t0 = Instant::now();
        for host in 0..10u16 {
            let addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, host, host, host, host);
            guard.failed(IpAddr::V6(addr), t0);
        }
        let neighbour = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0xffff, 0, 0, 1));
        assert!(matches!(
            guard.check(neighbour, t0),
            LoginVerdict::LockedOut { .. }
        ));
        let other_net = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(guard.check(other_net, t0), LoginVerdict::Allowed);

        fail_n(&guard, ip(9), 10, t0);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped());
        assert!(matches!(
            guard.check(mapped, t0),
            LoginVerdict::LockedOut { .. }
        ));
    }
}
