//! A bounded, concurrent cache of decisions, so a statement text seen before costs a hash
//! lookup instead of a parse. Keyed by everything the decision depends on: the policy
//! version, the role, the pinned search_path (name resolution) and the statement text.
//!
//! It must never return a decision made for a different key: entries are stored under a
//! hash, but the full key is stored too and compared on every hit, so a hash collision is
//! a miss, never a wrong Permit. That is also why the hash is foldhash (randomly seeded per
//! process, several times cheaper than SipHash on a statement's text) rather than a
//! DoS-resistant one: a map slot holds one entry, so colliding keys only replace each
//! other, which costs a re-analysis, as a cache filled with distinct statements does. The analyser's catalog is not part of the key: the proxy
//! must `clear()` the cache when it reloads the catalog.
//!
//! Eviction is deliberately simple: when the cache is full, an insert first drops about
//! one eighth of the entries (those whose hash falls in the next slice, round-robin).
//! Cheap, lock-per-shard, and good enough for a working set of repeated ORM statements.

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::decision::{Denial, Permit};

/// What a cached decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct CacheKey<'a> {
    /// [`Policy::version`](crate::Policy::version) of the policy that decides.
    pub version: u64,
    pub role: &'a str,
    /// The session's pinned search_path.
    pub search_path: &'a [String],
    /// The statement text exactly as received.
    pub statement: &'a str,
}

#[derive(Debug)]
struct Entry<V> {
    version: u64,
    role: Box<str>,
    search_path: Box<[String]>,
    statement: Box<str>,
    decision: V,
}

impl<V> Entry<V> {
    fn matches(&self, key: &CacheKey<'_>) -> bool {
        self.version == key.version
            && *self.role == *key.role
            && *self.search_path == *key.search_path
            && *self.statement == *key.statement
    }
}

/// The map's own hasher: its keys are already seeded hash values of the whole key
/// (`DecisionCache::hash`), so hashing them again would only cost a second pass.
#[derive(Debug, Default)]
struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are `u64`); any other input is folded in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Number of eviction slices: a full cache drops 1/EVICTION_SLICES of its entries.
const EVICTION_SLICES: u64 = 8;

/// The cached value is a decision by default; the proxy caches the decision together
/// with what it needs to trace it (`V` must be cheap to clone, e.g. hold an `Arc`).
#[derive(Debug)]
pub struct DecisionCache<V = Result<Permit, Denial>> {
    entries: DashMap<u64, Entry<V>, BuildHasherDefault<KeyHash>>,
    hasher: foldhash::fast::RandomState,
    capacity: usize,
    next_slice: AtomicU64,
}

impl<V: Clone> DecisionCache<V> {
    /// A cache holding at most `capacity` decisions (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        DecisionCache {
            entries: DashMap::default(),
            hasher: foldhash::fast::RandomState::default(),
            capacity,
            next_slice: AtomicU64::new(0),
        }
    }

    fn hash(&self, key: &CacheKey<'_>) -> u64 {
        self.hasher
            .hash_one((key.version, key.role, key.search_path, key.statement))
    }

    /// The cached decision for exactly this key.
    pub fn get(&self, key: &CacheKey<'_>) -> Option<V> {
        let entry = self.entries.get(&self.hash(key))?;
        entry.matches(key).then(|| entry.decision.clone())
    }

    pub fn insert(&self, key: &CacheKey<'_>, decision: V) {
        if self.capacity == 0 {
            return;
        }
        let hash = self.hash(key);
        // Every slice together is everything, so this loop ends with room to spare.
        for _ in 0..EVICTION_SLICES {
            if self.entries.len() < self.capacity || self.entries.contains_key(&hash) {
                break;
            }
            self.evict();
        }
        self.entries.insert(
            hash,
            Entry {
                version: key.version,
                role: key.role.into(),
                search_path: key.search_path.into(),
                statement: key.statement.into(),
                decision,
            },
        );
    }

    /// The cached decision, or `decide()`'s, which is then cached.
    pub fn get_or_insert_with(&self, key: &CacheKey<'_>, decide: impl FnOnce() -> V) -> V {
        if let Some(hit) = self.get(key) {
            return hit;
        }
        let decision = decide();
        self.insert(key, decision.clone());
        decision
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops everything (e.g. after the upstream catalog changed).
    pub fn clear(&self) {
        self.entries.clear();
    }

    fn evict(&self) {
        let slice = self.next_slice.fetch_add(1, Ordering::Relaxed) % EVICTION_SLICES;
        self.entries
            .retain(|hash, _| hash % EVICTION_SLICES != slice);
    }
}
