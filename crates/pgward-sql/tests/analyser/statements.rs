//! Statement kinds: transaction control, SET/SHOW, cursors, PREPARE, EXPLAIN, DDL, and
//! everything pgward refuses outright.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;
use common::*;
use pgward_sql::StatementKind as K;

#[test]
fn always_allowed_statements() {
    for (sql, kind) in [
        ("BEGIN", K::Transaction),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE", K::Transaction),
        ("START TRANSACTION READ ONLY", K::Transaction),
        ("COMMIT", K::Transaction),
        ("END", K::Transaction),
        ("ROLLBACK", K::Transaction),
        ("ABORT", K::Transaction),
        ("SAVEPOINT s1", K::Transaction),
        ("RELEASE SAVEPOINT s1", K::Transaction),
        ("ROLLBACK TO SAVEPOINT s1", K::Transaction),
        ("PREPARE TRANSACTION 'gid1'", K::Transaction),
        ("COMMIT PREPARED 'gid1'", K::Transaction),
        ("ROLLBACK PREPARED 'gid1'", K::Transaction),
        ("SHOW search_path", K::Show),
        ("SHOW ALL", K::Show),
        ("SET application_name = 'psql'", K::Set),
        ("SET TIME ZONE 'UTC'", K::Set),
        ("SET TimeZone TO 'Europe/Amsterdam'", K::Set),
        ("SET LOCAL statement_timeout = 5000", K::Set),
        ("SET statement_timeout TO DEFAULT", K::Set),
        ("SET extra_float_digits = 3", K::Set),
        ("SET DateStyle = 'ISO, MDY'", K::Set),
        ("SET client_min_messages TO warning", K::Set),
        ("SET client_encoding TO 'UTF8'", K::Set),
        ("SET client_encoding = 'LATIN1'", K::Set),
        ("SET NAMES 'UTF8'", K::Set),
        ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", K::Set),
        ("SET TRANSACTION READ ONLY", K::Set),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            K::Set,
        ),
        ("SET default_transaction_read_only = on", K::Set),
        ("RESET statement_timeout", K::Set),
        ("RESET TimeZone", K::Set),
        ("LISTEN orders_changed", K::Utility),
        ("UNLISTEN orders_changed", K::Utility),
        ("NOTIFY orders_changed, 'x'", K::Utility),
        ("DISCARD PLANS", K::Utility),
        ("DISCARD SEQUENCES", K::Utility),
        ("DISCARD TEMP", K::Utility),
        ("DEALLOCATE p1", K::Utility),
        ("DEALLOCATE ALL", K::Utility),
        ("FETCH 10 FROM c1", K::Cursor),
        ("FETCH NEXT FROM c1", K::Cursor),
        ("MOVE NEXT FROM c1", K::Cursor),
        ("MOVE FORWARD 5 IN c1", K::Cursor),
        ("CLOSE c1", K::Cursor),
        ("CLOSE ALL", K::Cursor),
        ("VALUES (1)", K::Values),
        ("SELECT 1", K::Values),
        ("SELECT id FROM orders", K::Select),
    ] {
        assert_eq!(kinds(sql), vec![kind], "{sql}");
        if !matches!(sql, "SELECT id FROM orders") {
            assert!(needs(sql).is_empty(), "{sql}: {:?}", needs(sql));
        }
    }
}

#[test]
fn inner_statements() {
    assert_eq!(
        kinds("PREPARE p1 (int) AS SELECT email FROM customers WHERE id = $1"),
        vec![K::Prepare { name: "p1".into() }]
    );
    has(
        "PREPARE p1 (int) AS SELECT email FROM customers WHERE id = $1",
        &["select public.customers.email"],
    );
    has(
        "PREPARE p2 AS UPDATE orders SET status = $1",
        &["update public.orders.status"],
    );
    assert_eq!(
        kinds("EXECUTE p1(1)"),
        vec![K::Execute { name: "p1".into() }]
    );
    has(
        "EXECUTE p1(pg_read_file('x'))",
        &["call pg_catalog.pg_read_file"],
    );
    assert_eq!(
        kinds("DECLARE c1 CURSOR FOR SELECT email FROM customers"),
        vec![K::DeclareCursor { name: "c1".into() }]
    );
    has(
        "DECLARE c1 CURSOR WITH HOLD FOR SELECT email FROM customers",
        &["select public.customers.email"],
    );
    assert_eq!(
        kinds("EXPLAIN SELECT email FROM customers"),
        vec![K::Explain]
    );
    has(
        "EXPLAIN ANALYZE SELECT email FROM customers",
        &["select public.customers.email"],
    );
    has(
        "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM orders",
        &["delete public.orders"],
    );
    err("EXPLAIN ANALYZE SELECT emial FROM customers", "emial");
    err("PREPARE p AS SET ROLE admin", "");
    err("DESCRIBE customers", "");
}

#[test]
fn call_and_ddl() {
    assert_eq!(kinds("CALL place_order(1, 2)"), vec![K::Call]);
    exact("CALL place_order(1, 2)", &["call public.place_order"]);
    has(
        "CALL public.place_order((SELECT max(id) FROM orders))",
        &["select public.orders.id"],
    );
    for sql in [
        "CREATE TABLE t (id int)",
        "CREATE TEMP TABLE t (id int)",
        "CREATE INDEX ON orders (status)",
        "CREATE VIEW v AS SELECT email FROM customers",
        "CREATE SCHEMA s",
        "CREATE SEQUENCE s1",
        "CREATE ROLE r",
        "CREATE EXTENSION dblink",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
        "ALTER TABLE orders ADD COLUMN x int",
        "ALTER ROLE r SUPERUSER",
        "DROP TABLE orders",
        "DROP FUNCTION f",
        "COMMENT ON TABLE orders IS 'x'",
        "GRANT SELECT ON customers TO public",
        "REVOKE SELECT ON customers FROM public",
        "GRANT admin TO me",
    ] {
        assert_eq!(kinds(sql), vec![K::Ddl], "{sql}");
        exact(sql, &["ddl"]);
    }
    has(
        "CREATE TABLE t AS SELECT email FROM customers",
        &["ddl", "select public.customers.email"],
    );
    has(
        "CREATE MATERIALIZED VIEW mv AS SELECT email FROM customers",
        &["ddl", "select public.customers.email"],
    );
}

