//! What PostgreSQL itself defines: pg_catalog and information_schema relations with their
//! columns, pg_catalog function names, system columns and SQL keyword functions.
//!
//! Used when the catalog the proxy or CLI loaded does not cover the system schemas, so
//! that `pg_class` still resolves to pg_catalog (searched before the search_path) and
//! `SELECT * FROM pg_class` expands. Lookups only; the data is in `pg_builtin_data.rs`.

use crate::pg_builtin_data::{FUNCTIONS, RELATIONS};

pub(crate) const PG_CATALOG: &str = "pg_catalog";
pub(crate) const INFORMATION_SCHEMA: &str = "information_schema";

/// Columns every table has besides its user columns (`oid` is a user column since PG 12).
pub(crate) const SYSTEM_COLUMNS: &[&str] = &["ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"];

/// Keywords that sqlparser shows as argument-less function calls but that are SQL value
/// functions in PostgreSQL (no EXECUTE privilege is involved).
pub(crate) const SQL_VALUE_FUNCTIONS: &[&str] = &[
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "localtime",
    "localtimestamp",
    "session_user",
    "user",
];

/// Output columns of set-returning built-ins whose result is a record.
const SRF_COLUMNS: &[(&str, &[&str])] = &[
    ("json_each", &["key", "value"]),
    ("json_each_text", &["key", "value"]),
    ("jsonb_each", &["key", "value"]),
    ("jsonb_each_text", &["key", "value"]),
    (
        "pg_get_keywords",
        &["word", "catcode", "barelabel", "catdesc", "baredesc"],
    ),
    ("pg_options_to_table", &["option_name", "option_value"]),
    (
        "aclexplode",
        &["grantor", "grantee", "privilege_type", "is_grantable"],
    ),
];

/// Columns of a built-in relation of pg_catalog or information_schema.
pub(crate) fn builtin_relation(schema: &str, name: &str) -> Option<Vec<String>> {
    RELATIONS
        .binary_search_by(|(s, n, _)| (*s, *n).cmp(&(schema, name)))
        .ok()
        .map(|i| RELATIONS[i].2.split(' ').map(str::to_string).collect())
}

/// Whether pg_catalog has a function of this name.
pub(crate) fn is_builtin_function(name: &str) -> bool {
    FUNCTIONS.binary_search(&name).is_ok()
}

/// The record columns of a built-in set-returning function, if it returns a record.
pub(crate) fn srf_columns(name: &str) -> Option<&'static [&'static str]> {
    SRF_COLUMNS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert!(builtin_relation("pg_catalog", "pg_class")
            .is_some_and(|c| c.contains(&"relname".to_string())));
        assert!(builtin_relation("information_schema", "columns").is_some());
        assert!(builtin_relation("public", "pg_class").is_none());
        assert!(is_builtin_function("lower"));
        assert!(is_builtin_function("query_to_xml"));
        assert!(!is_builtin_function("place_order"));
    }
}
