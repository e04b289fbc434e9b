//! The decision: every need of every statement must be granted, or the first one that is
//! not becomes the [`Denial`]. Mirrors PostgreSQL's own privilege checks (SPEC §4). Never
//! returns a [`Permit`] for an unknown role or for a need it cannot match to a grant.

use std::sync::Arc;

use pgward_sql::access::{Action, FuncName, Need, RelName, StatementAccess, StatementKind};

use crate::catalog::{is_catalog_schema, never_by_catalog_rule};
use crate::decision::{Denial, Missing, Permit};
use crate::functions::FunctionClass;
use crate::policy::{Columns, Policy, Role, TableGrant};

impl Policy {
    /// Decides whether `role` may run all of `statements` (one Query message may hold
    /// several; one denial denies them all).
    pub fn check(&self, role: &str, statements: &[StatementAccess]) -> Result<Permit, Denial> {
        let Some(r) = self.roles.get(role) else {
            return Err(self.unknown_role(role));
        };
        for (index, statement) in statements.iter().enumerate() {
            if let Err(missing) = self.check_statement(r, statement) {
                return Err(self.denial(r, missing, index));
            }
        }
        Ok(Permit::new(Arc::clone(&r.name), self.version))
    }

    /// The denial for a statement the analyser could not understand (fail closed). In
    /// audit mode it still becomes a `would_deny` permit through
    /// [`Denial::audit_permit`].
    pub fn deny_unanalysable(
        &self,
        role: &str,
        reason: impl Into<String>,
        statement: usize,
    ) -> Denial {
        match self.roles.get(role) {
            Some(r) => self.denial(
                r,
                Missing::Unanalysable {
                    reason: reason.into(),
                },
                statement,
            ),
            None => self.unknown_role(role),
        }
    }

    fn unknown_role(&self, role: &str) -> Denial {
        Denial::new(
            Arc::from(role),
            Missing::UnknownRole,
            None,
            None,
            self.version,
            0,
        )
    }

    fn denial(&self, role: &Role, missing: Missing, statement: usize) -> Denial {
        Denial::new(
            Arc::clone(&role.name),
            missing,
            Some(role.file.clone()),
            Some(role.settings.mode),
            self.version,
            statement,
        )
    }

    fn check_statement(&self, role: &Role, statement: &StatementAccess) -> Result<(), Missing> {
        let StatementAccess {
            kind,
            needs,
            normalized: _,
        } = statement;
        // Defence in depth: a DDL statement needs `ddl: true` even if the analyser
        // forgot to list Need::Ddl.
        if *kind == StatementKind::Ddl && !role.settings.ddl {
            return Err(Missing::Ddl);
        }
        needs
            .iter()
            .try_for_each(|need| self.check_need(role, need))
    }

    fn check_need(&self, role: &Role, need: &Need) -> Result<(), Missing> {
        match need {
            Need::Column {
                relation,
                action,
                column,
            } => {
                let granted = catalog_rule(role, relation, *action)
                    || grants_on(role, relation).any(|g| match action {
                        Action::Select | Action::Insert | Action::Update => {
                            g.columns(*action).grants(column)
                        }
                        Action::Delete | Action::Truncate => flag(g, *action),
                    });
                granted.then_some(()).ok_or_else(|| Missing::Column {
                    action: *action,
                    relation: relation.clone(),
                    column: column.clone(),
                })
            }
            Need::AnyColumn { relation, action } => {
                let granted = catalog_rule(role, relation, *action)
                    || grants_on(role, relation).any(|g| match action {
                        Action::Select | Action::Insert | Action::Update => {
                            g.columns(*action).grants_any()
                        }
                        Action::Delete | Action::Truncate => flag(g, *action),
                    });
                granted.then_some(()).ok_or_else(|| Missing::AnyColumn {
                    action: *action,
                    relation: relation.clone(),
                })
            }
            Need::Relation { relation, action } => {
                // delete/truncate are booleans; a relation-level select/insert/update
                // means every column, which only "*" grants.
                let granted = catalog_rule(role, relation, *action)
                    || grants_on(role, relation).any(|g| match action {
                        Action::Select | Action::Insert | Action::Update => {
                            *g.columns(*action) == Columns::All
                        }
                        Action::Delete | Action::Truncate => flag(g, *action),
                    });
                granted.then_some(()).ok_or_else(|| Missing::Relation {
                    action: *action,
                    relation: relation.clone(),
                })
            }
            Need::Function { function } => {
                if self.function_allowed(role, function) {
                    Ok(())
                } else {
                    Err(Missing::Function {
                        function: function.clone(),
                    })
                }
            }
            Need::Ddl => role.settings.ddl.then_some(()).ok_or(Missing::Ddl),
        }
    }

    fn function_allowed(&self, role: &Role, function: &FuncName) -> bool {
        match self.functions.class(function) {
            Some(FunctionClass::Catalog) => {
                role.settings.catalog || role.functions.contains(function)
            }
            Some(_) => true,
            None => role.functions.contains(function),
        }
    }
}

/// The grants that apply to `relation`: its own entry, and `"*"` unless it is in a
/// catalog schema.
fn grants_on<'a>(role: &'a Role, relation: &RelName) -> impl Iterator<Item = &'a TableGrant> {
    let all = if is_catalog_schema(&relation.schema) {
        None
    } else {
        role.all_tables.as_ref()
    };
    role.tables.get(relation).into_iter().chain(all)
}

/// `catalog: true` lets a role read (only read) catalog relations, except the never-list.
fn catalog_rule(role: &Role, relation: &RelName, action: Action) -> bool {
    action == Action::Select
        && role.settings.catalog
        && is_catalog_schema(&relation.schema)
        && !never_by_catalog_rule(&relation.schema, &relation.name)
}

fn flag(grant: &TableGrant, action: Action) -> bool {
    match action {
        Action::Delete => grant.delete,
        Action::Truncate => grant.truncate,
        Action::Select | Action::Insert | Action::Update => false,
    }
}
