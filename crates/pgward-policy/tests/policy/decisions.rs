//! Decisions over the example policies in `policies/`, read like SPEC §4.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use pgward_policy::{Action, Decision, Missing, Mode, StatementKind};
use support::*;

#[test]
fn analyst_reads_reporting_columns_only() {
    run(
        demo(),
        vec![
            allow("analyst", [col("orders", "id")]),
            allow("analyst", [col("orders", "customer_id")]),
            allow("analyst", [col("orders", "total")]),
            allow("analyst", [col("orders", "status")]),
            allow("analyst", [col("orders", "created_at")]),
            allow(
                "analyst",
                [
                    col("orders", "id"),
                    col("orders", "total"),
                    col("customers", "country"),
                ],
            ),
            allow("analyst", [col("customers", "id")]),
            allow("analyst", [col("customers", "country")]),
            allow("analyst", [col("customers", "created_at")]),
            allow("analyst", [col("public.products", "name")]),
            allow(
                "analyst",
                [col("products", "price"), col("products", "stock")],
            ),
            allow("analyst", [any("orders")]),
            allow("analyst", [any("customers")]),
            allow("analyst", [any("products")]),
            allow("analyst", []),
            deny(
                "analyst",
                [col("orders", "note")],
                "may not select column orders.note",
            ),
            deny(
                "analyst",
                [col("customers", "email")],
                "may not select column customers.email",
            ),
            deny("analyst", [col("customers", "name")], "customers.name"),
            deny("analyst", [col("customers", "phone")], "customers.phone"),
            deny(
                "analyst",
                [col("orders", "id"), col("customers", "email")],
                "customers.email",
            ),
            deny(
                "analyst",
                [col("secrets", "x")],
                "may not select column secrets.x",
            ),
            deny(
                "analyst",
                [any("secrets")],
                "may not select from public.secrets",
            ),
            deny(
                "analyst",
                [col("sales.orders", "id")],
                "may not select column sales.orders.id",
            ),
            deny(
                "analyst",
                [any("sales.orders")],
                "may not select from sales.orders",
            ),
        ],
    );
}

#[test]
fn names_are_compared_as_folded_catalog_names() {
    run(
        demo(),
        vec![
            // The analyser folds; a quoted "ID" or "Orders" is a different name.
            deny("analyst", [col("orders", "ID")], "orders.ID"),
            deny("analyst", [col("Orders", "id")], "Orders.id"),
            deny("analyst", [col("PUBLIC.orders", "id")], "PUBLIC.orders.id"),
            deny("analyst", [col("customers", "Email")], "customers.Email"),
        ],
    );
}

#[test]
fn system_columns_only_through_star() {
    run(
        demo(),
        vec![
            allow("analyst", [col("products", "ctid")]),
            allow(
                "analyst",
                [col("products", "xmin"), col("products", "tableoid")],
            ),
            deny(
                "analyst",
                [col("orders", "ctid")],
                "select column orders.ctid",
            ),
            deny("analyst", [col("orders", "xmin")], "orders.xmin"),
            deny("analyst", [col("orders", "xmax")], "orders.xmax"),
            deny("analyst", [col("customers", "cmin")], "customers.cmin"),
            deny("analyst", [col("customers", "cmax")], "customers.cmax"),
            deny(
                "analyst",
                [col("customers", "tableoid")],
                "customers.tableoid",
            ),
            allow("app", [col("orders", "ctid"), col("orders", "xmax")]),
            deny("support", [col("customers", "ctid")], "customers.ctid"),
        ],
    );
}

