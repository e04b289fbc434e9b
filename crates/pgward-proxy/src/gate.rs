//! The enforcement gate: the one place where a statement is decided.
//!
//! Nothing that carries a statement (Query, Parse, FunctionCall) reaches the upstream
//! without a `pgward_policy::Permit` from here (`FrameWriter::push_statement` takes one).
//! Text is analysed by pgward-sql against the database's catalog and the session's
//! pinned search_path, then checked by pgward-policy; decisions are cached per policy
//! version and catalog snapshot, role, search_path and statement text (or its shape), and
//! each session remembers its own last ones ([`SessionMemo`]). Anything that cannot be
//! analysed is denied (fail closed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pgward_policy::{CacheKey, DecisionCache, Denial, FuncName, Need, Permit, Policy};
use pgward_sql::{AnalyseContext, StatementAccess, StatementKind};

use crate::catalog::LoadedCatalog;

/// Decisions kept per process; enough for the distinct statements of many ORMs.
const CACHE_ENTRIES: usize = 50_000;

/// What a session decides with: its role and the search_path pinned at its start.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub role: String,
    pub search_path: Vec<String>,
}

/// A decision and the analysis it was made on (empty when the text could not be
/// analysed), which the session needs to trace and audit it. Cheap to clone.
#[derive(Clone)]
pub struct Decided {
    pub result: Result<Permit, Denial>,
    pub statements: Arc<[StatementAccess]>,
}

/// The policy snapshot and the decision cache.
pub struct Gate {
    policy: ArcSwap<Policy>,
    /// Bumped after every policy swap: what a session's [`SessionMemo`] checks instead
    /// of loading the policy.
    policy_epoch: AtomicU64,
    cache: DecisionCache<Decided>,
}

/// Decisions a session keeps for itself.
const MEMO_SLOTS: usize = 16;

/// The decisions one session made last, by the text they were cached under (the exact
/// text, or its shape): a statement the session sends again (what drivers and ORMs do)
/// is decided by comparing its text with a few of its own, without hashing it or
/// touching the process's shared cache. Valid only for the policy epoch and catalog
/// snapshot it was decided with; the session's role and search_path never change.
#[derive(Default)]
pub struct SessionMemo {
    entries: Vec<MemoEntry>,
    /// The slot to replace next once full.
    next: usize,
    /// Where each statement's shape is written.
    shape: String,
}

/// The longest statement text a session's memo keeps, and the largest shape buffer it
/// keeps between statements (bytes): a session sending huge statements holds no more
/// than `MEMO_SLOTS` times this.
const MAX_KEPT_TEXT: usize = 4096;

struct MemoEntry {
    policy_epoch: u64,
    catalog_generation: u64,
    text: Box<str>,
    decided: Decided,
}

impl SessionMemo {
    fn get(&self, policy_epoch: u64, catalog_generation: u64, text: &str) -> Option<Decided> {
        self.entries
            .iter()
            .find(|e| {
                e.policy_epoch == policy_epoch
                    && e.catalog_generation == catalog_generation
                    && *e.text == *text
            })
            .map(|e| e.decided.clone())
    }

    fn insert(
        &mut self,
        policy_epoch: u64,
        catalog_generation: u64,
        text: &str,
        decided: &Decided,
    ) {
        if text.len() > MAX_KEPT_TEXT {
            return;
        }
        let entry = MemoEntry {
            policy_epoch,
            catalog_generation,
            text: text.into(),
            decided: decided.clone(),
        };
        if self.entries.len() < MEMO_SLOTS {
            self.entries.push(entry);
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = entry;
            self.next = (self.next + 1) % MEMO_SLOTS;
        }
    }
}

