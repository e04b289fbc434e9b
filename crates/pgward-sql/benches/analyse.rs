//! Cold analysis (lex, parse, resolve) of typical ORM statements, and the decision shape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use pgward_sql::{analyse, decision_shape, lexed_shape, AnalyseContext, Catalog, RelKind};
use std::hint::black_box;

const STATEMENTS: &[&str] = &[
    "SELECT id, customer_id, total, status, created_at FROM orders WHERE id = $1",
    "SELECT \"orders\".\"id\", \"orders\".\"total\" FROM \"orders\" WHERE \"orders\".\"customer_id\" = $1 ORDER BY \"orders\".\"created_at\" DESC LIMIT 20",
    "SELECT count(*) FROM orders WHERE status = $1",
    "INSERT INTO orders (customer_id, total, status) VALUES ($1, $2, $3) RETURNING id",
    "UPDATE orders SET status = $1 WHERE id = $2",
    "DELETE FROM orders WHERE id = $1",
    "SELECT c.id, c.country, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.country",
    "SELECT * FROM products WHERE price > $1 ORDER BY price",
    "SELECT id FROM customers WHERE country IN ($1, $2, $3)",
    "BEGIN",
    "COMMIT",
    "SET application_name = 'rails'",
    "SELECT 1",
    "WITH recent AS (SELECT id, customer_id FROM orders WHERE created_at > now() - interval '1 day') SELECT count(*) FROM recent",
    "SELECT o.id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.country = $1)",
    "INSERT INTO orders (id, status) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status",
    "SELECT id, name, price, stock FROM products WHERE id = ANY($1)",
    "SELECT customer_id, total FROM order_totals ORDER BY total DESC LIMIT 10",
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'",
    "SELECT lower(email) FROM customers WHERE id = $1",
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
    c.add_relation(
        "public",
        "order_totals",
        RelKind::View,
        cols(&["customer_id", "total"]),
    );
    c
}

fn bench(c: &mut Criterion) {
    let catalog = catalog();
    let search_path = vec!["public".to_string()];
    let ctx = AnalyseContext {
        catalog: &catalog,
        search_path: &search_path,
    };
    for sql in STATEMENTS {
        analyse(sql, &ctx).unwrap();
    }
    c.bench_function("analyse 20 ORM statements (per statement)", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                for sql in STATEMENTS {
                    black_box(analyse(black_box(sql), &ctx).unwrap());
                }
            }
            start.elapsed() / STATEMENTS.len() as u32
        })
    });
}

type Shape = for<'a> fn(&'a str) -> Option<std::borrow::Cow<'a, str>>;

/// The decision cache's key for pgbench's statements (simple protocol: literals inline),
/// by the byte scanner the proxy uses and by the lexer it falls back to.
fn shape(c: &mut Criterion) {
    const PGBENCH: [&str; 3] = [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
        "UPDATE pgbench_accounts SET abalance = abalance + -4231 WHERE aid = 48213;",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48213, -4231, CURRENT_TIMESTAMP);",
    ];
    for (name, f) in [
        ("decision shape, scanner", decision_shape as Shape),
        ("decision shape, lexer", lexed_shape as Shape),
    ] {
        c.bench_function(
            &format!("{name} (3 pgbench statements, per statement)"),
            |b| {
                b.iter_custom(|iters| {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        for sql in PGBENCH {
                            black_box(f(black_box(sql)));
                        }
                    }
                    start.elapsed() / PGBENCH.len() as u32
                })
            },
        );
    }
}

criterion_group!(benches, bench, shape);
criterion_main!(benches);