#[test]
fn writes_need_their_own_privileges() {
    run(
        demo(),
        vec![
            deny(
                "analyst",
                [ins("orders", "id")],
                "may not insert into column orders.id",
            ),
            deny(
                "analyst",
                [upd("orders", "status")],
                "may not update column orders.status",
            ),
            deny(
                "analyst",
                [del("orders")],
                "may not delete from public.orders",
            ),
            deny(
                "analyst",
                [trunc("products")],
                "may not truncate public.products",
            ),
            deny(
                "analyst",
                [any_of(Action::Insert, "products")],
                "may not insert into public.products",
            ),
            allow(
                "app",
                [ins("orders", "total"), ins("orders", "customer_id")],
            ),
            allow("app", [upd("orders", "status")]),
            allow("app", [upd("orders", "note"), col("orders", "id")]),
            allow("app", [del("orders"), col("orders", "id")]),
            allow("app", [any_of(Action::Update, "orders")]),
            allow("app", [any_of(Action::Delete, "orders")]),
            allow(
                "app",
                [
                    whole(Action::Select, "orders"),
                    whole(Action::Insert, "orders"),
                ],
            ),
            deny(
                "app",
                [upd("orders", "total")],
                "may not update column orders.total",
            ),
            deny(
                "app",
                [whole(Action::Update, "orders")],
                "may not update all columns of public.orders",
            ),
            deny("app", [trunc("orders")], "may not truncate public.orders"),
            deny(
                "app",
                [any_of(Action::Truncate, "orders")],
                "truncate public.orders",
            ),
            deny(
                "app",
                [col("customers", "id")],
                "select column customers.id",
            ),
            deny(
                "app",
                [ins("customers", "name")],
                "insert into column customers.name",
            ),
            deny("app", [del("customers")], "delete from public.customers"),
        ],
    );
}

#[test]
fn inheritance_is_the_union_of_grants() {
    run(
        demo(),
        vec![
            allow(
                "support",
                [col("customers", "email"), col("customers", "name")],
            ),
            allow("support", [col("orders", "total")]),
            allow("support", [col("products", "price")]),
            allow("support", [upd("orders", "status"), col("orders", "id")]),
            deny("support", [col("customers", "phone")], "customers.phone"),
            deny("support", [col("orders", "note")], "orders.note"),
            deny(
                "support",
                [upd("orders", "note")],
                "update column orders.note",
            ),
            deny("support", [del("orders")], "delete from public.orders"),
            // Inheritance goes one way.
            deny(
                "analyst",
                [upd("orders", "status")],
                "update column orders.status",
            ),
        ],
    );
}

#[test]
fn star_covers_every_table_outside_the_catalog() {
    run(
        demo(),
        vec![
            allow(
                "migrator",
                [col("customers", "phone"), col("orders", "note")],
            ),
            allow(
                "migrator",
                [col("sales.ledger", "amount"), col("audit.\"Log\"", "x")],
            ),
            allow(
                "migrator",
                [ins("customers", "email"), upd("customers", "email")],
            ),
            allow(
                "migrator",
                [del("customers"), trunc("orders"), trunc("sales.ledger")],
            ),
            allow("migrator", [col("customers", "ctid")]),
            allow("migrator", [whole(Action::Update, "customers")]),
            // The catalog is not part of "*": reads come from the catalog rule, writes never.
            allow("migrator", [col("pg_catalog.pg_class", "relname")]),
            deny(
                "migrator",
                [ins("pg_catalog.pg_class", "relname")],
                "insert into column pg_catalog.pg_class.relname",
            ),
            deny(
                "migrator",
                [upd("information_schema.tables", "table_name")],
                "information_schema.tables.table_name",
            ),
            deny(
                "migrator",
                [del("pg_catalog.pg_class")],
                "delete from pg_catalog.pg_class",
            ),
            deny(
                "migrator",
                [col("pg_catalog.pg_stats", "most_common_vals")],
                "pg_catalog.pg_stats.most_common_vals",
            ),
        ],
    );
}

