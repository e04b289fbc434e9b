//! Name resolution: the resolver's state, FROM-clause scopes, and how a relation, a
//! column or a function name is found, exactly as PostgreSQL would find it.
//!
//! A name that cannot be found, or that matches more than one thing, is an error. The
//! resolver never guesses and never drops a reference it could not place.

use std::collections::BTreeSet;

use sqlparser::ast::{Ident, ObjectName, TableAlias};

use crate::access::{Action, FuncName, Need, RelName};
use crate::catalog::RelKind;
use crate::error::AnalyseError;
use crate::ident::{fold, fold_object_name};
use crate::pg_catalog::{
    builtin_relation, is_builtin_function, INFORMATION_SCHEMA, PG_CATALOG, SYSTEM_COLUMNS,
};
use crate::AnalyseContext;

/// One entry of a FROM clause (or a DML target), as name resolution sees it.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// The name it is referenced by: its alias, or the relation / CTE / function name.
    pub name: Option<String>,
    /// For an un-aliased relation: its schema (`public.customers.id` is valid).
    pub schema: Option<String>,
    /// Visible column names, in order.
    pub cols: Vec<String>,
    pub kind: ItemKind,
}

#[derive(Clone, Debug)]
pub(crate) enum ItemKind {
    /// A catalog relation: `real[i]` is the catalog name of visible column `cols[i]`.
    Relation {
        rel: RelName,
        real: Vec<String>,
        system: bool,
    },
    /// A subquery, CTE, VALUES or function: reading its columns needs nothing more (its own
    /// reads were recorded when it was analysed).
    Derived,
    /// An aliased join `(a JOIN b ...) AS j`: the inner items are reachable only via `j`.
    Group {
        items: Vec<Item>,
        merged: Vec<Merged>,
    },
}

/// A column merged by JOIN USING or NATURAL: unqualified references to it are not
/// ambiguous among its members.
#[derive(Clone, Debug)]
pub(crate) struct Merged {
    pub name: String,
    pub members: Vec<usize>,
}

/// One query level's FROM clause.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    pub items: Vec<Item>,
    pub merged: Vec<Merged>,
}

/// The outcome of looking a column up among items.
pub(crate) enum Found {
    None,
    /// The needs of reading it, and which items provided it.
    One(Vec<Need>, Vec<usize>),
    Ambiguous,
}

fn column_need(rel: &RelName, column: &str) -> Need {
    Need::Column {
        relation: rel.clone(),
        action: Action::Select,
        column: column.to_string(),
    }
}

impl Item {
    pub fn column(&self, col: &str) -> Found {
        match &self.kind {
            ItemKind::Relation { rel, real, system } => {
                if let Some(i) = self.cols.iter().position(|c| c == col) {
                    let real_name = real.get(i).map(String::as_str).unwrap_or(col);
                    Found::One(vec![column_need(rel, real_name)], vec![])
                } else if *system && SYSTEM_COLUMNS.contains(&col) {
                    Found::One(vec![column_need(rel, col)], vec![])
                } else {
                    Found::None
                }
            }
            ItemKind::Derived => match self.cols.iter().filter(|c| *c == col).count() {
                0 => Found::None,
                1 => Found::One(vec![], vec![]),
                _ => Found::Ambiguous,
            },
            ItemKind::Group { items, merged } => find_in(items, merged, col),
        }
    }

    /// Needs of a whole-row reference (`t`, `t.*`, `row_to_json(t)`, NATURAL, `*`).
    pub fn whole_row(&self) -> Vec<Need> {
        match &self.kind {
            ItemKind::Relation { rel, real, .. } if real.is_empty() => vec![Need::AnyColumn {
                relation: rel.clone(),
                action: Action::Select,
            }],
            ItemKind::Relation { rel, real, .. } => {
                real.iter().map(|c| column_need(rel, c)).collect()
            }
            ItemKind::Derived => vec![],
            ItemKind::Group { items, .. } => items.iter().flat_map(Item::whole_row).collect(),
        }
    }

    pub fn describe(&self) -> String {
        match (&self.kind, &self.name) {
            (ItemKind::Relation { rel, .. }, _) => rel.to_string(),
            (_, Some(name)) => name.clone(),
            (_, None) => "a subquery".into(),
        }
    }
}

/// Looks `col` up among `items` (one FROM level), with USING/NATURAL merges.
pub(crate) fn find_in(items: &[Item], merged: &[Merged], col: &str) -> Found {
    let mut needs = Vec::new();
    let mut hits = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.column(col) {
            Found::None => {}
            Found::Ambiguous => return Found::Ambiguous,
            Found::One(n, _) => {
                needs.extend(n);
                hits.push(i);
            }
        }
    }
    match hits.len() {
        0 => Found::None,
        1 => Found::One(needs, hits),
        _ if merged
            .iter()
            .any(|m| m.name == col && hits.iter().all(|h| m.members.contains(h))) =>
        {
            Found::One(needs, hits)
        }
        _ => Found::Ambiguous,
    }
}

