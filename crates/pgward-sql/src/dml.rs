//! INSERT (with ON CONFLICT), UPDATE ... FROM, DELETE ... USING, MERGE and COPY: the
//! privileges on the target relation, plus every column read on the way.
//!
//! A DML target is always a catalog relation (never a CTE) and needs no SELECT unless a
//! column of it is read (WHERE, SET expressions, RETURNING, ON CONFLICT).

use sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, CopySource, CopyTarget, Delete, FromTable, Ident,
    Insert, Merge, MergeAction, MergeInsertKind, MergeUpdateKind, ObjectName, OnConflictAction,
    OnInsert, OutputClause, SelectItem, TableFactor, TableObject, Update, UpdateTableFromKind,
};

use crate::access::{Action, Need, RelName};
use crate::error::AnalyseError;
use crate::expr::is_default;
use crate::ident::{fold, fold_object_name};
use crate::query::colname;
use crate::scope::{Item, Resolver, Scope};

fn unsupported(what: &str) -> AnalyseError {
    AnalyseError::unsupported(format!("{what} is not supported"))
}

/// How a COPY statement moves data, once files and programs are ruled out.
pub(crate) enum CopyDirection {
    ToStdout,
    FromStdin,
}

impl Resolver<'_> {
    /// The item of a DML target written as a FROM item (`UPDATE t AS x`, `MERGE INTO t`).
    fn target_factor(&self, tf: &TableFactor) -> Result<(Item, RelName), AnalyseError> {
        match tf {
            TableFactor::Table {
                name,
                alias,
                args: None,
                with_hints,
                version: None,
                partitions,
                json_path: None,
                sample: None,
                index_directives,
                ..
            } if with_hints.is_empty() && partitions.is_empty() && index_directives.is_empty() => {
                if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    return Err(unsupported("column aliases on a DML target"));
                }
                self.target_item(name, alias.as_ref().map(|a| &a.name))
            }
            _ => Err(unsupported("this DML target")),
        }
    }

    /// A column of the target, checked to exist, with the given privilege.
    fn target_column(
        &mut self,
        item: &Item,
        rel: &RelName,
        col: &str,
        action: Action,
    ) -> Result<(), AnalyseError> {
        let crate::scope::ItemKind::Relation { real, .. } = &item.kind else {
            return Err(unsupported("a DML target that is not a relation"));
        };
        let Some(i) = item.cols.iter().position(|c| c == col) else {
            return Err(AnalyseError::resolve(format!(
                "column \"{col}\" does not exist in {rel}"
            )));
        };
        self.need(Need::Column {
            relation: rel.clone(),
            action,
            column: real[i].clone(),
        });
        Ok(())
    }

    fn assignment_columns(
        &mut self,
        a: &Assignment,
        item: &Item,
        rel: &RelName,
    ) -> Result<(), AnalyseError> {
        let names: Vec<&ObjectName> = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![n],
            AssignmentTarget::Tuple(ns) => ns.iter().collect(),
        };
        for name in names {
            match fold_object_name(name)?.as_slice() {
                [col] => self.target_column(item, rel, col, Action::Update)?,
                _ => return Err(unsupported("assigning to a field or a qualified column")),
            }
        }
        if !is_default(&a.value) {
            self.expr(&a.value)?;
        }
        Ok(())
    }

    fn returning(&mut self, items: Option<&Vec<SelectItem>>) -> Result<Vec<String>, AnalyseError> {
        let Some(items) = items else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    self.expr(e)?;
                    out.push(colname(e));
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    self.expr(expr)?;
                    out.push(fold(alias));
                }
                SelectItem::Wildcard(_) => {
                    let items = self.current()?.items.clone();
                    for it in &items {
                        self.extend(it.whole_row());
                        out.extend(it.cols.iter().cloned());
                    }
                }
                SelectItem::QualifiedWildcard(
                    sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(name),
                    _,
                ) => {
                    self.whole_row_of(name)?;
                    let parts = fold_object_name(name)?;
                    if let Some(it) =
                        self.find_item(None, parts.last().map(String::as_str).unwrap_or(""))?
                    {
                        out.extend(it.cols.iter().cloned());
                    }
                }
                _ => return Err(unsupported("this RETURNING item")),
            }
        }
        Ok(out)
    }

    pub fn insert(&mut self, ins: &Insert) -> Result<Vec<String>, AnalyseError> {
        let Insert {
            insert_token: _,
            optimizer_hints,
            or,
            ignore,
            into: _,
            table,
            table_alias,
            columns,
            by_name,
            overwrite,
            source,
            assignments,
            partitioned,
            after_columns,
            overriding: _,
            has_table_keyword,
            on,
            returning,
            output,
            replace_into,
            priority,
            insert_alias,
            settings,
            format_clause,
            multi_table_insert_type,
            multi_table_into_clauses,
            multi_table_when_clauses,
            multi_table_else_clause,
        } = ins;
        if !optimizer_hints.is_empty()
            || or.is_some()
            || *ignore
            || *by_name
            || *overwrite
            || !assignments.is_empty()
            || partitioned.is_some()
            || !after_columns.is_empty()
            || *has_table_keyword
            || output.is_some()
            || *replace_into
            || priority.is_some()
            || insert_alias.is_some()
            || settings.is_some()
            || format_clause.is_some()
            || multi_table_insert_type.is_some()
            || !multi_table_into_clauses.is_empty()
            || !multi_table_when_clauses.is_empty()
            || multi_table_else_clause.is_some()
        {
            return Err(unsupported("this INSERT form"));
        }
        let TableObject::TableName(name) = table else {
            return Err(unsupported("INSERT into a function or subquery"));
        };
        let alias: Option<&Ident> = table_alias.as_ref().map(|a| &a.alias);
        let (item, rel) = self.target_item(name, alias)?;
        let mut target_cols = Vec::new();
        for c in columns {
            match fold_object_name(c)?.as_slice() {
                [col] => target_cols.push(col.clone()),
                _ => return Err(unsupported("a qualified INSERT column")),
            }
        }
        match source {
            None => self.need(Need::AnyColumn {
                relation: rel.clone(),
                action: Action::Insert,
            }),
            Some(q) => {
                let width = self.query(q)?.len();
                if target_cols.is_empty() {
                    if width > item.cols.len() {
                        return Err(AnalyseError::resolve(format!(
                            "INSERT has more expressions than {rel} has columns"
                        )));
                    }
                    target_cols = item.cols.iter().take(width).cloned().collect();
                }
                if width == 0 && target_cols.is_empty() {
                    self.need(Need::AnyColumn {
                        relation: rel.clone(),
                        action: Action::Insert,
                    });
                }
            }
        }
        for col in &target_cols {
            self.target_column(&item, &rel, col, Action::Insert)?;
        }
        self.scopes.push(Scope {
            items: vec![item.clone()],
            merged: vec![],
        });
        if let Some(on) = on {
            let OnInsert::OnConflict(oc) = on else {
                return Err(unsupported("ON DUPLICATE KEY UPDATE"));
            };
            let do_update = matches!(oc.action, OnConflictAction::DoUpdate(_));
            match &oc.conflict_target {
                None => {}
                Some(ConflictTarget::Columns { columns, predicate }) => {
                    for c in columns {
                        self.target_column(&item, &rel, &fold(c), Action::Select)?;
                    }
                    if let Some(p) = predicate {
                        self.expr(p)?;
                    }
                }
                Some(ConflictTarget::OnConstraint(_)) if do_update => {
                    return Err(unsupported(
                        "ON CONFLICT ON CONSTRAINT ... DO UPDATE (the constraint's columns are unknown)",
                    ))
                }
                Some(ConflictTarget::OnConstraint(_)) => {}
            }
            if let OnConflictAction::DoUpdate(du) = &oc.action {
                let mut excluded = item.clone();
                excluded.name = Some("excluded".into());
                excluded.schema = None;
                self.current()?.items.push(excluded);
                for a in &du.assignments {
                    self.assignment_columns(a, &item, &rel)?;
                }
                if let Some(sel) = &du.selection {
                    self.expr(sel)?;
                }
                self.current()?.items.truncate(1);
            }
        }
        let out = self.returning(returning.as_ref())?;
        self.scopes.pop();
        Ok(out)
    }

    pub fn update(&mut self, u: &Update) -> Result<Vec<String>, AnalyseError> {
        let Update {
            update_token: _,
            optimizer_hints,
            table,
            on_cluster,
            assignments,
            from,
            selection,
            returning,
            output,
            or,
            order_by,
            limit,
            settings,
        } = u;
        if !optimizer_hints.is_empty()
            || on_cluster.is_some()
            || output.is_some()
            || or.is_some()
            || !order_by.is_empty()
            || limit.is_some()
            || settings.is_some()
            || !table.joins.is_empty()
        {
            return Err(unsupported("this UPDATE form"));
        }
        let (item, rel) = self.target_factor(&table.relation)?;
        self.scopes.push(Scope {
            items: vec![item.clone()],
            merged: vec![],
        });
        if let Some(UpdateTableFromKind::BeforeSet(from) | UpdateTableFromKind::AfterSet(from)) =
            from
        {
            for twj in from {
                self.table_with_joins(twj)?;
            }
        }
        for a in assignments {
            self.assignment_columns(a, &item, &rel)?;
        }
        if let Some(sel) = selection {
            self.expr(sel)?;
        }
        let out = self.returning(returning.as_ref())?;
        self.scopes.pop();
        Ok(out)
    }

    pub fn delete(&mut self, d: &Delete) -> Result<Vec<String>, AnalyseError> {
        let Delete {
            delete_token: _,
            optimizer_hints,
            tables,
            from,
            on_cluster,
            using,
            selection,
            returning,
            output,
            order_by,
            limit,
            settings,
        } = d;
        if !optimizer_hints.is_empty()
            || !tables.is_empty()
            || on_cluster.is_some()
            || output.is_some()
            || !order_by.is_empty()
            || limit.is_some()
            || settings.is_some()
        {
            return Err(unsupported("this DELETE form"));
        }
        let (FromTable::WithFromKeyword(targets) | FromTable::WithoutKeyword(targets)) = from;
        let [target] = targets.as_slice() else {
            return Err(unsupported("DELETE from several tables"));
        };
        if !target.joins.is_empty() {
            return Err(unsupported("DELETE with a join"));
        }
        let (item, rel) = self.target_factor(&target.relation)?;
        self.need(Need::Relation {
            relation: rel,
            action: Action::Delete,
        });
        self.scopes.push(Scope {
            items: vec![item],
            merged: vec![],
        });
        for twj in using.iter().flatten() {
            self.table_with_joins(twj)?;
        }
        if let Some(sel) = selection {
            self.expr(sel)?;
        }
        let out = self.returning(returning.as_ref())?;
        self.scopes.pop();
        Ok(out)
    }

    pub fn merge(&mut self, m: &Merge) -> Result<Vec<String>, AnalyseError> {
        let Merge {
            merge_token: _,
            optimizer_hints,
            into: _,
            table,
            source,
            on,
            clauses,
            output,
        } = m;
        let returning = match output {
            None => None,
            Some(OutputClause::Returning { select_items, .. }) => Some(select_items),
            Some(OutputClause::Output { .. }) => return Err(unsupported("MERGE ... OUTPUT")),
        };
        if !optimizer_hints.is_empty() {
            return Err(unsupported("optimizer hints"));
        }
        let (item, rel) = self.target_factor(table)?;
        self.scopes.push(Scope {
            items: vec![item.clone()],
            merged: vec![],
        });
        self.table_factor(source)?;
        self.expr(on)?;
        for clause in clauses {
            if let Some(p) = &clause.predicate {
                self.expr(p)?;
            }
            match &clause.action {
                MergeAction::Update(u) => {
                    let (MergeUpdateKind::Set(assignments), None, None) =
                        (&u.kind, &u.update_predicate, &u.delete_predicate)
                    else {
                        return Err(unsupported("this MERGE UPDATE form"));
                    };
                    for a in assignments {
                        self.assignment_columns(a, &item, &rel)?;
                    }
                }
                MergeAction::Delete { .. } => self.need(Need::Relation {
                    relation: rel.clone(),
                    action: Action::Delete,
                }),
                MergeAction::Insert(ins) => {
                    let MergeInsertKind::Values(values) = &ins.kind else {
                        return Err(unsupported("MERGE INSERT ROW"));
                    };
                    if ins.insert_predicate.is_some() {
                        return Err(unsupported("MERGE INSERT predicate"));
                    }
                    self.values(values)?;
                    let mut cols = Vec::new();
                    for c in &ins.columns {
                        match fold_object_name(c)?.as_slice() {
                            [col] => cols.push(col.clone()),
                            _ => return Err(unsupported("a qualified INSERT column")),
                        }
                    }
                    if cols.is_empty() {
                        let width = values.rows.first().map(|r| r.len()).unwrap_or(0);
                        cols = item.cols.iter().take(width).cloned().collect();
                    }
                    for col in &cols {
                        self.target_column(&item, &rel, col, Action::Insert)?;
                    }
                }
                MergeAction::DoNothing { .. } => {}
            }
        }
        let out = self.returning(returning)?;
        self.scopes.pop();
        Ok(out)
    }

    /// COPY: a read (TO STDOUT) or an insert (FROM STDIN). Files and programs never.
    pub fn copy(
        &mut self,
        source: &CopySource,
        to: bool,
        target: &CopyTarget,
    ) -> Result<CopyDirection, AnalyseError> {
        let direction = match (target, to) {
            (CopyTarget::File { .. } | CopyTarget::Program { .. }, _) => {
                return Err(AnalyseError::not_allowed(
                    "COPY to or from a file or program is not allowed",
                ))
            }
            (CopyTarget::Stdout, true) => CopyDirection::ToStdout,
            (CopyTarget::Stdin, false) => CopyDirection::FromStdin,
            _ => return Err(unsupported("this COPY direction")),
        };
        match (source, &direction) {
            (CopySource::Query(q), CopyDirection::ToStdout) => {
                self.query(q)?;
            }
            (CopySource::Query(_), CopyDirection::FromStdin) => {
                return Err(unsupported("COPY (query) FROM"))
            }
            (
                CopySource::Table {
                    table_name,
                    columns,
                },
                _,
            ) => {
                let (item, rel) = self.target_item(table_name, None)?;
                let action = match direction {
                    CopyDirection::ToStdout => {
                        self.need(Need::AnyColumn {
                            relation: rel.clone(),
                            action: Action::Select,
                        });
                        Action::Select
                    }
                    CopyDirection::FromStdin => Action::Insert,
                };
                let cols: Vec<String> = if columns.is_empty() {
                    item.cols.clone()
                } else {
                    columns.iter().map(fold).collect()
                };
                for col in &cols {
                    self.target_column(&item, &rel, col, action)?;
                }
            }
        }
        Ok(direction)
    }
}
