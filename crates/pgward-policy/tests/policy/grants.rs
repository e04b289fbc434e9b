//! GRANT export snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use pgward_policy::Policy;
use support::*;

/// The example policies under stable file names.
fn examples() -> Policy {
    let mut files = Vec::new();
    for name in [
        "analyst",
        "app",
        "bench",
        "legacy_batch",
        "migrator",
        "support",
    ] {
        let text = std::fs::read_to_string(policies_dir().join(format!("{name}.yaml"))).unwrap();
        files.push((format!("policies/{name}.yaml"), text));
    }
    Policy::from_sources(&files).unwrap()
}

#[test]
fn analyst_and_support() {
    let p = examples();
    assert_eq!(
        p.grants(Some("analyst")),
        r#"-- role "analyst" (policies/analyst.yaml)
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM analyst;
GRANT USAGE ON SCHEMA public TO analyst;
GRANT SELECT (country, created_at, id) ON public.customers TO analyst;
GRANT SELECT (created_at, customer_id, id, status, total) ON public.orders TO analyst;
GRANT SELECT ON public.products TO analyst;
"#
    );
    assert_eq!(
        p.grants(Some("support")),
        r#"-- role "support" (policies/support.yaml)
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM support;
GRANT USAGE ON SCHEMA public TO support;
GRANT SELECT (country, created_at, email, id, name) ON public.customers TO support;
GRANT SELECT (created_at, customer_id, id, status, total) ON public.orders TO support;
GRANT UPDATE (status) ON public.orders TO support;
GRANT SELECT ON public.products TO support;
"#
    );
}

#[test]
fn app_migrator_and_audit() {
    let p = examples();
    assert_eq!(
        p.grants(Some("app")),
        r#"-- role "app" (policies/app.yaml)
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM app;
GRANT USAGE ON SCHEMA public TO app;
GRANT SELECT, INSERT, DELETE ON public.orders TO app;
GRANT UPDATE (note, status) ON public.orders TO app;
-- INSERTs that fill a serial column by default also need USAGE on its sequence
-- argument types unknown: fails if public.place_order is overloaded; EXECUTE is granted to PUBLIC by default
GRANT EXECUTE ON FUNCTION public.place_order TO app;
"#
    );
    assert_eq!(
        p.grants(Some("migrator")),
        r#"-- role "migrator" (policies/migrator.yaml)
-- ddl: true: grant CREATE on the schemas this role manages (not derived)
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM migrator;
GRANT USAGE ON SCHEMA public TO migrator;
-- "*": every table in every schema, including later ones; exported for the existing tables of the search_path schemas
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO migrator;
-- INSERTs that fill a serial column by default also need USAGE on its sequence
"#
    );
    assert!(p
        .grants(Some("legacy_batch"))
        .contains("-- mode: audit: pgward only records what these grants would refuse\n"));
}

#[test]
fn all_roles_in_order_and_unknown_roles() {
    let p = examples();
    let all = p.grants(None);
    let headers: Vec<&str> = all.lines().filter(|l| l.starts_with("-- role ")).collect();
    assert_eq!(headers.len(), 6);
    assert!(headers[0].contains("\"analyst\"") && headers[5].contains("\"support\""));
    assert_eq!(
        p.grants(Some("nobody")),
        "-- no policy defines role \"nobody\"\n"
    );
    // Nothing that would create roles or touch the catalog's privileges.
    assert!(!all.contains("CREATE ROLE"));
    assert!(!all.contains("pg_catalog"));
    assert!(!all.contains("information_schema"));
}

#[test]
fn identifiers_are_quoted_where_postgresql_needs_it() {
    let p = policy(
        r#"
roles:
  Weird Role:
    search_path: ['"Sales"', public]
    catalog: false
    tables:
      '"Sales"."Order Items"': { select: [id, '"Unit Price"', "order"], insert: [id] }
      public.user: { truncate: true }
      "*": { select: [id], delete: true }
      pg_catalog.pg_class: { select: [relname] }
    functions: ['"Sales".total', pg_catalog.nextval]
"#,
    );
    assert_eq!(
        p.grants(Some("Weird Role")),
        r#"-- role "Weird Role" (policies/test.yaml)
-- catalog: false: PostgreSQL lets every role read the catalog; not expressible
REVOKE ALL ON ALL TABLES IN SCHEMA "Sales" FROM "Weird Role";
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "Weird Role";
GRANT USAGE ON SCHEMA "Sales" TO "Weird Role";
GRANT USAGE ON SCHEMA public TO "Weird Role";
-- "*": every table in every schema, including later ones; exported for the existing tables of the search_path schemas
GRANT DELETE ON ALL TABLES IN SCHEMA "Sales" TO "Weird Role";
-- not exported: SELECT (id) on ALL TABLES IN SCHEMA "Sales": PostgreSQL has no column grant on ALL TABLES
GRANT DELETE ON ALL TABLES IN SCHEMA public TO "Weird Role";
-- not exported: SELECT (id) on ALL TABLES IN SCHEMA public: PostgreSQL has no column grant on ALL TABLES
GRANT SELECT ("Unit Price", id, "order") ON "Sales"."Order Items" TO "Weird Role";
GRANT INSERT (id) ON "Sales"."Order Items" TO "Weird Role";
GRANT SELECT (relname) ON pg_catalog.pg_class TO "Weird Role";
GRANT TRUNCATE ON public."user" TO "Weird Role";
-- INSERTs that fill a serial column by default also need USAGE on its sequence
-- argument types unknown: fails if "Sales".total is overloaded; EXECUTE is granted to PUBLIC by default
GRANT EXECUTE ON FUNCTION "Sales".total TO "Weird Role";
-- argument types unknown: fails if pg_catalog.nextval is overloaded; EXECUTE is granted to PUBLIC by default
GRANT EXECUTE ON FUNCTION pg_catalog.nextval TO "Weird Role";
"#
    );
}