#[test]
fn catalog_rule_reads_metadata_but_never_values() {
    run(
        demo(),
        vec![
            allow("analyst", [col("pg_catalog.pg_class", "relname")]),
            allow(
                "analyst",
                [
                    col("pg_catalog.pg_attribute", "attname"),
                    any("pg_catalog.pg_namespace"),
                ],
            ),
            allow(
                "analyst",
                [col("information_schema.columns", "column_name")],
            ),
            allow("analyst", [col("pg_catalog.pg_roles", "rolname")]),
            allow("analyst", [col("pg_catalog.pg_class", "ctid")]),
            deny(
                "analyst",
                [col("pg_catalog.pg_stats", "most_common_vals")],
                "select column pg_catalog.pg_stats.most_common_vals",
            ),
            deny(
                "analyst",
                [any("pg_catalog.pg_stats")],
                "select from pg_catalog.pg_stats",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_stats_ext", "most_common_vals")],
                "pg_stats_ext",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_stats_ext_exprs", "most_common_vals")],
                "pg_stats_ext_exprs",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_statistic", "stavalues1")],
                "pg_statistic.stavalues1",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_statistic_ext_data", "stxdmcv")],
                "pg_statistic_ext_data",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_authid", "rolpassword")],
                "pg_authid.rolpassword",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_shadow", "passwd")],
                "pg_shadow.passwd",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_user_mapping", "umoptions")],
                "pg_user_mapping",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_user_mappings", "umoptions")],
                "pg_user_mappings",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_largeobject", "data")],
                "pg_largeobject.data",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_subscription", "subconninfo")],
                "pg_subscription",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_stat_activity", "query")],
                "pg_stat_activity.query",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_hba_file_rules", "address")],
                "pg_hba_file_rules",
            ),
            deny(
                "analyst",
                [col("pg_catalog.pg_file_settings", "setting")],
                "pg_file_settings",
            ),
            deny(
                "analyst",
                [col(
                    "information_schema.user_mapping_options",
                    "option_value",
                )],
                "user_mapping_options",
            ),
            deny(
                "analyst",
                [ins("pg_catalog.pg_class", "relname")],
                "insert into column pg_catalog.pg_class.relname",
            ),
            deny(
                "analyst",
                [whole(Action::Truncate, "pg_catalog.pg_class")],
                "truncate pg_catalog.pg_class",
            ),
            // Only pg_catalog and information_schema are the catalog.
            deny(
                "analyst",
                [col("pg_toast.pg_toast_1", "chunk_data")],
                "pg_toast.pg_toast_1.chunk_data",
            ),
            deny(
                "analyst",
                [col("pg_catalogue.pg_class", "relname")],
                "pg_catalogue.pg_class.relname",
            ),
        ],
    );
}

#[test]
fn catalog_false_needs_explicit_grants() {
    let p = policy(
        r#"
roles:
  locked:
    catalog: false
    tables:
      orders: { select: [id] }
      pg_catalog.pg_class: { select: [relname] }
      pg_catalog.pg_stats: { select: "*" }
  open:
    tables:
      pg_catalog.pg_stats: { select: [attname] }
"#,
    );
    run(
        &p,
        vec![
            allow("locked", [col("orders", "id")]),
            allow("locked", [col("pg_catalog.pg_class", "relname")]),
            allow("locked", [col("pg_catalog.pg_stats", "most_common_vals")]),
            deny(
                "locked",
                [col("pg_catalog.pg_class", "oid")],
                "pg_catalog.pg_class.oid",
            ),
            deny(
                "locked",
                [col("pg_catalog.pg_namespace", "nspname")],
                "pg_namespace.nspname",
            ),
            deny(
                "locked",
                [col("information_schema.tables", "table_name")],
                "information_schema.tables",
            ),
            deny(
                "locked",
                [func("format_type")],
                "call function pg_catalog.format_type",
            ),
            deny(
                "locked",
                [func("pg_table_is_visible")],
                "pg_table_is_visible",
            ),
            allow("locked", [func("lower"), func("count")]),
            // An explicit grant reaches a never-list relation, column by column.
            allow("open", [col("pg_catalog.pg_stats", "attname")]),
            deny(
                "open",
                [col("pg_catalog.pg_stats", "most_common_vals")],
                "pg_stats.most_common_vals",
            ),
            allow("open", [col("pg_catalog.pg_class", "relname")]),
        ],
    );
}