/// A relation found in the catalog (or among PostgreSQL's built-in relations).
pub(crate) struct RelInfo {
    pub name: RelName,
    pub columns: Vec<String>,
    pub kind: RelKind,
}

/// The resolver's state for one statement.
pub(crate) struct Resolver<'a> {
    pub ctx: &'a AnalyseContext<'a>,
    pub needs: BTreeSet<Need>,
    /// Query levels, innermost last.
    pub scopes: Vec<Scope>,
    /// Visible CTEs (name, columns), innermost last.
    pub ctes: Vec<(String, Vec<String>)>,
}

impl<'a> Resolver<'a> {
    pub fn new(ctx: &'a AnalyseContext<'a>) -> Self {
        Self {
            ctx,
            needs: BTreeSet::new(),
            scopes: Vec::new(),
            ctes: Vec::new(),
        }
    }

    pub fn need(&mut self, need: Need) {
        self.needs.insert(need);
    }

    pub fn extend(&mut self, needs: impl IntoIterator<Item = Need>) {
        self.needs.extend(needs);
    }

    pub fn current(&mut self) -> Result<&mut Scope, AnalyseError> {
        self.scopes
            .last_mut()
            .ok_or_else(|| AnalyseError::resolve("no FROM clause in scope"))
    }

    fn relation_in(&self, schema: &str, name: &str) -> Option<RelInfo> {
        let rel = RelName::new(schema, name);
        if let Some(r) = self.ctx.catalog.relation(schema, name) {
            return Some(RelInfo {
                name: rel,
                columns: r.columns.clone(),
                kind: r.kind,
            });
        }
        if schema == PG_CATALOG || schema == INFORMATION_SCHEMA {
            return builtin_relation(schema, name).map(|columns| RelInfo {
                name: rel,
                columns,
                kind: RelKind::Table,
            });
        }
        None
    }

    /// A relation by its (folded) dotted name: pg_catalog first, then the search_path.
    pub fn lookup_relation(&self, parts: &[String]) -> Result<RelInfo, AnalyseError> {
        match parts {
            [schema, name] => self.relation_in(schema, name).ok_or_else(|| {
                AnalyseError::resolve(format!("relation \"{schema}.{name}\" does not exist"))
            }),
            [name] => std::iter::once(PG_CATALOG)
                .chain(self.ctx.search_path.iter().map(String::as_str))
                .find_map(|schema| self.relation_in(schema, name))
                .ok_or_else(|| {
                    AnalyseError::resolve(format!(
                        "relation \"{name}\" does not exist (search_path: {})",
                        self.ctx.search_path.join(", ")
                    ))
                }),
            _ => Err(AnalyseError::unsupported(format!(
                "relation name \"{}\" (cross-database references)",
                parts.join(".")
            ))),
        }
    }

    /// A function by its dotted name. Unqualified: pg_catalog when the catalog (or, if the
    /// catalog has no pg_catalog functions, PostgreSQL's built-in list) has it there, else
    /// the first search_path schema whose catalog has it, else pg_catalog.
    pub fn resolve_function(&self, name: &ObjectName) -> Result<FuncName, AnalyseError> {
        let parts = fold_object_name(name)?;
        match parts.as_slice() {
            [schema, func] => Ok(FuncName::new(schema.clone(), func.clone())),
            [func] => {
                let cat = self.ctx.catalog;
                let in_pg_catalog = if cat.knows_functions_of(PG_CATALOG) {
                    cat.has_function(PG_CATALOG, func)
                } else {
                    is_builtin_function(func)
                };
                let schema = if in_pg_catalog {
                    PG_CATALOG.to_string()
                } else {
                    self.ctx
                        .search_path
                        .iter()
                        .find(|s| cat.has_function(s, func))
                        .cloned()
                        .unwrap_or_else(|| PG_CATALOG.to_string())
                };
                Ok(FuncName::new(schema, func.clone()))
            }
            _ => Err(AnalyseError::unsupported(format!(
                "function name \"{}\"",
                parts.join(".")
            ))),
        }
    }

    /// A DML target or COPY relation as an item (CTE names do not apply to these).
    pub fn target_item(
        &self,
        name: &ObjectName,
        alias: Option<&Ident>,
    ) -> Result<(Item, RelName), AnalyseError> {
        let info = self.lookup_relation(&fold_object_name(name)?)?;
        let rel = info.name.clone();
        let item = Item {
            name: Some(alias.map(fold).unwrap_or_else(|| info.name.name.clone())),
            schema: alias.is_none().then(|| info.name.schema.clone()),
            cols: info.columns.clone(),
            kind: ItemKind::Relation {
                rel: info.name,
                real: info.columns,
                system: info.kind != RelKind::View,
            },
        };
        Ok((item, rel))
    }

