//! The decision cache: hits, misses on any key part, policy version changes, bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};

use pgward_policy::{CacheKey, Decision, DecisionCache};
use support::*;

fn key<'a>(version: u64, role: &'a str, path: &'a [String], sql: &'a str) -> CacheKey<'a> {
    CacheKey {
        version,
        role,
        search_path: path,
        statement: sql,
    }
}

#[test]
fn a_hit_returns_the_stored_decision_without_deciding_again() {
    let p = demo();
    let cache = DecisionCache::new(100);
    let path = vec!["public".to_string()];
    let calls = AtomicUsize::new(0);
    let decide = || {
        calls.fetch_add(1, Ordering::Relaxed);
        p.check("analyst", &[select([col("orders", "id")])])
    };
    let k = key(p.version(), "analyst", &path, "SELECT id FROM orders");
    let first = cache.get_or_insert_with(&k, decide).unwrap();
    let second = cache.get_or_insert_with(&k, decide).unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(first.role(), second.role());
    assert_eq!(second.decision(), Decision::Allow);
    assert_eq!(cache.len(), 1);

    // Denials are cached too, with their message.
    let k = key(p.version(), "analyst", &path, "SELECT email FROM customers");
    cache.insert(
        &k,
        p.check("analyst", &[select([col("customers", "email")])]),
    );
    assert!(cache
        .get(&k)
        .unwrap()
        .unwrap_err()
        .message()
        .ends_with("customers.email"));
}

#[test]
fn every_part_of_the_key_matters() {
    let cache = DecisionCache::new(100);
    let public = vec!["public".to_string()];
    let sales = vec!["sales".to_string()];
    let p = demo();
    let base = key(1, "analyst", &public, "SELECT 1");
    cache.insert(&base, p.check("analyst", &[]));
    assert!(cache.get(&base).is_some());
    assert!(
        cache.get(&key(2, "analyst", &public, "SELECT 1")).is_none(),
        "new policy version"
    );
    assert!(
        cache.get(&key(1, "support", &public, "SELECT 1")).is_none(),
        "other role"
    );
    assert!(
        cache.get(&key(1, "analyst", &sales, "SELECT 1")).is_none(),
        "other search_path"
    );
    assert!(
        cache.get(&key(1, "analyst", &[], "SELECT 1")).is_none(),
        "empty search_path"
    );
    assert!(
        cache
            .get(&key(1, "analyst", &public, "SELECT 1 "))
            .is_none(),
        "other text"
    );
    assert!(
        cache.get(&key(1, "analyst", &public, "select 1")).is_none(),
        "text is exact"
    );
}

#[test]
fn a_policy_reload_invalidates_through_the_version() {
    let old = policy("roles:\n  r: { tables: { t: { select: [a] } } }\n");
    let new = policy("roles:\n  r: { tables: { t: { select: [b] } } }\n");
    assert_ne!(old.version(), new.version());
    let cache = DecisionCache::new(10);
    let path = vec!["public".to_string()];
    let sql = "SELECT a FROM t";
    let decide = |p: &pgward_policy::Policy| p.check("r", &[select([col("t", "a")])]);
    assert!(cache
        .get_or_insert_with(&key(old.version(), "r", &path, sql), || decide(&old))
        .is_ok());
    assert!(cache
        .get_or_insert_with(&key(new.version(), "r", &path, sql), || decide(&new))
        .is_err());
}

#[test]
fn the_cache_stays_bounded() {
    let cache = DecisionCache::new(64);
    let p = demo();
    let path = vec!["public".to_string()];
    for i in 0..10_000 {
        let sql = format!("SELECT {i}");
        cache.insert(&key(1, "analyst", &path, &sql), p.check("analyst", &[]));
        assert!(cache.len() <= 64, "len {} after {i}", cache.len());
    }
    // The latest insert is always there.
    assert!(cache
        .get(&key(1, "analyst", &path, "SELECT 9999"))
        .is_some());
    assert_eq!(cache.capacity(), 64);
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn capacity_zero_disables_caching() {
    let cache = DecisionCache::new(0);
    let path: Vec<String> = Vec::new();
    cache.insert(&key(1, "r", &path, "x"), demo().check("nobody", &[]));
    assert!(cache.is_empty());
    assert!(cache.get(&key(1, "r", &path, "x")).is_none());
}

#[test]
fn audit_permits_come_from_cached_denials() {
    let p = demo();
    let cache = DecisionCache::new(10);
    let path = vec!["public".to_string()];
    let k = key(
        p.version(),
        "legacy_batch",
        &path,
        "SELECT email FROM customers",
    );
    cache.insert(
        &k,
        p.check("legacy_batch", &[select([col("customers", "email")])]),
    );
    let permit = cache
        .get(&k)
        .unwrap()
        .or_else(|d| d.audit_permit())
        .unwrap();
    assert_eq!(permit.decision(), Decision::WouldDeny);
}
