//! Queries: WITH, set operations, VALUES, SELECT lists, GROUP BY/HAVING/ORDER BY, window
//! clauses, LIMIT and row locks. Returns each query's output column names so that outer
//! levels can resolve references to subqueries and CTEs.
//!
//! Every clause PostgreSQL does not have is an error, never skipped.

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, LimitClause, LockClause, NamedWindowExpr, OrderBy, OrderByKind,
    Query, Select, SelectFlavor, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, SetOperator,
    SetQuantifier, Statement, Value, Values, WildcardAdditionalOptions,
};

use crate::access::{Action, Need};
use crate::error::AnalyseError;
use crate::expr::is_default;
use crate::ident::{fold, fold_object_name};
use crate::scope::{ItemKind, Resolver, Scope};

fn unsupported(what: &str) -> AnalyseError {
    AnalyseError::unsupported(format!("{what} is not supported"))
}

/// The output column name PostgreSQL gives an unaliased select-list expression.
pub(crate) fn colname(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => fold(i),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold).unwrap_or_default(),
        Expr::CompoundFieldAccess { access_chain, .. } => match access_chain.last() {
            Some(sqlparser::ast::AccessExpr::Dot(Expr::Identifier(i))) => fold(i),
            _ => "?column?".into(),
        },
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(fold)
            .unwrap_or_else(|| "?column?".into()),
        Expr::Nested(inner) => colname(inner),
        Expr::Cast {
            expr, data_type, ..
        } => match colname(expr) {
            n if n == "?column?" => data_type.to_string().to_ascii_lowercase(),
            n => n,
        },
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        Expr::Interval(_) => "interval".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Substring { .. } => "substring".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Trim { .. } => "btrim".into(),
        Expr::Overlay { .. } => "overlay".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::AtTimeZone { .. } => "timezone".into(),
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => "bool".into(),
        _ => "?column?".into(),
    }
}

fn check_wildcard_options(opts: &WildcardAdditionalOptions) -> Result<(), AnalyseError> {
    let WildcardAdditionalOptions {
        wildcard_token: _,
        opt_ilike,
        opt_exclude,
        opt_except,
        opt_replace,
        opt_rename,
        opt_alias,
    } = opts;
    if opt_ilike.is_some()
        || opt_exclude.is_some()
        || opt_except.is_some()
        || opt_replace.is_some()
        || opt_rename.is_some()
        || opt_alias.is_some()
    {
        return Err(unsupported("a * with modifiers"));
    }
    Ok(())
}

