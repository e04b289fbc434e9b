//! Shared fixture for the analyser's tests: the demo shop catalog and readable helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use pgward_sql::{analyse, AnalyseContext, Catalog, Need, RelKind, StatementAccess, StatementKind};

pub fn catalog() -> Catalog {
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
    c.add_relation("public", "Mixed", RelKind::Table, cols(&["Id", "password"]));
    c.add_relation("secret", "customers", RelKind::Table, cols(&["id", "ssn"]));
    c.add_function_name("public", "place_order");
    c
}

pub fn run(sql: &str) -> Result<Vec<StatementAccess>, pgward_sql::AnalyseError> {
    let catalog = catalog();
    let search_path = vec!["public".to_string()];
    let ctx = AnalyseContext {
        catalog: &catalog,
        search_path: &search_path,
    };
    analyse(sql, &ctx)
}

pub fn describe(n: &Need) -> String {
    match n {
        Need::Column {
            relation,
            action,
            column,
        } => format!("{action} {relation}.{column}"),
        Need::AnyColumn { relation, action } => format!("{action} any {relation}"),
        Need::Relation { relation, action } => format!("{action} {relation}"),
        Need::Function { function } => format!("call {function}"),
        Need::Ddl => "ddl".into(),
    }
}

/// Every need of every statement of `sql`, readable.
pub fn needs(sql: &str) -> Vec<String> {
    let out = run(sql).unwrap_or_else(|e| panic!("{sql}: unexpected error: {e}"));
    out.iter()
        .flat_map(|s| s.needs.iter().map(describe))
        .collect()
}

pub fn kinds(sql: &str) -> Vec<StatementKind> {
    run(sql)
        .unwrap_or_else(|e| panic!("{sql}: unexpected error: {e}"))
        .into_iter()
        .map(|s| s.kind)
        .collect()
}

/// `sql` analyses; its needs include every one of `want` and none of `not`.
pub fn has(sql: &str, want: &[&str]) {
    let got = needs(sql);
    for w in want {
        assert!(
            got.iter().any(|g| g == w),
            "{sql}: missing need {w:?}; got {got:?}"
        );
    }
}

/// `sql` analyses to exactly these needs (in any order).
pub fn exact(sql: &str, want: &[&str]) {
    let mut got = needs(sql);
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{sql}");
}

/// `sql` analyses and needs none of `not`.
pub fn lacks(sql: &str, not: &[&str]) {
    let got = needs(sql);
    for n in not {
        assert!(
            !got.iter().any(|g| g == n),
            "{sql}: unexpected need {n:?}; got {got:?}"
        );
    }
}

/// `sql` fails to analyse with a reason containing `reason`.
pub fn err(sql: &str, reason: &str) {
    match run(sql) {
        Ok(out) => panic!(
            "{sql}: expected an error containing {reason:?}, got {:?}",
            out.iter()
                .flat_map(|s| s.needs.iter().map(describe))
                .collect::<Vec<_>>()
        ),
        Err(e) => assert!(
            e.to_string().contains(reason),
            "{sql}: error {e:?} does not contain {reason:?}"
        ),
    }
}
