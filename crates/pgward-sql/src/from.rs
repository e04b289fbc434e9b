//! FROM clauses: relations, aliases, CTE references, subqueries (LATERAL or not), function
//! calls, UNNEST, and joins with ON, USING and NATURAL.
//!
//! Each relation read in a FROM clause needs SELECT on at least one column (`SELECT 1
//! FROM t`); each FROM item becomes an `Item` of the current scope.

use sqlparser::ast::{
    FunctionArg, Join, JoinConstraint, JoinOperator, ObjectName, TableAlias, TableFactor,
    TableWithJoins,
};

use crate::access::{Action, Need};
use crate::catalog::RelKind;
use crate::error::AnalyseError;
use crate::ident::{fold, fold_object_name};
use crate::pg_catalog::srf_columns;
use crate::scope::{apply_alias_columns, find_in, Found, Item, ItemKind, Merged, Resolver, Scope};

fn unsupported(what: &str) -> AnalyseError {
    AnalyseError::unsupported(format!("{what} is not supported"))
}

impl Resolver<'_> {
    /// A FROM item named by a (folded) dotted name: a CTE if unqualified and visible,
    /// else a catalog relation.
    pub fn named_item(
        &mut self,
        parts: &[String],
        alias: Option<&TableAlias>,
    ) -> Result<Item, AnalyseError> {
        if let [name] = parts {
            if let Some((_, cols)) = self.ctes.iter().rev().find(|(n, _)| n == name) {
                let cols = apply_alias_columns(cols.clone(), alias)?;
                return Ok(Item {
                    name: Some(alias.map(|a| fold(&a.name)).unwrap_or_else(|| name.clone())),
                    schema: None,
                    cols,
                    kind: ItemKind::Derived,
                });
            }
        }
        let info = self.lookup_relation(parts)?;
        self.need(Need::AnyColumn {
            relation: info.name.clone(),
            action: Action::Select,
        });
        let cols = apply_alias_columns(info.columns.clone(), alias)?;
        Ok(Item {
            name: Some(
                alias
                    .map(|a| fold(&a.name))
                    .unwrap_or_else(|| info.name.name.clone()),
            ),
            schema: alias.is_none().then(|| info.name.schema.clone()),
            cols,
            kind: ItemKind::Relation {
                rel: info.name,
                real: info.columns,
                system: info.kind != RelKind::View,
            },
        })
    }

    pub fn table_with_joins(&mut self, twj: &TableWithJoins) -> Result<(), AnalyseError> {
        let left_start = self.current()?.items.len();
        self.table_factor(&twj.relation)?;
        for join in &twj.joins {
            self.join(join, left_start)?;
        }
        Ok(())
    }

    fn join(&mut self, join: &Join, left_start: usize) -> Result<(), AnalyseError> {
        let Join {
            relation,
            global,
            join_operator,
        } = join;
        if *global {
            return Err(unsupported("GLOBAL JOIN"));
        }
        let constraint = match join_operator {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::FullOuter(c)
            | JoinOperator::CrossJoin(c) => c,
            other => {
                return Err(AnalyseError::unsupported(
                    format!("join not supported: {other:?}")
                        .chars()
                        .take(80)
                        .collect::<String>(),
                ))
            }
        };
        let right_start = self.current()?.items.len();
        self.table_factor(relation)?;
        match constraint {
            JoinConstraint::On(e) => self.expr(e),
            JoinConstraint::None => Ok(()),
            JoinConstraint::Using(names) => {
                let mut cols = Vec::new();
                for name in names {
                    match fold_object_name(name)?.as_slice() {
                        [c] => cols.push(c.clone()),
                        _ => return Err(unsupported("a qualified USING column")),
                    }
                }
                self.merge_columns(left_start, right_start, &cols)
            }
            JoinConstraint::Natural => {
                let scope = self.current()?;
                let left_cols: Vec<String> = scope.items[left_start..right_start]
                    .iter()
                    .flat_map(|it| it.cols.iter().cloned())
                    .collect();
                let items: Vec<Item> = scope.items[left_start..].to_vec();
                let right_cols: Vec<String> = scope.items[right_start..]
                    .iter()
                    .flat_map(|it| it.cols.iter().cloned())
                    .collect();
                // NATURAL compares every common column: it reads both sides entirely.
                for item in &items {
                    self.extend(item.whole_row());
                }
                let mut common: Vec<String> = left_cols
                    .into_iter()
                    .filter(|c| right_cols.contains(c))
                    .collect();
                common.dedup();
                self.merge_columns(left_start, right_start, &common)
            }
            JoinConstraint::UsingAlias(..) => Err(unsupported("USING ... AS alias")),
        }
    }

    /// JOIN USING: each column must exist exactly once on each side; both are read.
    fn merge_columns(
        &mut self,
        left_start: usize,
        right_start: usize,
        cols: &[String],
    ) -> Result<(), AnalyseError> {
        for col in cols {
            let scope = self.current()?;
            let side = |range: std::ops::Range<usize>, scope: &Scope| {
                let items = &scope.items[range.clone()];
                match find_in(items, &scope.merged, col) {
                    Found::One(needs, hits) => Ok((
                        needs,
                        hits.into_iter()
                            .map(|h| h + range.start)
                            .collect::<Vec<_>>(),
                    )),
                    Found::None => Err(AnalyseError::resolve(format!(
                        "column \"{col}\" specified in USING clause does not exist in both tables"
                    ))),
                    Found::Ambiguous => Err(AnalyseError::resolve(format!(
                        "common column name \"{col}\" appears more than once"
                    ))),
                }
            };
            let end = scope.items.len();
            let (left_needs, mut members) = side(left_start..right_start, scope)?;
            let (right_needs, right_members) = side(right_start..end, scope)?;
            members.extend(right_members);
            scope.merged.push(Merged {
                name: col.clone(),
                members,
            });
            self.extend(left_needs);
            self.extend(right_needs);
        }
        Ok(())
    }

    fn push_item(&mut self, item: Item) -> Result<(), AnalyseError> {
        self.current()?.items.push(item);
        Ok(())
    }

    pub fn table_factor(&mut self, tf: &TableFactor) -> Result<(), AnalyseError> {
        match tf {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_directives,
                inheritance: _,
            } => {
                if !with_hints.is_empty()
                    || version.is_some()
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || !index_directives.is_empty()
                {
                    return Err(unsupported("this table modifier"));
                }
                if sample.is_some() {
                    return Err(unsupported("TABLESAMPLE"));
                }
                if let Some(args) = args {
                    if args.settings.is_some() {
                        return Err(unsupported("table function SETTINGS"));
                    }
                    return self.function_factor(
                        name,
                        &args.args,
                        *with_ordinality,
                        alias.as_ref(),
                    );
                }
                let item = self.named_item(&fold_object_name(name)?, alias.as_ref())?;
                self.push_item(item)
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                sample,
            } => {
                if sample.is_some() {
                    return Err(unsupported("TABLESAMPLE"));
                }
                let cols = if *lateral {
                    self.query(subquery)?
                } else {
                    // A plain subquery in FROM cannot see its sibling FROM items.
                    let current = self.scopes.pop();
                    let result = self.query(subquery);
                    self.scopes.extend(current);
                    result?
                };
                let cols = apply_alias_columns(cols, alias.as_ref())?;
                self.push_item(Item {
                    name: alias.as_ref().map(|a| fold(&a.name)),
                    schema: None,
                    cols,
                    kind: ItemKind::Derived,
                })
            }
            TableFactor::Function {
                lateral: _,
                name,
                args,
                with_ordinality,
                alias,
            } => self.function_factor(name, args, *with_ordinality, alias.as_ref()),
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset,
                with_offset_alias,
                with_ordinality,
            } => {
                if *with_offset || with_offset_alias.is_some() {
                    return Err(unsupported("UNNEST WITH OFFSET"));
                }
                self.need(Need::Function {
                    function: crate::access::FuncName::new("pg_catalog", "unnest"),
                });
                self.exprs(array_exprs)?;
                let base = alias
                    .as_ref()
                    .map(|a| fold(&a.name))
                    .unwrap_or_else(|| "unnest".into());
                let mut cols = vec![base.clone(); array_exprs.len().max(1)];
                if *with_ordinality {
                    cols.push("ordinality".into());
                }
                let cols = apply_alias_columns(cols, alias.as_ref())?;
                self.push_item(Item {
                    name: Some(base),
                    schema: None,
                    cols,
                    kind: ItemKind::Derived,
                })
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => match alias {
                None => self.table_with_joins(table_with_joins),
                Some(alias) => {
                    if !alias.columns.is_empty() {
                        return Err(unsupported("column aliases on a join"));
                    }
                    self.scopes.push(Scope::default());
                    let result = self.table_with_joins(table_with_joins);
                    let inner = self.scopes.pop().unwrap_or_default();
                    result?;
                    let cols = inner
                        .items
                        .iter()
                        .flat_map(|i| i.cols.iter().cloned())
                        .collect();
                    self.push_item(Item {
                        name: Some(fold(&alias.name)),
                        schema: None,
                        cols,
                        kind: ItemKind::Group {
                            items: inner.items,
                            merged: inner.merged,
                        },
                    })
                }
            },
            TableFactor::TableFunction { .. }
            | TableFactor::JsonTable { .. }
            | TableFactor::OpenJsonTable { .. }
            | TableFactor::Pivot { .. }
            | TableFactor::Unpivot { .. }
            | TableFactor::UnpivotExpr { .. }
            | TableFactor::MatchRecognize { .. }
            | TableFactor::XmlTable { .. }
            | TableFactor::SemanticView { .. } => Err(unsupported("this FROM item")),
        }
    }

    /// A function in FROM (`generate_series(1, 3) AS g`): implicitly LATERAL.
    fn function_factor(
        &mut self,
        name: &ObjectName,
        args: &[FunctionArg],
        with_ordinality: bool,
        alias: Option<&TableAlias>,
    ) -> Result<(), AnalyseError> {
        let function = self.resolve_function(name)?;
        self.function_args(args)?;
        let item_name = alias
            .map(|a| fold(&a.name))
            .unwrap_or_else(|| function.name.clone());
        let mut cols: Vec<String> = match srf_columns(&function.name) {
            Some(cols) if function.schema == "pg_catalog" => {
                cols.iter().map(|c| c.to_string()).collect()
            }
            _ => vec![item_name.clone()],
        };
        if with_ordinality {
            cols.push("ordinality".into());
        }
        // `AS t(a int, b text)` for record-returning functions replaces the columns.
        let cols = match alias {
            Some(a) if a.columns.len() > cols.len() => {
                a.columns.iter().map(|c| fold(&c.name)).collect()
            }
            _ => apply_alias_columns(cols, alias)?,
        };
        self.need(Need::Function { function });
        self.push_item(Item {
            name: Some(item_name),
            schema: None,
            cols,
            kind: ItemKind::Derived,
        })
    }
}
