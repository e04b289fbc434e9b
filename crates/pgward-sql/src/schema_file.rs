//! `Catalog::from_create_tables`: the catalog for `pgward check --schema schema.sql`.
//!
//! Reads CREATE SCHEMA / TABLE / VIEW (and notes CREATE FUNCTION / PROCEDURE names);
//! a view's columns come from its select list when each item is a plain name or has an
//! alias. Anything else in the file is an error, so a typo never yields a smaller catalog.

use sqlparser::ast::{CreateTable, CreateView, SelectItem, SetExpr, Statement};

use crate::catalog::{Catalog, RelKind};
use crate::error::AnalyseError;
use crate::ident::{fold, fold_object_name};
use crate::parse::{parse, Body};
use crate::query::colname;

fn split_name(parts: Vec<String>) -> Result<(String, String), AnalyseError> {
    match <[String; 2]>::try_from(parts) {
        Ok([schema, name]) => Ok((schema, name)),
        Err(parts) => match <[String; 1]>::try_from(parts) {
            Ok([name]) => Ok(("public".into(), name)),
            Err(parts) => Err(AnalyseError::unsupported(format!(
                "schema file: name {} is not supported",
                parts.join(".")
            ))),
        },
    }
}

fn view_columns(view: &CreateView) -> Result<Vec<String>, AnalyseError> {
    if !view.columns.is_empty() {
        return Ok(view.columns.iter().map(|c| fold(&c.name)).collect());
    }
    let SetExpr::Select(select) = &*view.query.body else {
        return Err(AnalyseError::unsupported(format!(
            "schema file: columns of view {} (not a plain SELECT)",
            view.name
        )));
    };
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Ok(fold(alias)),
            SelectItem::UnnamedExpr(
                e @ (sqlparser::ast::Expr::Identifier(_)
                | sqlparser::ast::Expr::CompoundIdentifier(_)),
            ) => Ok(colname(e)),
            other => Err(AnalyseError::unsupported(format!(
                "schema file: view {} column \"{other}\" needs an alias",
                view.name
            ))),
        })
        .collect()
}

impl Catalog {
    /// Builds a catalog from a file of CREATE SCHEMA/TABLE/VIEW statements.
    pub fn from_create_tables(sql: &str) -> Result<Catalog, AnalyseError> {
        let mut catalog = Catalog::new();
        catalog.add_schema("public");
        for parsed in parse(sql)? {
            let Body::Sql(statement) = parsed.body else {
                return Err(AnalyseError::unsupported(
                    "schema file: only CREATE statements",
                ));
            };
            match *statement {
                Statement::CreateSchema { schema_name, .. } => {
                    let name = match schema_name {
                        sqlparser::ast::SchemaName::Simple(n)
                        | sqlparser::ast::SchemaName::NamedAuthorization(n, _) => {
                            fold_object_name(&n)?.join(".")
                        }
                        sqlparser::ast::SchemaName::UnnamedAuthorization(i) => fold(&i),
                    };
                    catalog.add_schema(name);
                }
                Statement::CreateTable(CreateTable {
                    name,
                    columns,
                    query: None,
                    ..
                }) => {
                    let (schema, table) = split_name(fold_object_name(&name)?)?;
                    let cols = columns.iter().map(|c| fold(&c.name)).collect();
                    catalog.add_relation(schema, table, RelKind::Table, cols);
                }
                Statement::CreateView(view) => {
                    let (schema, name) = split_name(fold_object_name(&view.name)?)?;
                    let kind = if view.materialized {
                        RelKind::MaterializedView
                    } else {
                        RelKind::View
                    };
                    let cols = view_columns(&view)?;
                    catalog.add_relation(schema, name, kind, cols);
                }
                Statement::CreateFunction(f) => {
                    let (schema, name) = split_name(fold_object_name(&f.name)?)?;
                    catalog.add_function_name(schema, name);
                }
                Statement::CreateProcedure { name, .. } => {
                    let (schema, name) = split_name(fold_object_name(&name)?)?;
                    catalog.add_function_name(schema, name);
                }
                Statement::CreateIndex(_)
                | Statement::CreateExtension(_)
                | Statement::Comment { .. } => {}
                _ => {
                    return Err(AnalyseError::unsupported(format!(
                        "schema file: statement \"{}\" (only CREATE SCHEMA/TABLE/VIEW/FUNCTION)",
                        parsed.normalized.chars().take(40).collect::<String>()
                    )))
                }
            }
        }
        Ok(catalog)
    }
}
