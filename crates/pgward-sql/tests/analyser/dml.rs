//! Writes: INSERT, ON CONFLICT, UPDATE ... FROM, DELETE ... USING, MERGE, COPY, TRUNCATE.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;
use common::*;

#[test]
fn insert() {
    exact(
        "INSERT INTO orders (id, total) VALUES (1, 2)",
        &["insert public.orders.id", "insert public.orders.total"],
    );
    exact(
        "INSERT INTO orders VALUES (1, 2)",
        &[
            "insert public.orders.id",
            "insert public.orders.customer_id",
        ],
    );
    exact(
        "INSERT INTO orders (status) VALUES ($1), ($2)",
        &["insert public.orders.status"],
    );
    exact(
        "INSERT INTO orders (id, note) VALUES (DEFAULT, 'x')",
        &["insert public.orders.id", "insert public.orders.note"],
    );
    exact(
        "INSERT INTO orders DEFAULT VALUES",
        &["insert any public.orders"],
    );
    has(
        "INSERT INTO orders (id) SELECT id FROM customers",
        &["insert public.orders.id", "select public.customers.id"],
    );
    has(
        "INSERT INTO orders SELECT * FROM orders",
        &["insert public.orders.note", "select public.orders.note"],
    );
    has(
        "INSERT INTO orders (note) VALUES ((SELECT email FROM customers LIMIT 1))",
        &["select public.customers.email"],
    );
    has(
        "INSERT INTO orders (id) VALUES (1) RETURNING note",
        &["select public.orders.note"],
    );
    has(
        "INSERT INTO orders AS o (id) VALUES (1) RETURNING o.*",
        &["select public.orders.total"],
    );
    err(
        "INSERT INTO orders (nope) VALUES (1)",
        "column \"nope\" does not exist in public.orders",
    );
    err(
        "INSERT INTO orders VALUES (1,2,3,4,5,6,7)",
        "more expressions",
    );
    err("INSERT INTO nope VALUES (1)", "does not exist");
    // A CTE name is not an INSERT target.
    err(
        "WITH orders AS (SELECT 1) INSERT INTO orders (nope) VALUES (1)",
        "does not exist in public.orders",
    );
}

#[test]
fn on_conflict() {
    exact(
        "INSERT INTO orders (id, status) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status",
        &["insert public.orders.id", "insert public.orders.status", "select public.orders.id", "update public.orders.status", "select public.orders.status"],
    );
    has("INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET note = orders.note || 'x' WHERE orders.total > 0", &["select public.orders.total", "select public.orders.note", "update public.orders.note"]);
    has(
        "INSERT INTO orders (id) VALUES (1) ON CONFLICT DO NOTHING",
        &["insert public.orders.id"],
    );
    has(
        "INSERT INTO orders (id) VALUES (1) ON CONFLICT ON CONSTRAINT orders_pkey DO NOTHING",
        &["insert public.orders.id"],
    );
    err("INSERT INTO orders (id) VALUES (1) ON CONFLICT ON CONSTRAINT orders_pkey DO UPDATE SET note = 'x'", "ON CONSTRAINT");
    has("INSERT INTO orders AS o (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET total = o.total + excluded.total", &["update public.orders.total", "select public.orders.total"]);
}

#[test]
fn update() {
    exact(
        "UPDATE orders SET status = 'x'",
        &["update public.orders.status"],
    );
    exact(
        "UPDATE orders SET status = 'x' WHERE id = 1",
        &["update public.orders.status", "select public.orders.id"],
    );
    has(
        "UPDATE orders SET note = note || 'x'",
        &["select public.orders.note", "update public.orders.note"],
    );
    has(
        "UPDATE orders o SET status = 'x' WHERE o.customer_id = 3 RETURNING o.total",
        &[
            "select public.orders.total",
            "select public.orders.customer_id",
        ],
    );
    has(
        "UPDATE orders SET (status, note) = ('a', 'b')",
        &["update public.orders.note", "update public.orders.status"],
    );
    has(
        "UPDATE orders SET note = c.email FROM customers c WHERE c.id = orders.customer_id",
        &[
            "select public.customers.email",
            "select any public.customers",
            "update public.orders.note",
        ],
    );
    has(
        "UPDATE orders SET total = DEFAULT",
        &["update public.orders.total"],
    );
    has(
        "UPDATE orders SET status = (SELECT max(email) FROM customers)",
        &["select public.customers.email"],
    );
    err(
        "UPDATE orders SET nope = 1",
        "does not exist in public.orders",
    );
    err(
        "UPDATE orders SET status = 1 WHERE CURRENT OF c",
        "parse error",
    );
}

#[test]
fn delete_and_truncate() {
    exact("DELETE FROM orders", &["delete public.orders"]);
    exact(
        "DELETE FROM orders WHERE id = 1",
        &["delete public.orders", "select public.orders.id"],
    );
    has(
        "DELETE FROM orders o USING customers c WHERE c.id = o.customer_id AND c.email = 'x'",
        &["select public.customers.email", "delete public.orders"],
    );
    has(
        "DELETE FROM orders RETURNING *",
        &["select public.orders.note", "delete public.orders"],
    );
    exact("TRUNCATE orders", &["truncate public.orders"]);
    exact(
        "TRUNCATE TABLE orders, products RESTART IDENTITY",
        &["truncate public.orders", "truncate public.products"],
    );
    err("TRUNCATE orders CASCADE", "CASCADE");
    err("TRUNCATE nope", "does not exist");
}

#[test]
fn merge() {
    has(
        "MERGE INTO orders o USING customers c ON o.customer_id = c.id \
         WHEN MATCHED AND c.email = 'x' THEN UPDATE SET note = c.name \
         WHEN NOT MATCHED THEN INSERT (id, customer_id) VALUES (c.id, c.id)",
        &[
            "select public.customers.email",
            "update public.orders.note",
            "insert public.orders.customer_id",
            "select public.orders.customer_id",
        ],
    );
    has(
        "MERGE INTO orders o USING customers c ON o.id = c.id WHEN MATCHED THEN DELETE",
        &["delete public.orders"],
    );
    has("MERGE INTO orders o USING (SELECT id FROM customers) s ON o.id = s.id WHEN MATCHED THEN DO NOTHING", &["select public.customers.id"]);
}

#[test]
fn copy() {
    exact(
        "COPY orders (id, total) TO STDOUT",
        &[
            "select any public.orders",
            "select public.orders.id",
            "select public.orders.total",
        ],
    );
    has(
        "COPY orders TO STDOUT WITH (FORMAT csv, HEADER true)",
        &["select public.orders.note"],
    );
    has(
        "COPY (SELECT email FROM customers) TO STDOUT",
        &["select public.customers.email"],
    );
    exact(
        "COPY orders (id, note) FROM STDIN",
        &["insert public.orders.id", "insert public.orders.note"],
    );
    has(
        "COPY orders FROM STDIN",
        &["insert public.orders.created_at"],
    );
    err(
        "COPY orders TO '/tmp/x'",
        "COPY to or from a file or program is not allowed",
    );
    err("COPY orders FROM '/etc/passwd'", "file or program");
    err("COPY orders TO PROGRAM 'curl evil'", "file or program");
    err("COPY (SELECT 1) TO PROGRAM 'sh'", "file or program");
    err("COPY orders (nope) TO STDOUT", "does not exist");
    // The data of COPY FROM STDIN does not hide a following statement.
    has(
        "COPY orders (id) FROM STDIN; SELECT email FROM customers",
        &["select public.customers.email"],
    );
}