impl Gate {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: ArcSwap::from_pointee(policy),
            policy_epoch: AtomicU64::new(0),
            cache: DecisionCache::new(CACHE_ENTRIES),
        }
    }

    /// The current policy snapshot.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Swaps in a policy that compiled cleanly. Cached decisions of the old version
    /// are never hit again (the version is part of the key).
    pub fn replace_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
        // After the store: a session that sees the new epoch loads the new policy.
        self.policy_epoch.fetch_add(1, Ordering::Release);
    }

    /// Decides SQL text (one Query or Parse message, possibly several statements).
    pub fn decide_sql(
        &self,
        session: &SessionPolicy,
        catalog: Option<&LoadedCatalog>,
        sql: &str,
    ) -> Decided {
        self.decide_sql_in(&mut SessionMemo::default(), session, catalog, sql)
    }

    /// [`Gate::decide_sql`] for a session that keeps `memo` (always with the same
    /// `session`).
    pub fn decide_sql_in(
        &self,
        memo: &mut SessionMemo,
        session: &SessionPolicy,
        catalog: Option<&LoadedCatalog>,
        sql: &str,
    ) -> Decided {
        // Before the policy is loaded: a decision is never remembered under a newer
        // epoch than the policy it was made with.
        let epoch = self.policy_epoch.load(Ordering::Acquire);
        let Some(catalog) = catalog else {
            return Decided {
                result: with_audit(Err(self.policy.load().deny_unanalysable(
                    &session.role,
                    "the database catalog is not loaded yet (pgward could not read it upstream)",
                    0,
                ))),
                statements: Arc::from(Vec::new()),
            };
        };
        let generation = catalog.generation;
        // A statement the session sent before, as it was sent: what drivers send again and
        // again (`... WHERE id = $1`) costs neither a scan nor a hash.
        if let Some(hit) = memo.get(epoch, generation, sql) {
            return hit;
        }
        // Statements that differ only in numbers share a decision (pgward-sql proves
        // numbers never change what a statement needs): `... WHERE id = 42` is analysed
        // once, not once per id, under its shape `... WHERE id = 0`. A text without
        // numbers is its own shape; one with a doubtful number has none and is decided
        // on its own text. The shape is written into the memo's buffer, not a new string.
        let mut shape = std::mem::take(&mut memo.shape);
        let decided = match pgward_sql::decision_shape_into(sql, &mut shape) {
            Some(true) => match memo.get(epoch, generation, &shape) {
                Some(hit) => hit,
                None => self.decide_shared(memo, epoch, session, catalog, sql, &shape),
            },
            Some(false) | None => self.decide_shared(memo, epoch, session, catalog, sql, sql),
        };
        // A huge statement's buffer is not kept for the rest of the session.
        if shape.capacity() <= MAX_KEPT_TEXT {
            memo.shape = shape;
        }
        decided
    }

    /// Decides `sql` by the process's cache under `statement` (its shape, or itself), or
    /// by analysing it, and remembers the decision in `memo`.
    fn decide_shared(
        &self,
        memo: &mut SessionMemo,
        epoch: u64,
        session: &SessionPolicy,
        catalog: &LoadedCatalog,
        sql: &str,
        statement: &str,
    ) -> Decided {
        let generation = catalog.generation;
        let policy = self.policy.load();
        let key = CacheKey {
            version: mix(policy.version(), generation),
            role: &session.role,
            search_path: &session.search_path,
            statement,
        };
        if let Some(hit) = self.cache.get(&key) {
            memo.insert(epoch, generation, statement, &hit);
            return hit;
        }
        let ctx = AnalyseContext {
            catalog: &catalog.catalog,
            search_path: &session.search_path,
        };
        let decided = match pgward_sql::analyse(sql, &ctx) {
            Ok(statements) => Decided {
                result: with_audit(policy.check(&session.role, &statements)),
                statements: Arc::from(statements),
            },
            Err(e) => Decided {
                result: with_audit(Err(policy.deny_unanalysable(
                    &session.role,
                    e.to_string(),
                    0,
                ))),
                statements: Arc::from(Vec::new()),
            },
        };
        self.cache.insert(&key, decided.clone());
        memo.insert(epoch, generation, statement, &decided);
        decided
    }

    /// Decides a FunctionCall message: exactly like a SQL call of the function its OID
    /// names in the catalog.
    pub fn decide_function_call(
        &self,
        session: &SessionPolicy,
        catalog: Option<&LoadedCatalog>,
        oid: u32,
    ) -> Decided {
        let policy = self.policy.load();
        let function = catalog.and_then(|c| c.catalog.function_by_oid(oid));
        let Some(function) = function else {
            return Decided {
                result: with_audit(Err(policy.deny_unanalysable(
                    &session.role,
                    format!("FunctionCall of unknown function OID {oid}"),
                    0,
                ))),
                statements: Arc::from(Vec::new()),
            };
        };
        let access = StatementAccess {
            kind: StatementKind::Call,
            needs: [Need::Function {
                function: FuncName::new(function.schema.clone(), function.name.clone()),
            }]
            .into_iter()
            .collect(),
            normalized: format!("FunctionCall {}.{}", function.schema, function.name),
        };
        let result = with_audit(policy.check(&session.role, std::slice::from_ref(&access)));
        Decided {
            result,
            statements: Arc::from(vec![access]),
        }
    }
}

/// For a role in audit mode a denial becomes a Permit that records `would_deny`.
fn with_audit(decided: Result<Permit, Denial>) -> Result<Permit, Denial> {
    decided.or_else(Denial::audit_permit)
}

