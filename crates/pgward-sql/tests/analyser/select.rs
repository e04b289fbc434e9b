//! Reads: what SELECT statements need, clause by clause, and the hiding attacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;
use common::*;

#[test]
fn simple_reads() {
    exact(
        "SELECT id FROM orders",
        &["select public.orders.id", "select any public.orders"],
    );
    exact(
        "SELECT id, total FROM public.orders",
        &[
            "select public.orders.id",
            "select public.orders.total",
            "select any public.orders",
        ],
    );
    exact("SELECT 1 FROM orders", &["select any public.orders"]);
    exact(
        "SELECT count(*) FROM orders",
        &["select any public.orders", "call pg_catalog.count"],
    );
    exact("SELECT FROM orders", &["select any public.orders"]);
    has("SELECT o.id FROM orders o", &["select public.orders.id"]);
    has("SELECT o.id FROM orders AS o", &["select public.orders.id"]);
    has("SELECT orders.id FROM orders", &["select public.orders.id"]);
    has(
        "SELECT public.orders.id FROM orders",
        &["select public.orders.id"],
    );
    has("select ID from ORDERS", &["select public.orders.id"]);
    has(
        "SELECT \"id\" FROM \"orders\"",
        &["select public.orders.id"],
    );
    has(
        "SELECT customer_id, total FROM order_totals",
        &["select public.order_totals.total"],
    );
    has(
        "SELECT id, ssn FROM secret.customers",
        &["select secret.customers.ssn"],
    );
}

#[test]
fn every_clause_reads() {
    has(
        "SELECT id FROM customers WHERE email = 'x'",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers ORDER BY email",
        &["select public.customers.email"],
    );
    has(
        "SELECT country FROM customers GROUP BY country, email",
        &["select public.customers.email"],
    );
    has(
        "SELECT country FROM customers GROUP BY country HAVING max(email) > 'a'",
        &["select public.customers.email", "call pg_catalog.max"],
    );
    has(
        "SELECT sum(total) FILTER (WHERE note IS NULL) FROM orders",
        &["select public.orders.note"],
    );
    has(
        "SELECT row_number() OVER (PARTITION BY email ORDER BY phone) FROM customers",
        &[
            "select public.customers.email",
            "select public.customers.phone",
            "call pg_catalog.row_number",
        ],
    );
    has(
        "SELECT rank() OVER w FROM customers WINDOW w AS (ORDER BY email)",
        &["select public.customers.email"],
    );
    has(
        "SELECT DISTINCT ON (email) id FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers LIMIT (SELECT count(*) FROM orders)",
        &["select any public.orders"],
    );
    has(
        "SELECT string_agg(name, ',' ORDER BY email) FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders",
        &["select public.orders.total"],
    );
    has(
        "SELECT CASE WHEN email LIKE '%@x' THEN 1 ELSE 0 END FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers WHERE email IS NOT NULL",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers WHERE phone BETWEEN 'a' AND email",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers WHERE email IN ('a', 'b')",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers WHERE (email, phone) = ('a', 'b')",
        &["select public.customers.email"],
    );
    has(
        "SELECT lower(email)::text FROM customers",
        &["select public.customers.email", "call pg_catalog.lower"],
    );
    has(
        "SELECT substring(email from 2 for 3) FROM customers",
        &["select public.customers.email", "call pg_catalog.substring"],
    );
    has(
        "SELECT position('@' in email) FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT trim(both ' ' from email) FROM customers",
        &["call pg_catalog.btrim"],
    );
    has(
        "SELECT extract(year from created_at) FROM customers",
        &[
            "select public.customers.created_at",
            "call pg_catalog.extract",
        ],
    );
    has(
        "SELECT created_at AT TIME ZONE 'UTC' FROM orders",
        &["select public.orders.created_at"],
    );
    has(
        "SELECT id FROM orders WHERE total > ALL (SELECT price FROM products)",
        &["select public.products.price"],
    );
    has(
        "SELECT ARRAY[email, phone] FROM customers",
        &["select public.customers.phone"],
    );
    has(
        "SELECT (ARRAY[email])[1] FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT email COLLATE \"C\" FROM customers",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers WHERE email ~ '^a' OR email ILIKE 'b%'",
        &["select public.customers.email"],
    );
    has(
        "SELECT id FROM customers FETCH FIRST 3 ROWS ONLY",
        &["select public.customers.id"],
    );
    has(
        "SELECT id FROM customers OFFSET 2",
        &["select public.customers.id"],
    );
}