#[test]
fn refused_statements() {
    err(
        "SET search_path = secret, public",
        "SET search_path is not allowed",
    );
    err("SET search_path TO DEFAULT", "search_path");
    err("SET LOCAL search_path = secret", "search_path");
    err(
        "SET standard_conforming_strings = off",
        "standard_conforming_strings",
    );
    err(
        "SET session_replication_role = replica",
        "session_replication_role",
    );
    err("SET role = admin", "role");
    err("SET ROLE admin", "SET ROLE is not allowed");
    err(
        "SET SESSION AUTHORIZATION admin",
        "SET SESSION AUTHORIZATION is not allowed",
    );
    err("RESET ALL", "RESET ALL is not allowed");
    err("RESET search_path", "RESET search_path is not allowed");
    err("RESET ROLE", "not allowed");
    err("RESET SESSION AUTHORIZATION", "not allowed");
    err("DISCARD ALL", "DISCARD ALL is not allowed");
    err("SET client_encoding = 'SJIS'", "not ASCII-safe");
    err("SET client_encoding TO 'BIG5'", "not ASCII-safe");
    err("SET client_encoding = GBK", "not ASCII-safe");
    err("SET client_encoding = 'UHC'", "not ASCII-safe");
    err("SET client_encoding = 'GB18030'", "not ASCII-safe");
    err("SET NAMES 'SJIS'", "not ASCII-safe");
    err("SET work_mem = '1GB'", "SET work_mem is not allowed");
    err("SET myapp.tenant = '1'", "not allowed");
    err("SET statement_timeout = pg_sleep(1)", "not supported");
    err("DO $$ BEGIN PERFORM 1; END $$", "DO is not allowed");
    err("do 'begin null; end'", "DO is not allowed");
    err("LOAD 'plpgsql'", "LOAD is not allowed");
    err("LOCK TABLE orders", "LOCK is not allowed");
    err("VACUUM orders", "VACUUM is not allowed");
    err("ANALYZE orders", "ANALYZE is not allowed");
    err("CLUSTER orders", "CLUSTER is not allowed");
    err("REINDEX TABLE orders", "REINDEX is not allowed");
    err(
        "ALTER SYSTEM SET work_mem = '1GB'",
        "ALTER SYSTEM is not allowed",
    );
    err("CHECKPOINT", "CHECKPOINT is not allowed");
    err("SHOW TABLES", "");
    err("SET TRANSACTION SNAPSHOT '0001'", "SNAPSHOT");
}

#[test]
fn multi_statement_strings() {
    assert_eq!(run("").unwrap(), vec![]);
    assert_eq!(
        run("  -- just a comment\n /* and another */ ;; ").unwrap(),
        vec![]
    );
    assert_eq!(
        kinds("BEGIN; SELECT id FROM orders; COMMIT"),
        vec![K::Transaction, K::Select, K::Transaction]
    );
    has(
        "SELECT id FROM orders; SELECT email FROM customers",
        &["select public.customers.email", "select public.orders.id"],
    );
    err("SELECT id FROM orders; SET ROLE admin", "SET ROLE");
    err("SELECT id FROM orders; SELEC 1", "parse error");
    err("SELECT id FROM orders; DO $$ $$", "DO is not allowed");
    // A semicolon inside a literal, comment or dollar quote does not split.
    assert_eq!(
        kinds("SELECT 'a;b'; SELECT $$;$$; SELECT 1 /* ; */"),
        vec![K::Values, K::Values, K::Values]
    );
    let out =
        run("SELECT id FROM orders WHERE note = 'secret' AND total > 10.5; SELECT $x$hidden$x$")
            .unwrap();
    assert_eq!(
        out[0].normalized,
        "SELECT id FROM orders WHERE note = ? AND total > ?"
    );
    assert_eq!(out[1].normalized, "SELECT ?");
}

#[test]
fn set_config_of_a_harmless_setting_is_a_set() {
    // asyncpg's introspection wrapper.
    lacks(
        "SELECT current_setting('jit') AS cur, set_config('jit', 'off', false) AS new",
        &["call pg_catalog.set_config"],
    );
    lacks(
        "SELECT set_config('jit', $1, false)",
        &["call pg_catalog.set_config"],
    );
    has(
        "SELECT set_config('search_path', 'secret', false)",
        &["call pg_catalog.set_config"],
    );
    has(
        "SELECT set_config('client_encoding', $1, false)",
        &["call pg_catalog.set_config"],
    );
    has(
        "SELECT set_config('client_encoding', 'SJIS', false)",
        &["call pg_catalog.set_config"],
    );
    has(
        "SELECT set_config(name, 'x', false) FROM pg_settings",
        &["call pg_catalog.set_config"],
    );
}

#[test]
fn superuser_only_settings_are_not_readable_by_name() {
    err("SELECT current_setting('data_directory')", "superuser-only");
    err("SELECT current_setting('HBA_FILE', true)", "superuser-only");
    has(
        "SELECT current_setting('jit')",
        &["call pg_catalog.current_setting"],
    );
}
