//! GRANT export: PostgreSQL statements that give a database role the same table and
//! function privileges as the pgward policy role (defence in depth). Where PostgreSQL
//! cannot express a rule (column lists on every table, `catalog: false`, audit mode),
//! the output says so in a comment instead of emitting something weaker or stronger.
//! Never emits CREATE ROLE, never touches pg_catalog or information_schema privileges.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use pgward_sql::access::RelName;

use crate::catalog::is_catalog_schema;
use crate::policy::{Columns, Mode, Policy, Role, TableGrant};

/// PostgreSQL's reserved and type/function-name keywords: not valid as bare table,
/// column or role names, so they are always quoted.
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// `name` as an SQL identifier: bare when PostgreSQL would fold it to itself, otherwise
/// double-quoted with `"` doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    let mut chars = name.chars();
    let simple = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !KEYWORDS.contains(&name);
    if simple {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn quote_rel(rel: &RelName) -> String {
    format!("{}.{}", quote_ident(&rel.schema), quote_ident(&rel.name))
}

impl Policy {
    /// GRANT/REVOKE statements for one role, or for every role (sorted) when `None`.
    /// An unknown role gives a single comment line saying so.
    pub fn grants(&self, role: Option<&str>) -> String {
        match role {
            Some(name) => match self.roles.get(name) {
                Some(r) => role_grants(r),
                None => format!("-- no policy defines role \"{name}\"\n"),
            },
            None => self
                .roles
                .values()
                .map(role_grants)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

fn role_grants(role: &Role) -> String {
    let grantee = quote_ident(role.name());
    let settings = role.settings();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- role \"{}\" ({})",
        role.name(),
        role.file().display()
    );
    if settings.mode() == Mode::Audit {
        out.push_str("-- mode: audit: pgward only records what these grants would refuse\n");
    }
    if !settings.catalog() {
        out.push_str(
            "-- catalog: false: PostgreSQL lets every role read the catalog; not expressible\n",
        );
    }
    if settings.ddl() {
        out.push_str("-- ddl: true: grant CREATE on the schemas this role manages (not derived)\n");
    }

    // Schemas the role can name: its search_path, its relations', its functions'.
    let mut schemas: BTreeSet<&str> = settings.search_path().iter().map(String::as_str).collect();
    schemas.extend(role.tables().keys().map(|r| r.schema.as_str()));
    schemas.extend(role.functions().iter().map(|f| f.schema.as_str()));
    schemas.retain(|s| !is_catalog_schema(s));
    for schema in &schemas {
        let _ = writeln!(
            out,
            "REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {grantee};",
            quote_ident(schema)
        );
    }
    for schema in &schemas {
        let _ = writeln!(
            out,
            "GRANT USAGE ON SCHEMA {} TO {grantee};",
            quote_ident(schema)
        );
    }

    if let Some(all) = role.all_tables() {
        out.push_str(
            "-- \"*\": every table in every schema, including later ones; exported for the \
             existing tables of the search_path schemas\n",
        );
        for schema in settings
            .search_path()
            .iter()
            .filter(|s| !is_catalog_schema(s))
        {
            let target = format!("ALL TABLES IN SCHEMA {}", quote_ident(schema));
            table_grants(&mut out, all, &target, &grantee, true);
        }
    }
    for (rel, grant) in role.tables() {
        table_grants(&mut out, grant, &quote_rel(rel), &grantee, false);
    }

    let inserts = role
        .all_tables()
        .into_iter()
        .chain(role.tables().values())
        .any(|g| *g.insert() != Columns::None);
    if inserts {
        out.push_str(
            "-- INSERTs that fill a serial column by default also need USAGE on its sequence\n",
        );
    }
    for function in role.functions() {
        let name = format!(
            "{}.{}",
            quote_ident(&function.schema),
            quote_ident(&function.name)
        );
        let _ = writeln!(
            out,
            "-- argument types unknown: fails if {name} is overloaded; EXECUTE is granted \
             to PUBLIC by default"
        );
        let _ = writeln!(out, "GRANT EXECUTE ON FUNCTION {name} TO {grantee};");
    }
    out
}

/// One GRANT for the table-level privileges, then one per column-level privilege.
fn table_grants(
    out: &mut String,
    grant: &TableGrant,
    target: &str,
    grantee: &str,
    every_table: bool,
) {
    let mut whole = Vec::new();
    let mut per_column = Vec::new();
    for (privilege, columns) in [
        ("SELECT", grant.select()),
        ("INSERT", grant.insert()),
        ("UPDATE", grant.update()),
    ] {
        match columns {
            Columns::None => {}
            Columns::All => whole.push(privilege),
            Columns::Only(list) if list.is_empty() => {}
            Columns::Only(list) => per_column.push((privilege, list)),
        }
    }
    if grant.delete() {
        whole.push("DELETE");
    }
    if grant.truncate() {
        whole.push("TRUNCATE");
    }
    if !whole.is_empty() {
        let _ = writeln!(out, "GRANT {} ON {target} TO {grantee};", whole.join(", "));
    }
    for (privilege, list) in per_column {
        let cols: Vec<String> = list.iter().map(|c| quote_ident(c)).collect();
        if every_table {
            let _ = writeln!(
                out,
                "-- not exported: {privilege} ({}) on {target}: PostgreSQL has no column \
                 grant on ALL TABLES",
                cols.join(", ")
            );
        } else {
            let _ = writeln!(
                out,
                "GRANT {privilege} ({}) ON {target} TO {grantee};",
                cols.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn quotes_what_postgresql_would_not_read_back_unchanged() {
        for (name, want) in [
            ("orders", "orders"),
            ("_x1$", "_x1$"),
            ("Weird", "\"Weird\""),
            ("order", "\"order\""),
            ("user", "\"user\""),
            ("a b", "\"a b\""),
            ("say\"hi", "\"say\"\"hi\""),
            ("1st", "\"1st\""),
            ("émail", "\"émail\""),
            ("", "\"\""),
        ] {
            assert_eq!(quote_ident(name), want, "{name}");
        }
    }
}