#[test]
fn denied_columns_hidden_in_clauses() {
    // Each statement outputs only allowed columns but reads email somewhere.
    for sql in [
        "SELECT id FROM customers WHERE email LIKE 'a%'",
        "SELECT id FROM customers ORDER BY email",
        "SELECT c.id FROM customers c JOIN orders o ON o.note = c.email",
        "SELECT id, count(*) OVER (PARTITION BY email) FROM customers",
        "SELECT max(length(email)) FROM customers",
        "SELECT id FROM customers WHERE EXISTS (SELECT 1 WHERE email = 'x')",
        "SELECT (SELECT email) FROM customers",
        "WITH x AS (SELECT email FROM customers) SELECT 1",
        "WITH x AS (SELECT email AS e FROM customers) SELECT count(*) FROM x",
        "SELECT id FROM (SELECT id, email FROM customers) s",
        "SELECT 1 FROM customers WHERE false AND email = 'x'",
        "SELECT id FROM customers GROUP BY id HAVING bool_or(email = 'x')",
        "SELECT id FROM customers UNION SELECT length(email) FROM customers",
        "SELECT s.n FROM customers c, LATERAL (SELECT c.email AS n) s",
        "SELECT id FROM customers c WHERE c.email IN (SELECT note FROM orders)",
        "SELECT 1 FROM customers HAVING min(email) IS NOT NULL",
        "SELECT id FROM customers WHERE email IS DISTINCT FROM phone",
    ] {
        has(sql, &["select public.customers.email"]);
    }
}

#[test]
fn star_and_whole_row() {
    let all_customers = [
        "select public.customers.id",
        "select public.customers.name",
        "select public.customers.email",
        "select public.customers.phone",
        "select public.customers.country",
        "select public.customers.created_at",
    ];
    for sql in [
        "SELECT * FROM customers",
        "SELECT c.* FROM customers c",
        "SELECT customers.* FROM customers",
        "SELECT c FROM customers c",
        "SELECT row_to_json(c) FROM customers c",
        "SELECT to_jsonb(customers) FROM customers",
        "SELECT count(c.*) FROM customers c",
        "TABLE customers",
        "SELECT (c).email FROM customers c",
        "SELECT * FROM customers NATURAL JOIN orders",
        "SELECT 1 FROM customers NATURAL JOIN orders",
        "SELECT x FROM (SELECT * FROM customers) x",
        "SELECT * FROM (SELECT * FROM customers) s",
        "SELECT * FROM orders, customers",
        "COPY customers TO STDOUT",
    ] {
        has(sql, &all_customers);
    }
    exact(
        "SELECT * FROM products",
        &[
            "select any public.products",
            "select public.products.id",
            "select public.products.name",
            "select public.products.price",
            "select public.products.stock",
        ],
    );
}