#[test]
fn functions_need_a_list() {
    run(
        demo(),
        vec![
            allow(
                "analyst",
                [func("lower"), func("count"), func("now"), func("coalesce")],
            ),
            allow(
                "analyst",
                [
                    func("generate_series"),
                    func("unnest"),
                    func("current_setting"),
                ],
            ),
            allow(
                "analyst",
                [
                    func("row_number"),
                    func("jsonb_build_object"),
                    func("to_tsvector"),
                ],
            ),
            allow(
                "analyst",
                [
                    func("format_type"),
                    func("pg_get_viewdef"),
                    func("pg_table_is_visible"),
                ],
            ),
            allow(
                "analyst",
                [
                    func("obj_description"),
                    func("col_description"),
                    func("pg_get_userbyid"),
                ],
            ),
            allow(
                "analyst",
                [func("has_table_privilege"), func("pg_encoding_to_char")],
            ),
            allow("analyst", [func("information_schema._pg_expandarray")]),
            allow("app", [func("public.place_order")]),
            deny(
                "analyst",
                [func("pg_read_file")],
                "may not call function pg_catalog.pg_read_file",
            ),
            deny(
                "analyst",
                [func("query_to_xml")],
                "call function pg_catalog.query_to_xml",
            ),
            deny("analyst", [func("ts_stat")], "pg_catalog.ts_stat"),
            deny("analyst", [func("set_config")], "pg_catalog.set_config"),
            deny("analyst", [func("nextval")], "pg_catalog.nextval"),
            deny("analyst", [func("pg_sleep")], "pg_catalog.pg_sleep"),
            deny(
                "analyst",
                [func("public.place_order")],
                "call function public.place_order",
            ),
            deny(
                "analyst",
                [func("public.lower")],
                "call function public.lower",
            ),
            deny(
                "analyst",
                [func("information_schema.lower")],
                "information_schema.lower",
            ),
            deny("analyst", [func("pg_catalog.LOWER")], "pg_catalog.LOWER"),
            deny("app", [func("public.cancel_order")], "public.cancel_order"),
            deny(
                "support",
                [func("public.place_order")],
                "public.place_order",
            ),
            deny("migrator", [func("pg_read_file")], "pg_read_file"),
        ],
    );
}

#[test]
fn ddl_needs_ddl_true() {
    run(
        demo(),
        vec![
            deny("analyst", [ddl()], "may not run DDL"),
            deny("app", [ddl()], "may not run DDL"),
            deny("support", [ddl()], "may not run DDL"),
            allow("migrator", [ddl()]),
        ],
    );
    // A DDL statement is denied even if its needs forgot Need::Ddl.
    let bare = stmt(StatementKind::Ddl, []);
    assert_eq!(
        demo()
            .check("analyst", std::slice::from_ref(&bare))
            .unwrap_err()
            .missing(),
        &Missing::Ddl
    );
    assert!(demo().check("migrator", &[bare]).is_ok());
}

#[test]
fn ddl_is_inherited_as_a_grant() {
    let p = policy(
        r#"
roles:
  owner: { ddl: true }
  deputy: { inherit: [owner] }
"#,
    );
    run(&p, vec![allow("deputy", [ddl()]), allow("owner", [ddl()])]);
}

