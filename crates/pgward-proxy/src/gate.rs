//! The enforcement gate: the one place where a statement is decided.
//!
//! Nothing that carries a statement (Query, Parse, FunctionCall) reaches the upstream
//! without a `pgward_policy::Permit` from here (`FrameWriter::push_statement` takes one).
//! Text is analysed by pgward-sql against the database's catalog and the session's
//! pinned search_path, then checked by pgward-policy; decisions are cached per policy
//! version and catalog snapshot, role, search_path and statement text. Anything that
//! cannot be analysed is denied (fail closed).

use std::borrow::Cow;
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
    cache: DecisionCache<Decided>,
}

impl Gate {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: ArcSwap::from_pointee(policy),
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
    }

    /// Decides SQL text (one Query or Parse message, possibly several statements).
    pub fn decide_sql(
        &self,
        session: &SessionPolicy,
        catalog: Option<&LoadedCatalog>,
        sql: &str,
    ) -> Decided {
        let policy = self.policy.load();
        let Some(catalog) = catalog else {
            return Decided {
                result: with_audit(Err(policy.deny_unanalysable(
                    &session.role,
                    "the database catalog is not loaded yet (pgward could not read it upstream)",
                    0,
                ))),
                statements: Arc::from(Vec::new()),
            };
        };
        // Statements that differ only in numbers share a decision (pgward-sql proves
        // numbers never change what a statement needs): `... WHERE id = 42` is analysed
        // once, not once per id, under its shape `... WHERE id = 0`. The text itself is
        // looked up first: a statement without numbers (`... WHERE id = $1`, what drivers
        // send) is its own shape, so a hit costs no scan of the text. That lookup can only
        // find the text's own entry or the shape entry equal to it, whose statements (the
        // text with numbers put back) share its decision.
        let exact = CacheKey {
            version: mix(policy.version(), catalog.generation),
            role: &session.role,
            search_path: &session.search_path,
            statement: sql,
        };
        if let Some(hit) = self.cache.get(&exact) {
            return hit;
        }
        let shape = pgward_sql::decision_shape(sql);
        let key = match &shape {
            // Numbers replaced: another key, maybe cached.
            Some(Cow::Owned(shape)) => CacheKey {
                statement: shape,
                ..exact
            },
            // The text is its shape, or has none: the miss above stands.
            Some(Cow::Borrowed(_)) | None => exact,
        };
        if matches!(shape, Some(Cow::Owned(_))) {
            if let Some(hit) = self.cache.get(&key) {
                return hit;
            }
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
}