#[test]
fn joins() {
    has(
        "SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id",
        &[
            "select public.orders.customer_id",
            "select public.customers.id",
            "select any public.orders",
            "select any public.customers",
        ],
    );
    has(
        "SELECT c.name FROM customers c LEFT JOIN orders o ON o.customer_id = c.id",
        &["select public.orders.customer_id"],
    );
    has(
        "SELECT 1 FROM customers c RIGHT OUTER JOIN orders o ON true",
        &["select any public.orders"],
    );
    has(
        "SELECT 1 FROM customers c FULL JOIN orders o ON c.id = o.id",
        &["select public.orders.id"],
    );
    has(
        "SELECT 1 FROM customers CROSS JOIN products",
        &["select any public.products"],
    );
    has(
        "SELECT id FROM customers JOIN orders USING (id)",
        &["select public.customers.id", "select public.orders.id"],
    );
    has(
        "SELECT created_at FROM customers JOIN orders USING (id, created_at)",
        &[
            "select public.customers.created_at",
            "select public.orders.created_at",
        ],
    );
    has(
        "SELECT j.email FROM (customers JOIN orders USING (id)) AS j",
        &["select public.customers.email"],
    );
    has(
        "SELECT j.* FROM (customers c JOIN orders o ON c.id = o.customer_id) AS j",
        &["select public.orders.note", "select public.customers.phone"],
    );
    has("SELECT 1 FROM (customers c JOIN orders o ON c.id = o.customer_id) JOIN products p ON p.id = o.id", &["select public.products.id"]);
    err("SELECT id FROM customers JOIN orders ON true", "ambiguous");
    err("SELECT created_at FROM customers, orders", "ambiguous");
    err("SELECT 1 FROM customers JOIN orders USING (email)", "USING");
    err(
        "SELECT 1 FROM customers c JOIN orders o ON c.id = x.id",
        "missing FROM-clause entry",
    );
}

#[test]
fn subqueries_and_ctes() {
    has("SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE country = 'NL')", &["select public.customers.country"]);
    has(
        "SELECT id FROM orders o WHERE EXISTS (SELECT FROM customers c WHERE c.id = o.customer_id)",
        &[
            "select public.customers.id",
            "select public.orders.customer_id",
        ],
    );
    has(
        "SELECT (SELECT max(total) FROM orders o WHERE o.customer_id = c.id) FROM customers c",
        &["select public.orders.total"],
    );
    has(
        "SELECT id FROM orders WHERE total = ANY (SELECT price FROM products)",
        &["select public.products.price"],
    );
    has("SELECT * FROM customers c, LATERAL (SELECT total FROM orders o WHERE o.customer_id = c.id) t", &["select public.orders.total"]);
    has(
        "WITH big AS (SELECT customer_id FROM orders WHERE total > 100) SELECT count(*) FROM big",
        &["select public.orders.total"],
    );
    has(
        "WITH a AS (SELECT id FROM customers), b AS (SELECT id FROM a) SELECT * FROM b",
        &["select public.customers.id"],
    );
    has("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r", &[]);
    has("WITH RECURSIVE r AS (SELECT id FROM customers UNION SELECT o.customer_id FROM orders o JOIN r ON r.id = o.id) SELECT * FROM r", &["select public.orders.customer_id"]);
    has(
        "WITH d AS (DELETE FROM orders WHERE status = 'x' RETURNING id) SELECT count(*) FROM d",
        &[
            "delete public.orders",
            "select public.orders.status",
            "select public.orders.id",
        ],
    );
    has(
        "WITH u AS (UPDATE orders SET status = 'y' RETURNING *) SELECT 1",
        &["update public.orders.status", "select public.orders.note"],
    );
    has(
        "WITH i AS (INSERT INTO orders (id) VALUES (1) RETURNING id) SELECT * FROM i",
        &["insert public.orders.id", "select public.orders.id"],
    );
    // A CTE named like a table shadows it.
    exact(
        "WITH customers AS (SELECT 1 AS id) SELECT id FROM customers",
        &[],
    );
    has(
        "WITH x AS (SELECT 1 AS a) SELECT id FROM public.customers, x",
        &["select public.customers.id"],
    );
    has("SELECT v.column1 FROM (VALUES (1), (2)) AS v", &[]);
    has("SELECT a FROM (VALUES (1, 2)) AS v(a, b)", &[]);
    err(
        "SELECT email FROM (SELECT id FROM customers) s",
        "column \"email\" does not exist",
    );
    err(
        "WITH x AS (SELECT id FROM customers) SELECT email FROM x",
        "does not exist",
    );
}