#[test]
fn other_roles_in_the_examples() {
    run(
        demo(),
        vec![
            allow(
                "legacy_batch",
                [col("orders", "note"), col("orders", "ctid")],
            ),
            deny("legacy_batch", [col("customers", "id")], "customers.id"),
            allow(
                "bench",
                [
                    col("pgbench_accounts", "abalance"),
                    upd("pgbench_accounts", "abalance"),
                ],
            ),
            allow("bench", [col("pgbench_accounts", "aid")]),
            allow(
                "bench",
                [
                    upd("pgbench_tellers", "tbalance"),
                    upd("pgbench_branches", "bbalance"),
                ],
            ),
            allow(
                "bench",
                [
                    ins("pgbench_history", "delta"),
                    ins("pgbench_history", "mtime"),
                ],
            ),
            allow("bench", [any("pgbench_branches")]),
            deny(
                "bench",
                [trunc("pgbench_history")],
                "truncate public.pgbench_history",
            ),
            deny(
                "bench",
                [del("pgbench_history")],
                "delete from public.pgbench_history",
            ),
            deny("bench", [col("orders", "id")], "orders.id"),
        ],
    );
}

#[test]
fn unknown_roles_are_denied() {
    for role in ["nobody", "", "Analyst", "analyst "] {
        let d = demo().check(role, &[]).unwrap_err();
        assert_eq!(d.missing(), &Missing::UnknownRole);
        assert_eq!(
            d.message(),
            format!("permission denied: role \"{role}\" has no policy")
        );
        assert_eq!(d.hint(), format!("no policy file defines role \"{role}\""));
        assert_eq!(d.mode(), None);
        assert!(
            d.audit_permit().is_err(),
            "an unknown role is never audited through"
        );
    }
}

#[test]
fn messages_and_hints_read_like_postgresql() {
    let cases: &[(&str, pgward_policy::Need, &str)] = &[
        (
            "analyst",
            col("customers", "email"),
            "permission denied: role \"analyst\" may not select column customers.email",
        ),
        (
            "analyst",
            col("sales.orders", "id"),
            "permission denied: role \"analyst\" may not select column sales.orders.id",
        ),
        (
            "analyst",
            del("orders"),
            "permission denied: role \"analyst\" may not delete from public.orders",
        ),
        (
            "analyst",
            func("pg_read_file"),
            "permission denied: role \"analyst\" may not call function pg_catalog.pg_read_file",
        ),
        (
            "analyst",
            ddl(),
            "permission denied: role \"analyst\" may not run DDL",
        ),
        (
            "analyst",
            trunc("orders"),
            "permission denied: role \"analyst\" may not truncate public.orders",
        ),
        (
            "analyst",
            upd("orders", "total"),
            "permission denied: role \"analyst\" may not update column orders.total",
        ),
        (
            "analyst",
            ins("orders", "total"),
            "permission denied: role \"analyst\" may not insert into column orders.total",
        ),
    ];
    for (role, need, want) in cases {
        let d = demo().check(role, &[select([need.clone()])]).unwrap_err();
        assert_eq!(d.message(), *want);
        assert_eq!(d.to_string(), *want);
        assert_eq!(d.role(), *role);
        assert_eq!(d.decision(), Decision::Deny);
    }
    let d = demo()
        .check("analyst", &[select([col("customers", "email")])])
        .unwrap_err();
    let file = support::policies_dir().join("analyst.yaml");
    assert_eq!(
        d.hint(),
        format!(
            "policy for role \"analyst\" ({}) does not grant it",
            file.display()
        )
    );
    assert_eq!(d.policy_file(), Some(file.as_path()));
    let d = demo()
        .check("analyst", &[select([func("set_config")])])
        .unwrap_err();
    assert!(
        d.hint().contains("must be listed under functions:"),
        "{}",
        d.hint()
    );
    let d = demo()
        .check("analyst", &[select([any("pg_catalog.pg_stats")])])
        .unwrap_err();
    assert!(
        d.hint().contains("catalog: true does not cover it"),
        "{}",
        d.hint()
    );
}