impl Resolver<'_> {
    /// Analyses a query; returns its output column names.
    pub fn query(&mut self, q: &Query) -> Result<Vec<String>, AnalyseError> {
        let Query {
            with,
            body,
            order_by,
            limit_clause,
            fetch,
            locks,
            for_clause,
            settings,
            format_clause,
            pipe_operators,
        } = q;
        if for_clause.is_some()
            || settings.is_some()
            || format_clause.is_some()
            || !pipe_operators.is_empty()
        {
            return Err(unsupported("this query clause"));
        }
        let cte_mark = self.ctes.len();
        if let Some(with) = with {
            for cte in &with.cte_tables {
                if cte.from.is_some() {
                    return Err(unsupported("CTE FROM"));
                }
                let name = fold(&cte.alias.name);
                let alias_cols: Vec<String> =
                    cte.alias.columns.iter().map(|c| fold(&c.name)).collect();
                if with.recursive {
                    // The CTE is visible in its own body: its columns come from the alias
                    // list or from the non-recursive arm.
                    let cols = if !alias_cols.is_empty() {
                        alias_cols.clone()
                    } else if let SetExpr::SetOperation { left, .. } = &*cte.query.body {
                        self.set_expr(left)?
                    } else {
                        self.query(&cte.query)?
                    };
                    self.ctes.push((name.clone(), cols));
                }
                let out = self.query(&cte.query)?;
                let cols = if alias_cols.is_empty() {
                    out
                } else {
                    alias_cols
                };
                self.ctes.push((name, cols));
            }
        }
        let cols = match &**body {
            SetExpr::Select(select) => self.select(select, order_by.as_ref(), locks)?,
            other => {
                if !locks.is_empty() {
                    return Err(unsupported("FOR UPDATE/SHARE on a set operation"));
                }
                let cols = self.set_expr(other)?;
                if let Some(order_by) = order_by {
                    self.order_by_outputs(order_by, &cols)?;
                }
                cols
            }
        };
        match limit_clause {
            None => {}
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(unsupported("LIMIT BY"));
                }
                if let Some(limit) = limit {
                    self.expr(limit)?;
                }
                if let Some(offset) = offset {
                    self.expr(&offset.value)?;
                }
            }
            Some(LimitClause::OffsetCommaLimit { .. }) => return Err(unsupported("LIMIT a, b")),
        }
        if let Some(fetch) = fetch {
            if let Some(quantity) = &fetch.quantity {
                self.expr(quantity)?;
            }
        }
        self.ctes.truncate(cte_mark);
        Ok(cols)
    }

    pub fn set_expr(&mut self, body: &SetExpr) -> Result<Vec<String>, AnalyseError> {
        match body {
            SetExpr::Select(select) => self.select(select, None, &[]),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                if matches!(op, SetOperator::Minus)
                    || !matches!(
                        set_quantifier,
                        SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None
                    )
                {
                    return Err(unsupported("this set operation"));
                }
                let cols = self.set_expr(left)?;
                self.set_expr(right)?;
                Ok(cols)
            }
            SetExpr::Values(values) => self.values(values),
            SetExpr::Insert(stmt)
            | SetExpr::Update(stmt)
            | SetExpr::Delete(stmt)
            | SetExpr::Merge(stmt) => self.data_modifying(stmt),
            SetExpr::Table(table) => {
                let mut parts = Vec::new();
                if let Some(schema) = &table.schema_name {
                    parts.push(schema.clone());
                }
                match &table.table_name {
                    Some(name) => parts.push(name.clone()),
                    None => return Err(unsupported("TABLE without a name")),
                }
                let parts: Vec<String> = parts.iter().map(fold).collect();
                let item = self.named_item(&parts, None)?;
                let needs = item.whole_row();
                self.extend(needs);
                Ok(item.cols)
            }
        }
    }

    /// A data-modifying statement inside WITH: returns its RETURNING columns.
    fn data_modifying(&mut self, stmt: &Statement) -> Result<Vec<String>, AnalyseError> {
        // DML inside WITH sees no FROM items of an outer query level.
        let saved = std::mem::take(&mut self.scopes);
        let result = match stmt {
            Statement::Insert(insert) => self.insert(insert),
            Statement::Update(update) => self.update(update),
            Statement::Delete(delete) => self.delete(delete),
            Statement::Merge(merge) => self.merge(merge),
            _ => Err(unsupported("this statement inside WITH")),
        };
        self.scopes = saved;
        result
    }

    pub fn values(&mut self, values: &Values) -> Result<Vec<String>, AnalyseError> {
        let width = values.rows.first().map(|r| r.len()).unwrap_or(0);
        for row in &values.rows {
            if row.len() != width {
                return Err(AnalyseError::resolve(
                    "VALUES lists must all be the same length",
                ));
            }
            for e in row.iter() {
                if !is_default(e) {
                    self.expr(e)?;
                }
            }
        }
        Ok((1..=width).map(|i| format!("column{i}")).collect())
    }

    fn select(
        &mut self,
        s: &Select,
        order_by: Option<&OrderBy>,
        locks: &[LockClause],
    ) -> Result<Vec<String>, AnalyseError> {
        let Select {
            select_token: _,
            optimizer_hints,
            distinct,
            select_modifiers,
            top,
            top_before_distinct: _,
            projection,
            exclude,
            into,
            from,
            lateral_views,
            prewhere,
            selection,
            connect_by,
            group_by,
            cluster_by,
            distribute_by,
            sort_by,
            having,
            named_window,
            qualify,
            window_before_qualify: _,
            value_table_mode,
            flavor,
        } = s;
        if into.is_some() {
            return Err(unsupported("SELECT INTO (it creates a table)"));
        }
        if !optimizer_hints.is_empty()
            || select_modifiers.is_some()
            || top.is_some()
            || exclude.is_some()
            || !lateral_views.is_empty()
            || prewhere.is_some()
            || !connect_by.is_empty()
            || !cluster_by.is_empty()
            || !distribute_by.is_empty()
            || !sort_by.is_empty()
            || qualify.is_some()
            || value_table_mode.is_some()
            || !matches!(flavor, SelectFlavor::Standard)
        {
            return Err(unsupported("this SELECT clause"));
        }
        self.scopes.push(Scope::default());
        for twj in from {
            self.table_with_joins(twj)?;
        }
        if let Some(selection) = selection {
            self.expr(selection)?;
        }
        let outputs = self.projection(projection)?;
        if let Some(Distinct::On(exprs)) = distinct {
            self.exprs(exprs)?;
        }
        match group_by {
            GroupByExpr::Expressions(exprs, modifiers) => {
                if !modifiers.is_empty() {
                    return Err(unsupported("GROUP BY modifiers"));
                }
                for e in exprs {
                    // GROUP BY prefers input columns, then output names, then ordinals.
                    let is_output = matches!(e, Expr::Identifier(i) if outputs.contains(&fold(i)));
                    let is_ordinal =
                        matches!(e, Expr::Value(v) if matches!(v.value, Value::Number(..)));
                    if is_ordinal {
                        continue;
                    }
                    match self.expr(e) {
                        Err(AnalyseError::Resolve(_)) if is_output => {}
                        other => other?,
                    }
                }
            }
            GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
        }
        if let Some(having) = having {
            self.expr(having)?;
        }
        for window in named_window {
            match &window.1 {
                NamedWindowExpr::WindowSpec(spec) => self.window_spec(spec)?,
                NamedWindowExpr::NamedWindow(_) => {}
            }
        }
        if let Some(order_by) = order_by {
            self.order_by_in_select(order_by, &outputs)?;
        }
        self.lock_needs(locks)?;
        self.scopes.pop();
        Ok(outputs)
    }

    fn projection(&mut self, items: &[SelectItem]) -> Result<Vec<String>, AnalyseError> {
        let mut outputs = Vec::new();
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    self.expr(e)?;
                    outputs.push(colname(e));
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    self.expr(expr)?;
                    outputs.push(fold(alias));
                }
                SelectItem::ExprWithAliases { .. } => return Err(unsupported("multiple aliases")),
                SelectItem::Wildcard(opts) => {
                    check_wildcard_options(opts)?;
                    let scope = self.current()?;
                    if scope.items.is_empty() {
                        return Err(AnalyseError::resolve(
                            "SELECT * with no tables specified is not valid",
                        ));
                    }
                    let items = scope.items.clone();
                    for it in &items {
                        self.extend(it.whole_row());
                        outputs.extend(it.cols.iter().cloned());
                    }
                }
                SelectItem::QualifiedWildcard(kind, opts) => {
                    check_wildcard_options(opts)?;
                    let SelectItemQualifiedWildcardKind::ObjectName(name) = kind else {
                        return Err(unsupported("expression.*"));
                    };
                    let parts = fold_object_name(name)?;
                    let (schema, table) = match parts.as_slice() {
                        [t] => (None, t.as_str()),
                        [s, t] => (Some(s.as_str()), t.as_str()),
                        _ => return Err(unsupported("this qualified *")),
                    };
                    let item = self
                        .find_item(schema, table)?
                        .ok_or_else(|| {
                            AnalyseError::resolve(format!(
                                "missing FROM-clause entry for table \"{table}\""
                            ))
                        })?
                        .clone();
                    self.extend(item.whole_row());
                    outputs.extend(item.cols.iter().cloned());
                }
            }
        }
        Ok(outputs)
    }

    /// ORDER BY of a plain SELECT: output names and ordinals first, then input columns.
    fn order_by_in_select(
        &mut self,
        order_by: &OrderBy,
        outputs: &[String],
    ) -> Result<(), AnalyseError> {
        if order_by.interpolate.is_some() {
            return Err(unsupported("ORDER BY INTERPOLATE"));
        }
        let OrderByKind::Expressions(exprs) = &order_by.kind else {
            return Err(unsupported("ORDER BY ALL"));
        };
        for o in exprs {
            if o.with_fill.is_some() {
                return Err(unsupported("ORDER BY WITH FILL"));
            }
            match &o.expr {
                Expr::Identifier(i) if outputs.contains(&fold(i)) => {}
                Expr::Value(v) if matches!(v.value, Value::Number(..)) => {}
                e => self.expr(e)?,
            }
        }
        Ok(())
    }

    /// ORDER BY of a set operation or VALUES: only output names and ordinals.
    fn order_by_outputs(
        &mut self,
        order_by: &OrderBy,
        outputs: &[String],
    ) -> Result<(), AnalyseError> {
        let OrderByKind::Expressions(exprs) = &order_by.kind else {
            return Err(unsupported("ORDER BY ALL"));
        };
        for o in exprs {
            match &o.expr {
                Expr::Identifier(i) if outputs.contains(&fold(i)) => {}
                Expr::Value(v) if matches!(v.value, Value::Number(..)) => {}
                // Subqueries and functions over no columns are still analysed.
                e => {
                    self.scopes.push(Scope::default());
                    let r = self.expr(e);
                    self.scopes.pop();
                    r?
                }
            }
        }
        Ok(())
    }

    /// FOR UPDATE / FOR SHARE need UPDATE on some column of each locked relation.
    fn lock_needs(&mut self, locks: &[LockClause]) -> Result<(), AnalyseError> {
        let mut needs = Vec::new();
        for lock in locks {
            let scope = self.current()?;
            let items: Vec<_> = match &lock.of {
                None => scope.items.iter().collect(),
                Some(name) => {
                    let parts = fold_object_name(name)?;
                    let last = parts.last().cloned().unwrap_or_default();
                    let found: Vec<_> = scope
                        .items
                        .iter()
                        .filter(|it| it.name.as_deref() == Some(last.as_str()))
                        .collect();
                    if found.is_empty() {
                        return Err(AnalyseError::resolve(format!(
                            "relation \"{last}\" in FOR UPDATE clause not found in FROM clause"
                        )));
                    }
                    found
                }
            };
            let mut stack = items;
            while let Some(item) = stack.pop() {
                match &item.kind {
                    ItemKind::Relation { rel, .. } => needs.push(Need::AnyColumn {
                        relation: rel.clone(),
                        action: Action::Update,
                    }),
                    ItemKind::Group { items, .. } => stack.extend(items.iter()),
                    ItemKind::Derived => {
                        return Err(unsupported(
                            "FOR UPDATE/SHARE over a subquery, CTE or function",
                        ))
                    }
                }
            }
        }
        self.extend(needs);
        Ok(())
    }
}
