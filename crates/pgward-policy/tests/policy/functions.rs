//! The reviewed function table, decided through a policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use pgward_policy::{
    builtin_function, FuncName, FunctionClass, BUILTIN_FUNCTIONS, REVIEWED_UNSAFE,
};
use support::*;

fn split(entry: &str) -> (&str, &str) {
    entry.split_once('.').unwrap_or(("pg_catalog", entry))
}

#[test]
fn every_reviewed_unsafe_function_is_denied_even_to_migrator() {
    let p = demo();
    for (name, why) in REVIEWED_UNSAFE {
        assert!(!why.is_empty());
        for role in ["analyst", "support", "app", "migrator", "bench"] {
            let d = p.check(role, &[select([func(name)])]).unwrap_err();
            assert_eq!(
                d.message(),
                format!(
                    "permission denied: role \"{role}\" may not call function pg_catalog.{name}"
                )
            );
        }
        assert!(builtin_function(&FuncName::new("pg_catalog", *name)).is_none());
    }
}

#[test]
fn the_spec_named_dangerous_functions_are_all_reviewed() {
    for name in [
        "query_to_xml",
        "table_to_xml",
        "cursor_to_xml",
        "database_to_xml",
        "schema_to_xml",
        "ts_stat",
        "ts_rewrite",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "lo_import",
        "lo_export",
        "lo_get",
        "loread",
        "lowrite",
        "dblink",
        "dblink_exec",
        "set_config",
        "nextval",
        "setval",
        "currval",
        "pg_sleep",
        "pg_sleep_for",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_advisory_lock",
        "pg_try_advisory_lock",
        "pg_logical_emit_message",
        "pg_logical_slot_get_changes",
    ] {
        assert!(
            REVIEWED_UNSAFE.iter().any(|(n, _)| *n == name),
            "{name} not reviewed"
        );
    }
}

#[test]
fn every_safe_function_is_allowed_without_listing() {
    let p = policy("roles:\n  plain: {}\n  blind: { catalog: false }\n");
    for (entry, class, _) in BUILTIN_FUNCTIONS {
        let (schema, name) = split(entry);
        let need = func(&format!("{schema}.{name}"));
        assert!(
            p.check("plain", &[select([need.clone()])]).is_ok(),
            "{entry}"
        );
        let blind = p.check("blind", &[select([need])]);
        assert_eq!(
            blind.is_ok(),
            *class != FunctionClass::Catalog,
            "{entry} with catalog: false"
        );
    }
}

#[test]
fn a_role_list_allows_unsafe_functions_explicitly() {
    let p = policy(
        "roles:\n  seq: { functions: [pg_catalog.nextval, public.place_order] }\n  blind: { catalog: false, functions: [pg_catalog.format_type] }\n",
    );
    run(
        &p,
        vec![
            allow("seq", [func("nextval"), func("public.place_order")]),
            deny("seq", [func("setval")], "pg_catalog.setval"),
            deny("seq", [func("sales.place_order")], "sales.place_order"),
            allow("blind", [func("format_type")]),
            deny("blind", [func("pg_get_viewdef")], "pg_get_viewdef"),
        ],
    );
}

#[test]
fn the_lists_cover_what_the_spec_names() {
    for (name, class) in [
        ("count", FunctionClass::Aggregate),
        ("row_number", FunctionClass::Window),
        ("lower", FunctionClass::String),
        ("round", FunctionClass::Math),
        ("date_trunc", FunctionClass::DateTime),
        ("jsonb_build_object", FunctionClass::Json),
        ("array_length", FunctionClass::Array),
        ("to_tsvector", FunctionClass::TextSearch),
        ("coalesce", FunctionClass::Conditional),
        ("generate_series", FunctionClass::SetReturning),
        ("unnest", FunctionClass::SetReturning),
        ("current_setting", FunctionClass::Setting),
        ("int4", FunctionClass::Cast),
        ("format_type", FunctionClass::Catalog),
        ("pg_get_viewdef", FunctionClass::Catalog),
        ("pg_get_constraintdef", FunctionClass::Catalog),
        ("pg_table_is_visible", FunctionClass::Catalog),
        ("obj_description", FunctionClass::Catalog),
        ("col_description", FunctionClass::Catalog),
        ("pg_get_userbyid", FunctionClass::Catalog),
        ("pg_encoding_to_char", FunctionClass::Catalog),
        ("has_table_privilege", FunctionClass::Catalog),
    ] {
        assert_eq!(
            builtin_function(&FuncName::new("pg_catalog", name)),
            Some(class),
            "{name}"
        );
    }
    assert!(BUILTIN_FUNCTIONS.len() > 300);
}