#[test]
fn set_operations_and_values() {
    has(
        "SELECT id FROM customers UNION SELECT id FROM orders",
        &["select public.orders.id", "select public.customers.id"],
    );
    has(
        "SELECT id FROM customers INTERSECT SELECT customer_id FROM orders",
        &["select public.orders.customer_id"],
    );
    has(
        "SELECT id FROM customers EXCEPT ALL SELECT customer_id FROM orders ORDER BY id",
        &["select public.customers.id"],
    );
    exact("VALUES (1, 'a'), (2, 'b')", &[]);
    exact("SELECT 1", &[]);
    exact("SELECT now()", &["call pg_catalog.now"]);
    exact("SELECT current_user, current_date, CURRENT_TIMESTAMP", &[]);
    has(
        "SELECT coalesce(email, phone) FROM customers",
        &["call pg_catalog.coalesce", "select public.customers.phone"],
    );
    has(
        "SELECT nullif(email, ''), greatest(1, 2) FROM customers",
        &["call pg_catalog.nullif", "call pg_catalog.greatest"],
    );
    has(
        "SELECT ROW(email, phone) FROM customers",
        &["select public.customers.email"],
    );
    lacks("SELECT ROW(1, 2)", &["call pg_catalog.row"]);
    has(
        "SELECT ARRAY(SELECT email FROM customers)",
        &["select public.customers.email"],
    );
}

#[test]
fn order_by_outputs_and_locks() {
    exact(
        "SELECT email AS e FROM customers ORDER BY e",
        &[
            "select public.customers.email",
            "select any public.customers",
        ],
    );
    exact(
        "SELECT id FROM customers ORDER BY 1",
        &["select public.customers.id", "select any public.customers"],
    );
    has(
        "SELECT country AS c, count(*) FROM customers GROUP BY c",
        &["select public.customers.country"],
    );
    has(
        "SELECT id FROM orders FOR UPDATE",
        &["update any public.orders"],
    );
    has(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id FOR SHARE OF o",
        &["update any public.orders"],
    );
    lacks(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id FOR UPDATE OF o",
        &["update any public.customers"],
    );
    err(
        "SELECT * FROM (SELECT id FROM orders) s FOR UPDATE",
        "FOR UPDATE",
    );
}

#[test]
fn system_columns() {
    exact(
        "SELECT ctid FROM orders",
        &["select public.orders.ctid", "select any public.orders"],
    );
    has(
        "SELECT xmin, xmax, cmin, cmax, tableoid FROM orders",
        &["select public.orders.xmin", "select public.orders.tableoid"],
    );
    err("SELECT ctid FROM order_totals", "does not exist");
}

