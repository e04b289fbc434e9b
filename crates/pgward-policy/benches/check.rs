//! analyse + check of 20 typical ORM statements for the example `app` and `support` roles:
//! cold (lex, parse, resolve, decide every time) and warm (a DecisionCache hit). Targets
//! (issue 4): cold median <= 50 µs per statement, cache hit <= 1 µs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use pgward_policy::{CacheKey, DecisionCache, Policy};
use pgward_sql::{analyse, AnalyseContext, Catalog, RelKind};

/// (role, statement): what an ORM sends, with bind parameters.
const STATEMENTS: &[(&str, &str)] = &[
    ("app", "SELECT id, customer_id, total, status, created_at FROM orders WHERE id = $1"),
    ("app", "SELECT \"orders\".\"id\", \"orders\".\"total\" FROM \"orders\" WHERE \"orders\".\"customer_id\" = $1 ORDER BY \"orders\".\"created_at\" DESC LIMIT 20"),
    ("app", "SELECT count(*) FROM orders WHERE status = $1"),
    ("app", "INSERT INTO orders (customer_id, total, status) VALUES ($1, $2, $3) RETURNING id"),
    ("app", "UPDATE orders SET status = $1 WHERE id = $2"),
    ("app", "DELETE FROM orders WHERE id = $1"),
    ("support", "SELECT c.id, c.country, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.country"),
    ("support", "SELECT * FROM products WHERE price > $1 ORDER BY price"),
    ("support", "SELECT id, name, email FROM customers WHERE country IN ($1, $2, $3)"),
    ("app", "BEGIN"),
    ("app", "COMMIT"),
    ("app", "SET application_name = 'rails'"),
    ("app", "SELECT 1"),
    ("support", "WITH recent AS (SELECT id, customer_id FROM orders WHERE created_at > now() - interval '1 day') SELECT count(*) FROM recent"),
    ("support", "SELECT o.id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.country = $1)"),
    ("app", "INSERT INTO orders (id, status) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status"),
    ("support", "SELECT id, name, price, stock FROM products WHERE id = ANY($1)"),
    ("support", "UPDATE orders SET status = $1 WHERE id = $2 RETURNING id, status"),
    ("support", "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"),
    ("support", "SELECT lower(email) FROM customers WHERE id = $1"),
];

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    let cols = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    c.add_relation(
        "public",
        "customers",
        RelKind::Table,
        cols(&["id", "name", "email", "phone", "country", "created_at"]),
    );
    c.add_relation(
        "public",
        "orders",
        RelKind::Table,
        cols(&["id", "customer_id", "total", "status", "note", "created_at"]),
    );
    c.add_relation(
        "public",
        "products",
        RelKind::Table,
        cols(&["id", "name", "price", "stock"]),
    );
    c
}

fn policy() -> Policy {
    Policy::load_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")).unwrap()
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let catalog = catalog();
    let search_path = vec!["public".to_string()];
    let ctx = AnalyseContext {
        catalog: &catalog,
        search_path: &search_path,
    };
    // Every statement must be allowed: a benchmark of denials would measure the wrong path.
    for (role, sql) in STATEMENTS {
        let statements = analyse(sql, &ctx).unwrap();
        assert!(policy.check(role, &statements).is_ok(), "{role}: {sql}");
    }
    let decide = |role: &str, sql: &str| match analyse(sql, &ctx) {
        Ok(statements) => policy.check(role, &statements),
        Err(err) => Err(policy.deny_unanalysable(role, err.to_string(), 0)),
    };

    let mut cold = c.benchmark_group("check_cold");
    for (i, (role, sql)) in STATEMENTS.iter().enumerate() {
        cold.bench_function(format!("{i:02}"), |b| {
            b.iter(|| decide(black_box(role), black_box(sql)).is_ok())
        });
    }
    cold.finish();

    let cache = DecisionCache::new(10_000);
    let key = |role: &'static str, sql: &'static str| CacheKey {
        version: policy.version(),
        role,
        search_path: &search_path,
        statement: sql,
    };
    for (role, sql) in STATEMENTS {
        cache.insert(&key(role, sql), decide(role, sql));
    }
    let mut warm = c.benchmark_group("check_warm");
    for (i, (role, sql)) in STATEMENTS.iter().enumerate() {
        warm.bench_function(format!("{i:02}"), |b| {
            b.iter(|| {
                cache
                    .get_or_insert_with(&key(black_box(role), black_box(sql)), || decide(role, sql))
                    .is_ok()
            })
        });
    }
    warm.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