    /// Finds the item a qualifier names, innermost query level first.
    pub fn find_item(
        &self,
        schema: Option<&str>,
        name: &str,
    ) -> Result<Option<&Item>, AnalyseError> {
        for scope in self.scopes.iter().rev() {
            let mut hits = scope.items.iter().filter(|it| {
                it.name.as_deref() == Some(name)
                    && schema.is_none_or(|s| it.schema.as_deref() == Some(s))
            });
            if let Some(first) = hits.next() {
                if hits.next().is_some() {
                    return Err(AnalyseError::resolve(format!(
                        "table reference \"{name}\" is ambiguous"
                    )));
                }
                return Ok(Some(first));
            }
        }
        Ok(None)
    }

    /// A column reference `col`, `t.col` or `s.t.col` (or a whole-row reference `t`).
    pub fn column_ref(&mut self, idents: &[Ident]) -> Result<(), AnalyseError> {
        let parts: Vec<String> = idents.iter().map(fold).collect();
        match parts.as_slice() {
            [col] => self.unqualified(col),
            [table, col] => self.qualified(None, table, col),
            [schema, table, col] => self.qualified(Some(schema), table, col),
            _ => Err(AnalyseError::unsupported(format!(
                "column reference \"{}\"",
                parts.join(".")
            ))),
        }
    }

    fn unqualified(&mut self, col: &str) -> Result<(), AnalyseError> {
        for scope in self.scopes.iter().rev() {
            match find_in(&scope.items, &scope.merged, col) {
                Found::One(needs, _) => {
                    self.needs.extend(needs);
                    return Ok(());
                }
                Found::Ambiguous => {
                    return Err(AnalyseError::resolve(format!(
                        "column reference \"{col}\" is ambiguous"
                    )))
                }
                Found::None => {}
            }
        }
        if let Some(item) = self.find_item(None, col)? {
            let needs = item.whole_row();
            self.needs.extend(needs);
            return Ok(());
        }
        let place = match self.scopes.last().map(|s| s.items.as_slice()) {
            Some([only]) => format!(" in {}", only.describe()),
            _ => String::new(),
        };
        Err(AnalyseError::resolve(format!(
            "column \"{col}\" does not exist{place}"
        )))
    }

    fn qualified(
        &mut self,
        schema: Option<&str>,
        table: &str,
        col: &str,
    ) -> Result<(), AnalyseError> {
        let Some(item) = self.find_item(schema, table)? else {
            let full = match schema {
                Some(s) => format!("{s}.{table}"),
                None => table.to_string(),
            };
            return Err(AnalyseError::resolve(format!(
                "missing FROM-clause entry for table \"{full}\""
            )));
        };
        match item.column(col) {
            Found::One(needs, _) => {
                self.needs.extend(needs);
                Ok(())
            }
            Found::None => Err(AnalyseError::resolve(format!(
                "column \"{col}\" does not exist in {}",
                item.describe()
            ))),
            Found::Ambiguous => Err(AnalyseError::resolve(format!(
                "column reference \"{table}.{col}\" is ambiguous"
            ))),
        }
    }

    /// Whole-row needs of the item a (possibly qualified) name denotes: `t.*`, `row_to_json(t)`.
    pub fn whole_row_of(&mut self, name: &ObjectName) -> Result<(), AnalyseError> {
        let parts = fold_object_name(name)?;
        let (schema, table) = match parts.as_slice() {
            [t] => (None, t.as_str()),
            [s, t] => (Some(s.as_str()), t.as_str()),
            _ => return Err(AnalyseError::unsupported(format!("\"{name}.*\""))),
        };
        let item = self.find_item(schema, table)?.ok_or_else(|| {
            AnalyseError::resolve(format!("missing FROM-clause entry for table \"{table}\""))
        })?;
        let needs = item.whole_row();
        self.needs.extend(needs);
        Ok(())
    }
}

/// Applies an alias's column list to visible column names.
pub(crate) fn apply_alias_columns(
    cols: Vec<String>,
    alias: Option<&TableAlias>,
) -> Result<Vec<String>, AnalyseError> {
    let Some(alias) = alias else {
        return Ok(cols);
    };
    if alias.columns.len() > cols.len() {
        return Err(AnalyseError::resolve(format!(
            "table \"{}\" has {} columns available but {} columns specified",
            fold(&alias.name),
            cols.len(),
            alias.columns.len()
        )));
    }
    let mut out: Vec<String> = alias.columns.iter().map(|c| fold(&c.name)).collect();
    out.extend(cols.into_iter().skip(alias.columns.len()));
    Ok(out)
}