#[test]
fn functions_resolve() {
    has(
        "SELECT lower(name) FROM customers",
        &["call pg_catalog.lower"],
    );
    has(
        "SELECT pg_catalog.lower(name) FROM customers",
        &["call pg_catalog.lower"],
    );
    has("SELECT public.place_order(1)", &["call public.place_order"]);
    has("SELECT place_order(1)", &["call public.place_order"]);
    has("SELECT unknown_fn(1)", &["call pg_catalog.unknown_fn"]);
    has(
        "SELECT query_to_xml('select * from secret.customers', true, true, '')",
        &["call pg_catalog.query_to_xml"],
    );
    has(
        "SELECT * FROM ts_stat('SELECT to_tsvector(ssn) FROM secret.customers')",
        &["call pg_catalog.ts_stat"],
    );
    has(
        "SELECT pg_read_file('/etc/passwd')",
        &["call pg_catalog.pg_read_file"],
    );
    has("SELECT pg_ls_dir('.')", &["call pg_catalog.pg_ls_dir"]);
    has(
        "SELECT lo_import('/etc/passwd')",
        &["call pg_catalog.lo_import"],
    );
    has("SELECT lo_get(16400)", &["call pg_catalog.lo_get"]);
    has(
        "SELECT set_config('search_path', 'secret', false)",
        &["call pg_catalog.set_config"],
    );
    has("SELECT pg_sleep(10)", &["call pg_catalog.pg_sleep"]);
    has(
        "SELECT nextval('orders_id_seq')",
        &["call pg_catalog.nextval"],
    );
    has(
        "SELECT dblink('host=x', 'select 1')",
        &["call pg_catalog.dblink"],
    );
    has(
        "SELECT pg_terminate_backend(1)",
        &["call pg_catalog.pg_terminate_backend"],
    );
    has(
        "SELECT \"lower\"(name) FROM customers",
        &["call pg_catalog.lower"],
    );
    has(
        "SELECT LOWER(name) FROM customers",
        &["call pg_catalog.lower"],
    );
    has(
        "SELECT * FROM generate_series(1, 3) g WHERE g > 1",
        &["call pg_catalog.generate_series"],
    );
    has(
        "SELECT g.x FROM generate_series(1, 3) AS g(x)",
        &["call pg_catalog.generate_series"],
    );
    has(
        "SELECT * FROM customers c, LATERAL generate_series(1, c.id) n",
        &["select public.customers.id"],
    );
    has(
        "SELECT key, value FROM json_each('{}')",
        &["call pg_catalog.json_each"],
    );
    has(
        "SELECT u FROM unnest(ARRAY[1,2]) AS u",
        &["call pg_catalog.unnest"],
    );
    has(
        "SELECT * FROM unnest(ARRAY[1,2]) WITH ORDINALITY AS u(x, n)",
        &["call pg_catalog.unnest"],
    );
    has(
        "SELECT current_setting('search_path')",
        &["call pg_catalog.current_setting"],
    );
    err("SELECT a.b.c.d(1)", "function name");
}

#[test]
fn catalog_relations() {
    has(
        "SELECT relname FROM pg_class",
        &["select pg_catalog.pg_class.relname"],
    );
    has(
        "SELECT relname FROM pg_catalog.pg_class",
        &["select pg_catalog.pg_class.relname"],
    );
    has(
        "SELECT * FROM pg_namespace",
        &["select pg_catalog.pg_namespace.nspname"],
    );
    has(
        "SELECT table_name FROM information_schema.tables",
        &["select information_schema.tables.table_name"],
    );
    has(
        "SELECT * FROM pg_stats",
        &["select pg_catalog.pg_stats.most_common_vals"],
    );
    has("SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE pg_table_is_visible(c.oid)", &["call pg_catalog.pg_table_is_visible", "select pg_catalog.pg_namespace.oid"]);
    has(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute",
        &["call pg_catalog.format_type"],
    );
    err("SELECT * FROM tables", "does not exist");
}

#[test]
fn resolution_errors() {
    err(
        "SELECT emial FROM customers",
        "column \"emial\" does not exist in public.customers",
    );
    err(
        "SELECT id FROM custmers",
        "relation \"custmers\" does not exist",
    );
    err(
        "SELECT id FROM nope.customers",
        "relation \"nope.customers\" does not exist",
    );
    err("SELECT x.id FROM customers c", "missing FROM-clause entry");
    err(
        "SELECT customers.id FROM customers c",
        "missing FROM-clause entry",
    );
    err(
        "SELECT c.nope FROM customers c",
        "does not exist in public.customers",
    );
    err(
        "SELECT db.public.customers.id FROM customers",
        "column reference",
    );
    err("SELECT id FROM other_db.public.customers", "cross-database");
    err("SELECT *", "no tables");
    err("SELECT \"Email\" FROM customers", "does not exist");
    err("SELECT * INTO newtab FROM customers", "SELECT INTO");
}

#[test]
fn psql_operator_syntax_is_allowed_only_for_reviewed_pg_catalog_operators() {
    has(
        "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(customers)$' COLLATE pg_catalog.default",
        &["select pg_catalog.pg_class.relname"],
    );
    err("SELECT 1 WHERE 'a' OPERATOR(public.~) 'b'", "operator");
    err(
        "SELECT 1 WHERE 'a' OPERATOR(pg_catalog.###) 'b'",
        "operator",
    );
}
