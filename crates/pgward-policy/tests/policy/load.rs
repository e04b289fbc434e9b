//! Loading and compiling policy files: format errors with file, line and column;
//! duplicate roles, cycles, unknown parents; defaults; folding of keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;

use pgward_policy::{Columns, LoadError, LoadErrorKind, Mode, Policy};
use support::*;

fn load(files: &[(&str, &str)]) -> Result<Policy, LoadError> {
    Policy::from_sources(files)
}

fn err(files: &[(&str, &str)]) -> LoadError {
    load(files).expect_err("should not load")
}

/// (yaml, error text, line, column) for one file `p.yaml`.
#[test]
fn format_errors_name_file_line_and_column() {
    let cases: &[(&str, &str, usize, usize)] = &[
        (
            "roles:\n  a:\n    tabels: {}\n",
            "unknown field `tabels`",
            3,
            5,
        ),
        (
            "roles:\n  a:\n    tables:\n      orders: { selct: [id] }\n",
            "unknown field `selct`",
            4,
            17,
        ),
        ("rolez: {}\n", "unknown field `rolez`", 1, 1),
        (
            "roles:\n  a:\n    mode: permissive\n",
            "unknown variant `permissive`",
            3,
            11,
        ),
        ("roles:\n  a:\n    catalog: maybe\n", "invalid type", 3, 14),
        (
            "roles:\n  a:\n    tables:\n      orders: { delete: [id] }\n",
            "invalid type",
            4,
            25,
        ),
        (
            "roles:\n  a:\n    tables:\n      orders: { select: all }\n",
            "expected \"*\" or a list of column names",
            4,
            25,
        ),
        (
            "roles:\n  a:\n    tables:\n      orders: { select: [id, \"*\"] }\n",
            "write select: \"*\"",
            4,
            30,
        ),
        (
            "roles:\n  a:\n    tables:\n      orders: { select: [ctid] }\n",
            "system column ctid",
            4,
            26,
        ),
        (
            "roles:\n  a:\n    tables:\n      orders: { select: [id, XMIN] }\n",
            "system column xmin",
            4,
            30,
        ),
        (
            "roles:\n  a:\n    tables:\n      a.b.c: {}\n",
            "must be table, schema.table",
            4,
            7,
        ),
        (
            "roles:\n  a:\n    tables:\n      \"bad name\": {}\n",
            "unexpected character",
            4,
            7,
        ),
        (
            "roles:\n  a:\n    tables:\n      orders: {}\n      public.Orders: {}\n",
            "duplicate key \"public.Orders\"",
            5,
            7,
        ),
        ("roles:\n  a: {}\n  a: {}\n", "duplicate key \"a\"", 3, 3),
        ("roles:\n  public: {}\n", "reserved in PostgreSQL", 2, 3),
        ("roles:\n  pg_monitor: {}\n", "reserved in PostgreSQL", 2, 3),
        (
            "roles:\n  a:\n    functions: [place_order]\n",
            "must be schema-qualified",
            3,
            17,
        ),
        (
            "roles:\n  a:\n    search_path: [public.x]\n",
            "qualified name",
            3,
            19,
        ),
        (
            "roles:\n  a:\n    tables:\n      orders: { select: [id] \n",
            "did not find expected",
            5,
            1,
        ),
        (
            "roles:\n  a:\n    description: [1]\n",
            "invalid type",
            3,
            18,
        ),
    ];
    let mut failures = Vec::new();
    for (yaml, text, line, column) in cases {
        let e = err(&[("policies/p.yaml", yaml)]);
        let shown = e.to_string();
        let want_prefix = format!("policies/p.yaml:{line}:{column}: ");
        if !shown.starts_with(&want_prefix)
            || !shown.contains(text)
            || e.location() != Some((*line, *column))
        {
            failures.push(format!(
                "{yaml:?}\n  got:  {shown}\n  want: {want_prefix}...{text}"
            ));
        }
        assert_eq!(e.file(), Some(Path::new("policies/p.yaml")));
        assert_eq!(e.kind(), LoadErrorKind::Syntax);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_role_defined_twice_across_files_is_an_error() {
    let e = err(&[
        ("policies/a.yaml", "roles:\n  analyst: {}\n"),
        ("policies/b.yaml", "roles:\n  other: {}\n  analyst: {}\n"),
    ]);
    assert_eq!(e.kind(), LoadErrorKind::Invalid);
    assert_eq!(
        e.to_string(),
        "policies/b.yaml:3:3: role \"analyst\" is already defined in policies/a.yaml"
    );
}

#[test]
fn inheritance_cycles_are_rejected() {
    let cases: &[(&str, &str)] = &[
        ("roles:\n  a: { inherit: [a] }\n", "inheritance cycle: a -> a"),
        ("roles:\n  a: { inherit: [b] }\n  b: { inherit: [a] }\n", "inheritance cycle: a -> b -> a"),
        (
            "roles:\n  a: { inherit: [b] }\n  b: { inherit: [c] }\n  c: { inherit: [a] }\n  d: { inherit: [a] }\n",
            "inheritance cycle: a -> b -> c -> a",
        ),
    ];
    for (yaml, text) in cases {
        let e = err(&[("p.yaml", yaml)]);
        assert_eq!(e.kind(), LoadErrorKind::Invalid);
        assert!(e.to_string().contains(text), "{e}");
        assert!(e.location().is_some(), "{e}");
    }
    // A diamond is not a cycle.
    let p = load(&[(
        "p.yaml",
        "roles:\n  base: { tables: { t: { select: [a] } } }\n  l: { inherit: [base] }\n  r: { inherit: [base] }\n  top: { inherit: [l, r, base] }\n",
    )])
    .unwrap();
    assert!(p.check("top", &[select([col("t", "a")])]).is_ok());
}

#[test]
fn unknown_inherited_roles_are_rejected() {
    let e = err(&[(
        "policies/s.yaml",
        "roles:\n  support:\n    inherit: [analyst]\n",
    )]);
    assert_eq!(
        e.to_string(),
        "policies/s.yaml:3:5: role \"support\" inherits unknown role \"analyst\""
    );
    // Across files it resolves.
    let p = load(&[
        (
            "policies/s.yaml",
            "roles:\n  support:\n    inherit: [analyst]\n",
        ),
        (
            "policies/a.yaml",
            "roles:\n  analyst: { tables: { orders: { select: [id] } } }\n",
        ),
    ])
    .unwrap();
    assert!(p.check("support", &[select([col("orders", "id")])]).is_ok());
}

#[test]
fn transitive_inheritance_unions_columns_and_flags() {
    let p = policy(
        r#"
roles:
  a: { tables: { t: { select: [x], delete: true } }, functions: [public.f] }
  b: { inherit: [a], tables: { t: { select: [y], insert: "*" } } }
  c: { inherit: [b], tables: { t: { select: "*" }, "*": { truncate: true } } }
"#,
    );
    run(
        &p,
        vec![
            allow(
                "b",
                [
                    col("t", "x"),
                    col("t", "y"),
                    ins("t", "z"),
                    del("t"),
                    func("public.f"),
                ],
            ),
            deny("b", [col("t", "z")], "t.z"),
            allow(
                "c",
                [
                    col("t", "z"),
                    col("t", "ctid"),
                    trunc("other"),
                    func("public.f"),
                ],
            ),
            deny("a", [col("t", "y")], "t.y"),
            deny("b", [trunc("t")], "truncate public.t"),
        ],
    );
    let c = p.role("c").unwrap();
    assert_eq!(c.tables()[&rel("t")].select(), &Columns::All);
    assert!(c.tables()[&rel("t")].delete());
    assert!(c.all_tables().unwrap().truncate());
}

#[test]
fn settings_are_not_inherited() {
    let p = policy(
        r#"
roles:
  parent: { mode: audit, search_path: [sales], catalog: false }
  child: { inherit: [parent] }
"#,
    );
    let child = p.role_settings("child").unwrap();
    assert_eq!(child.mode(), Mode::Enforce);
    assert_eq!(child.search_path(), ["public".to_string()]);
    assert!(child.catalog());
    let parent = p.role_settings("parent").unwrap();
    assert_eq!(parent.mode(), Mode::Audit);
    assert_eq!(parent.search_path(), ["sales".to_string()]);
    assert!(!parent.catalog());
}

#[test]
fn defaults() {
    let p = policy("roles:\n  empty: {}\n");
    let s = p.role_settings("empty").unwrap();
    assert_eq!(s.mode(), Mode::Enforce);
    assert_eq!(s.search_path(), ["public".to_string()]);
    assert!(s.catalog());
    assert!(!s.ddl());
    run(
        &p,
        vec![
            allow("empty", []),
            allow(
                "empty",
                [col("pg_catalog.pg_class", "relname"), func("lower")],
            ),
            deny("empty", [any("orders")], "select from public.orders"),
            deny("empty", [ddl()], "run DDL"),
        ],
    );
}

#[test]
fn keys_are_folded_like_sql_identifiers() {
    let p = policy(
        r#"
roles:
  r:
    search_path: [Sales, '"Mixed"']
    tables:
      Orders: { select: [ID, '"Email"', 'U&"d\0061ta"'] }
      public."Weird": { select: [x] }
      '"My Schema"."T.x"': { select: [y] }
      SALES.Ledger: { delete: true }
      'U&"\0061bc"': { select: [z] }
    functions: [Public.Place_Order, '"Ext"."Fn"']
"#,
    );
    run(
        &p,
        vec![
            allow(
                "r",
                [
                    col("orders", "id"),
                    col("orders", "Email"),
                    col("orders", "data"),
                ],
            ),
            deny("r", [col("orders", "email")], "orders.email"),
            deny("r", [col("orders", "ID")], "orders.ID"),
            allow("r", [col("public.Weird", "x")]),
            deny("r", [col("public.weird", "x")], "weird.x"),
            allow("r", [col("My Schema.T.x", "y")]),
            allow("r", [del("sales.ledger")]),
            allow("r", [col("abc", "z")]),
            allow("r", [func("public.place_order"), func("Ext.Fn")]),
            deny("r", [func("public.Place_Order")], "public.Place_Order"),
        ],
    );
    assert_eq!(
        p.role_settings("r").unwrap().search_path(),
        ["sales".to_string(), "Mixed".to_string()]
    );
}

#[test]
fn empty_lists_and_explicit_false_grant_nothing() {
    let p =
        policy("roles:\n  r: { tables: { t: { select: [], delete: false, truncate: false } } }\n");
    run(
        &p,
        vec![
            deny("r", [any("t")], "select from public.t"),
            deny("r", [del("t")], "delete from public.t"),
            deny("r", [trunc("t")], "truncate public.t"),
        ],
    );
}

#[test]
fn an_empty_or_roleless_file_is_an_error() {
    assert_eq!(err(&[("p.yaml", "")]).kind(), LoadErrorKind::Syntax);
    assert!(err(&[("p.yaml", "{}\n")])
        .to_string()
        .contains("missing field `roles`"));
    // A role written with no body is a role with the defaults (it grants nothing).
    let p = load(&[("p.yaml", "roles:\n  a:\n")]).unwrap();
    assert!(p.check("a", &[select([any("t")])]).is_err());
}

#[test]
fn load_dir_reads_sorted_yaml_files_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yaml"), "roles:\n  b: { inherit: [a] }\n").unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "roles:\n  a: { tables: { t: { select: [x] } } }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
    std::fs::write(dir.path().join("old.yaml.bak"), "roles: {a: {}}").unwrap();
    let p = Policy::load_dir(dir.path()).unwrap();
    assert_eq!(p.roles().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(p.role("b").unwrap().file(), dir.path().join("b.yaml"));

    std::fs::write(dir.path().join("c.yaml"), "roles:\n  a: {}\n").unwrap();
    let e = Policy::load_dir(dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .contains("c.yaml:2:3: role \"a\" is already defined in"),
        "{e}"
    );
    assert!(e.to_string().ends_with("a.yaml"), "{e}");

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Policy::load_dir(empty.path()),
        Err(LoadError::NoFiles { .. })
    ));
    let missing = Policy::load_dir(&empty.path().join("nope")).unwrap_err();
    assert_eq!(missing.kind(), LoadErrorKind::Io);
}

#[test]
fn version_follows_the_contents() {
    let a = load(&[("p.yaml", "roles:\n  a: {}\n")]).unwrap();
    let same = load(&[("p.yaml", "roles:\n  a: {}\n")]).unwrap();
    let changed = load(&[("p.yaml", "roles:\n  a: { ddl: true }\n")]).unwrap();
    let renamed = load(&[("q.yaml", "roles:\n  a: {}\n")]).unwrap();
    assert_eq!(a.version(), same.version());
    assert_ne!(a.version(), changed.version());
    assert_ne!(a.version(), renamed.version());
}

#[test]
fn the_example_policies_load() {
    let p = demo();
    assert_eq!(
        p.roles().collect::<Vec<_>>(),
        [
            "analyst",
            "app",
            "bench",
            "legacy_batch",
            "migrator",
            "support"
        ]
    );
}
