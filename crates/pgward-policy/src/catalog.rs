//! The catalog rule's data: which schemas are "the catalog", which of their relations the
//! rule never covers, and which column names are system columns. Reviewed data, no logic.

/// Schemas whose relations `catalog: true` lets a role read, and which `"*"` never covers.
pub const CATALOG_SCHEMAS: &[&str] = &["pg_catalog", "information_schema"];

/// Catalog relations the catalog rule never covers: they expose column *values*,
/// secrets, or other sessions' statements. A role reads them only through an explicit
/// `tables:` grant. (schema, relation, why)
pub const NEVER_BY_CATALOG_RULE: &[(&str, &str, &str)] = &[
    (
        "pg_catalog",
        "pg_statistic",
        "most common values and histograms of every column",
    ),
    (
        "pg_catalog",
        "pg_statistic_ext_data",
        "extended statistics: most common value combinations",
    ),
    (
        "pg_catalog",
        "pg_stats",
        "view of pg_statistic: column values",
    ),
    (
        "pg_catalog",
        "pg_stats_ext",
        "view of pg_statistic_ext_data: column values",
    ),
    (
        "pg_catalog",
        "pg_stats_ext_exprs",
        "statistics of expressions: values",
    ),
    ("pg_catalog", "pg_authid", "password hashes"),
    ("pg_catalog", "pg_shadow", "password hashes"),
    (
        "pg_catalog",
        "pg_user_mapping",
        "foreign server credentials (umoptions)",
    ),
    (
        "pg_catalog",
        "pg_user_mappings",
        "foreign server credentials (umoptions)",
    ),
    (
        "pg_catalog",
        "pg_subscription",
        "replication connection strings (subconninfo)",
    ),
    ("pg_catalog", "pg_largeobject", "large object contents"),
    (
        "pg_catalog",
        "pg_stat_activity",
        "statement texts of other sessions on the shared upstream login",
    ),
    (
        "pg_catalog",
        "pg_hba_file_rules",
        "server authentication configuration",
    ),
    (
        "pg_catalog",
        "pg_ident_file_mappings",
        "server authentication configuration",
    ),
    (
        "pg_catalog",
        "pg_file_settings",
        "server configuration files",
    ),
    (
        "information_schema",
        "user_mapping_options",
        "foreign server credentials",
    ),
    (
        "information_schema",
        "_pg_user_mappings",
        "foreign server credentials",
    ),
];

/// PostgreSQL's system columns: granted only by `select: "*"` on the table.
pub(crate) const SYSTEM_COLUMNS: &[&str] = &["ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"];

pub fn is_catalog_schema(schema: &str) -> bool {
    CATALOG_SCHEMAS.contains(&schema)
}

/// Whether the catalog rule refuses this relation (explicit grants still apply).
pub fn never_by_catalog_rule(schema: &str, relation: &str) -> bool {
    NEVER_BY_CATALOG_RULE
        .iter()
        .any(|(s, r, _)| *s == schema && *r == relation)
}

pub(crate) fn is_system_column(column: &str) -> bool {
    SYSTEM_COLUMNS.contains(&column)
}
