//! `Catalog::from_create_tables`, and hostile nesting.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;
use pgward_sql::{analyse, AnalyseContext, Catalog, RelKind};

#[test]
fn schema_file_builds_the_catalog() {
    let c = Catalog::from_create_tables(
        "CREATE SCHEMA secret;\n\
         CREATE TABLE customers (id bigint PRIMARY KEY, \"Name\" text, email text);\n\
         CREATE TABLE secret.keys (id int, k bytea);\n\
         CREATE VIEW v AS SELECT id, email AS mail, c.\"Name\" FROM customers c;\n\
         CREATE INDEX ON customers (email);\n\
         CREATE FUNCTION public.place_order(int) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
    )
    .unwrap();
    let customers = c.relation("public", "customers").unwrap();
    assert_eq!(customers.columns, vec!["id", "Name", "email"]);
    assert_eq!(
        c.relation("secret", "keys").unwrap().columns,
        vec!["id", "k"]
    );
    let v = c.relation("public", "v").unwrap();
    assert_eq!(v.kind, RelKind::View);
    assert_eq!(v.columns, vec!["id", "mail", "Name"]);
    assert!(c.has_schema("secret"));
    assert!(c.has_function("public", "place_order"));
}

#[test]
fn schema_file_errors() {
    assert!(Catalog::from_create_tables("CREATE VIEW v AS SELECT lower(x) FROM t").is_err());
    assert!(Catalog::from_create_tables("INSERT INTO t VALUES (1)").is_err());
    assert!(Catalog::from_create_tables("CREATE TABLE (").is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let catalog = common::catalog();
    let sp = vec!["public".to_string()];
    let ctx = AnalyseContext {
        catalog: &catalog,
        search_path: &sp,
    };
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(analyse(&deep, &ctx).is_err());
    let nested = format!("SELECT {} 1 {}", "(SELECT ".repeat(200), ")".repeat(200));
    assert!(analyse(&nested, &ctx).is_err());
    let ok = format!("SELECT {}1{}", "(".repeat(20), ")".repeat(20));
    assert!(analyse(&ok, &ctx).is_ok());
}