/// One cache "version" from the policy version and the catalog snapshot.
fn mix(policy_version: u64, catalog_generation: u64) -> u64 {
    policy_version ^ catalog_generation.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pgward_sql::Catalog;

    /// A statement is cached under its shape and found again by its text or by any text of
    /// the same shape; the decisions are the ones an uncached check gives.
    #[test]
    fn texts_and_shapes_share_cached_decisions() {
        let policy = Policy::from_sources(&[(
            "p.yaml",
            "roles:\n  r:\n    tables:\n      public.t: { select: [a] }\n",
        )])
        .unwrap();
        let gate = Gate::new(policy);
        let catalog = LoadedCatalog {
            catalog: Catalog::from_create_tables("CREATE TABLE t (a int, b int);").unwrap(),
            generation: 1,
        };
        let session = SessionPolicy {
            role: "r".into(),
            search_path: vec!["public".into()],
        };
        let allowed = |sql: &str| {
            gate.decide_sql(&session, Some(&catalog), sql)
                .result
                .is_ok()
        };
        for (sql, allow, entries) in [
            ("SELECT a FROM t WHERE a = 1", true, 1),
            // Same shape: the entry of the first.
            ("SELECT a FROM t WHERE a = 22", true, 1),
            // The shape's own text: found by the exact lookup.
            ("SELECT a FROM t WHERE a = 0", true, 1),
            ("SELECT a FROM t WHERE a = $1", true, 2),
            ("SELECT a FROM t WHERE a = $1", true, 2),
            ("SELECT b FROM t WHERE a = 1", false, 3),
            ("SELECT b FROM t WHERE a = 0", false, 3),
            ("SELECT b FROM t WHERE a = $1", false, 4),
            // No shape (a lexing error): decided, and cached, on its own text.
            ("SELECT a FROM t WHERE a = 1abc", false, 5),
            ("SELECT a FROM t WHERE a = 1abc", false, 5),
        ] {
            assert_eq!(allowed(sql), allow, "{sql}");
            assert_eq!(gate.cache.len(), entries, "{sql}");
        }
    }

    /// A session's memo answers a statement it decided before without the shared cache,
    /// under its exact text or its shape, and never across a policy swap or a catalog
    /// reload.
    #[test]
    fn a_session_memo_holds_only_for_its_policy_and_catalog() {
        let allow_a = "roles:\n  r:\n    tables:\n      public.t: { select: [a] }\n";
        let allow_b = "roles:\n  r:\n    tables:\n      public.t: { select: [b] }\n";
        let gate = Gate::new(Policy::from_sources(&[("p.yaml", allow_a)]).unwrap());
        let loaded = |generation, ddl: &str| LoadedCatalog {
            catalog: Catalog::from_create_tables(ddl).unwrap(),
            generation,
        };
        let first = loaded(1, "CREATE TABLE t (a int, b int);");
        let session = SessionPolicy {
            role: "r".into(),
            search_path: vec!["public".into()],
        };
        let mut memo = SessionMemo::default();
        let mut allowed = |catalog: &LoadedCatalog, sql: &str| {
            gate.decide_sql_in(&mut memo, &session, Some(catalog), sql)
                .result
                .is_ok()
        };
        assert!(allowed(&first, "SELECT a FROM t WHERE a = $1"));
        assert!(allowed(&first, "SELECT a FROM t WHERE a = 1"));
        gate.cache.clear();
        // Answered by the memo: the shared cache is not even asked, so gets no entry.
        assert!(allowed(&first, "SELECT a FROM t WHERE a = $1"));
        assert!(allowed(&first, "SELECT a FROM t WHERE a = 7"), "same shape");
        assert_eq!(gate.cache.len(), 0);
        // A reloaded catalog without column a: decided again, and denied.
        let second = loaded(2, "CREATE TABLE t (b int);");
        assert!(!allowed(&second, "SELECT a FROM t WHERE a = $1"));
        assert!(allowed(&first, "SELECT a FROM t WHERE a = $1"));
        // A new policy that grants b, not a.
        gate.replace_policy(Policy::from_sources(&[("p.yaml", allow_b)]).unwrap());
        assert!(!allowed(&first, "SELECT a FROM t WHERE a = $1"));
        assert!(!allowed(&first, "SELECT a FROM t WHERE a = 7"));
        assert!(allowed(&first, "SELECT b FROM t WHERE b = 7"));
        // Bounded: old entries are replaced in turn.
        for i in 0..2 * MEMO_SLOTS {
            allowed(&first, &format!("SELECT b FROM t WHERE a = ${}", i + 1));
        }
        assert_eq!(memo.entries.len(), MEMO_SLOTS);
        // A huge text is decided but not kept.
        let huge = format!("SELECT b FROM t WHERE b = $1 {}", " ".repeat(MAX_KEPT_TEXT));
        let mut memo = SessionMemo::default();
        assert!(gate
            .decide_sql_in(&mut memo, &session, Some(&first), &huge)
            .result
            .is_ok());
        assert!(memo.entries.is_empty());
    }
}