#[test]
fn the_first_missing_privilege_is_named() {
    let p = demo();
    // Needs are ordered (columns, any-column, relation, function, DDL), statements in order.
    let d = p
        .check(
            "analyst",
            &[select([ddl(), func("pg_sleep"), col("customers", "phone")])],
        )
        .unwrap_err();
    assert_eq!(
        d.message(),
        "permission denied: role \"analyst\" may not select column customers.phone"
    );
    let statements = [
        select([col("orders", "id")]),
        select([col("orders", "total")]),
        select([col("customers", "email")]),
        select([col("orders", "note")]),
    ];
    let d = p.check("analyst", &statements).unwrap_err();
    assert_eq!(d.statement_index(), 2);
    assert!(d.message().ends_with("customers.email"));
    // One denial denies the whole message.
    assert!(p
        .check("app", &[select([col("orders", "id")]), select([ddl()])])
        .is_err());
}

#[test]
fn statements_without_needs_are_allowed_for_known_roles() {
    let p = demo();
    for kind in [
        StatementKind::Transaction,
        StatementKind::Show,
        StatementKind::Set,
        StatementKind::Values,
    ] {
        let permit = p.check("analyst", &[stmt(kind, [])]).unwrap();
        assert_eq!(permit.role(), "analyst");
        assert_eq!(permit.policy_version(), p.version());
        assert_eq!(permit.decision(), Decision::Allow);
        assert!(permit.would_deny().is_none());
    }
    assert!(p.check("analyst", &[]).is_ok());
}

#[test]
fn audit_mode_denies_but_can_forward_with_evidence() {
    let p = demo();
    assert_eq!(p.mode("legacy_batch"), Some(Mode::Audit));
    assert_eq!(p.mode("analyst"), Some(Mode::Enforce));
    assert_eq!(p.mode("nobody"), None);

    let denial = p
        .check("legacy_batch", &[select([col("customers", "email")])])
        .unwrap_err();
    assert_eq!(denial.mode(), Some(Mode::Audit));
    let permit = denial.clone().audit_permit().unwrap();
    assert_eq!(permit.decision(), Decision::WouldDeny);
    assert_eq!(permit.role(), "legacy_batch");
    assert_eq!(permit.would_deny().unwrap().message(), denial.message());

    let enforced = p
        .check("analyst", &[select([col("customers", "email")])])
        .unwrap_err();
    assert_eq!(enforced.audit_permit().unwrap_err().role(), "analyst");
}

#[test]
fn unanalysable_statements_are_denied_with_the_reason() {
    let p = demo();
    let d = p.deny_unanalysable("analyst", "syntax error at or near \"SELEC\"", 0);
    assert_eq!(
        d.message(),
        "permission denied: role \"analyst\" may not run this statement: syntax error at or near \"SELEC\""
    );
    assert_eq!(d.mode(), Some(Mode::Enforce));
    assert!(d.audit_permit().is_err());
    let audited = p.deny_unanalysable("legacy_batch", "unsupported", 0);
    assert_eq!(
        audited.audit_permit().unwrap().decision(),
        Decision::WouldDeny
    );
    assert_eq!(
        p.deny_unanalysable("nobody", "x", 0).missing(),
        &Missing::UnknownRole
    );
}

#[test]
fn role_settings_are_exposed_for_the_session() {
    let p = demo();
    let s = p.role_settings("analyst").unwrap();
    assert_eq!(s.search_path(), ["public".to_string()]);
    assert!(s.catalog());
    assert!(!s.ddl());
    assert_eq!(s.mode(), Mode::Enforce);
    assert!(p.role_settings("migrator").unwrap().ddl());
    assert!(p.role_settings("nobody").is_none());
    let roles: Vec<&str> = p.roles().collect();
    assert_eq!(
        roles,
        [
            "analyst",
            "app",
            "bench",
            "legacy_batch",
            "migrator",
            "support"
        ]
    );
    let support = p.role("support").unwrap();
    assert_eq!(support.inherit(), ["analyst".to_string()]);
    assert!(support
        .description()
        .unwrap()
        .starts_with("Customer support"));
    assert!(
        support.tables().contains_key(&rel("products")),
        "inherited grants are effective"
    );
}
