//! Statement kinds: which statements pgward understands, what each needs, and which are
//! refused outright (DO, LOAD, LOCK, VACUUM, SET ROLE, ...).
//!
//! The match over `Statement` ends in an arm that refuses: a kind added to sqlparser, or
//! one nobody reviewed, is an error until someone decides what it needs.

use sqlparser::ast::{CreateTable, CreateView, DescribeAlias, DiscardObject, Statement};

use crate::access::{Action, Need, StatementKind};
use crate::error::AnalyseError;
use crate::ident::{fold, fold_object_name};
use crate::scope::Resolver;
use crate::settings::{check_reset, check_set};
use sqlparser::ast::CascadeOption;

fn not_allowed(what: &str) -> AnalyseError {
    AnalyseError::not_allowed(format!("{what} is not allowed"))
}

/// The first words of a statement's text, for "statement kind not supported: ..." reasons.
fn kind_words(normalized: &str) -> String {
    normalized
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

impl Resolver<'_> {
    /// Analyses one statement; `normalized` is only used in error messages.
    pub fn statement(
        &mut self,
        stmt: &Statement,
        normalized: &str,
    ) -> Result<StatementKind, AnalyseError> {
        let kind = match stmt {
            Statement::Query(q) => {
                self.query(q)?;
                let reads = self.needs.iter().any(|n| {
                    matches!(
                        n,
                        Need::Column { .. } | Need::AnyColumn { .. } | Need::Relation { .. }
                    )
                });
                if reads {
                    StatementKind::Select
                } else {
                    StatementKind::Values
                }
            }
            Statement::Insert(i) => {
                self.insert(i)?;
                StatementKind::Insert
            }
            Statement::Update(u) => {
                self.update(u)?;
                StatementKind::Update
            }
            Statement::Delete(d) => {
                self.delete(d)?;
                StatementKind::Delete
            }
            Statement::Merge(m) => {
                self.merge(m)?;
                StatementKind::Merge
            }
            Statement::Copy {
                source,
                to,
                target,
                options: _,
                legacy_options: _,
                payload,
            } => {
                if payload.is_some() {
                    return Err(AnalyseError::unsupported(
                        "COPY with inline data is not supported",
                    ));
                }
                self.copy(source, *to, target)?;
                StatementKind::Copy
            }
            Statement::Truncate(t) => {
                if matches!(t.cascade, Some(CascadeOption::Cascade)) {
                    return Err(AnalyseError::unsupported(
                        "TRUNCATE ... CASCADE is not supported (the referencing tables are not known)",
                    ));
                }
                if t.partitions.is_some() || t.on_cluster.is_some() {
                    return Err(AnalyseError::unsupported(
                        "this TRUNCATE form is not supported",
                    ));
                }
                for target in &t.table_names {
                    let info = self.lookup_relation(&fold_object_name(&target.name)?)?;
                    self.need(Need::Relation {
                        relation: info.name,
                        action: Action::Truncate,
                    });
                }
                StatementKind::Truncate
            }
            Statement::Explain {
                describe_alias,
                analyze: _,
                verbose: _,
                query_plan,
                estimate,
                statement,
                format: _,
                options: _,
            } => {
                if !matches!(describe_alias, DescribeAlias::Explain) || *query_plan || *estimate {
                    return Err(AnalyseError::unsupported(
                        "this EXPLAIN form is not supported",
                    ));
                }
                self.statement(statement, normalized)?;
                StatementKind::Explain
            }
            Statement::Prepare {
                name,
                data_types: _,
                statement,
            } => {
                if !matches!(
                    **statement,
                    Statement::Query(_)
                        | Statement::Insert(_)
                        | Statement::Update(_)
                        | Statement::Delete(_)
                        | Statement::Merge(_)
                ) {
                    return Err(AnalyseError::unsupported(
                        "PREPARE of this statement kind is not supported",
                    ));
                }
                self.statement(statement, normalized)?;
                StatementKind::Prepare { name: fold(name) }
            }
            Statement::Execute {
                name,
                parameters,
                has_parentheses: _,
                immediate,
                into,
                using,
                output,
                default,
            } => {
                let Some(name) = name else {
                    return Err(AnalyseError::unsupported(
                        "EXECUTE without a name is not supported",
                    ));
                };
                if *immediate || !into.is_empty() || !using.is_empty() || *output || *default {
                    return Err(AnalyseError::unsupported(
                        "this EXECUTE form is not supported",
                    ));
                }
                let name = match fold_object_name(name)?.as_slice() {
                    [n] => n.clone(),
                    _ => {
                        return Err(AnalyseError::unsupported(
                            "a qualified EXECUTE name is not supported",
                        ))
                    }
                };
                self.exprs(parameters)?;
                StatementKind::Execute { name }
            }
            Statement::Declare { stmts, .. } => {
                let [decl] = stmts.as_slice() else {
                    return Err(AnalyseError::unsupported(
                        "DECLARE of several cursors is not supported",
                    ));
                };
                let (Some(sqlparser::ast::DeclareType::Cursor), Some(query), [name], None, None) = (
                    &decl.declare_type,
                    &decl.for_query,
                    decl.names.as_slice(),
                    &decl.data_type,
                    &decl.assignment,
                ) else {
                    return Err(AnalyseError::unsupported(
                        "this DECLARE form is not supported",
                    ));
                };
                self.query(query)?;
                StatementKind::DeclareCursor { name: fold(name) }
            }
            Statement::Fetch { into: None, .. } | Statement::Close { .. } => StatementKind::Cursor,
            Statement::StartTransaction {
                modes: _,
                begin: _,
                transaction: _,
                modifier: None,
                statements,
                exception: None,
                has_end_keyword: false,
            } if statements.is_empty() => StatementKind::Transaction,
            Statement::Commit { modifier: None, .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => StatementKind::Transaction,
            Statement::Set(set) => {
                check_set(set)?;
                StatementKind::Set
            }
            Statement::Reset(reset) => {
                check_reset(&reset.reset)?;
                StatementKind::Set
            }
            Statement::ShowVariable { .. } => StatementKind::Show,
            Statement::LISTEN { .. } | Statement::UNLISTEN { .. } | Statement::NOTIFY { .. } => {
                StatementKind::Utility
            }
            Statement::Deallocate { .. } => StatementKind::Utility,
            Statement::Discard { object_type } => match object_type {
                DiscardObject::ALL => {
                    return Err(AnalyseError::not_allowed(
                        "DISCARD ALL is not allowed (it resets pinned settings)",
                    ))
                }
                DiscardObject::PLANS | DiscardObject::SEQUENCES | DiscardObject::TEMP => {
                    StatementKind::Utility
                }
            },
            Statement::Call(f) => {
                self.function(f)?;
                StatementKind::Call
            }
            // CREATE TABLE AS and CREATE MATERIALIZED VIEW run their query now: it reads.
            Statement::CreateTable(CreateTable { query, .. }) => {
                if let Some(q) = query {
                    self.query(q)?;
                }
                self.need(Need::Ddl);
                StatementKind::Ddl
            }
            Statement::CreateView(CreateView {
                materialized,
                query,
                ..
            }) => {
                if *materialized {
                    self.query(query)?;
                }
                self.need(Need::Ddl);
                StatementKind::Ddl
            }
            Statement::CreateIndex(_)
            | Statement::CreateRole(_)
            | Statement::CreateServer(_)
            | Statement::CreateForeignTable(_)
            | Statement::CreateForeignDataWrapper(_)
            | Statement::CreateUserMapping(_)
            | Statement::CreatePolicy(_)
            | Statement::CreateRule(_)
            | Statement::CreateOperator(_)
            | Statement::CreateOperatorFamily(_)
            | Statement::CreateOperatorClass(_)
            | Statement::CreateTextSearch(_)
            | Statement::CreateAggregate(_)
            | Statement::CreateExtension(_)
            | Statement::CreateCollation(_)
            | Statement::CreateSchema { .. }
            | Statement::CreateDatabase { .. }
            | Statement::CreateFunction(_)
            | Statement::CreateTrigger(_)
            | Statement::CreateProcedure { .. }
            | Statement::CreateSequence { .. }
            | Statement::CreateDomain(_)
            | Statement::CreateType { .. }
            | Statement::CreateUser(_)
            | Statement::AlterTable(_)
            | Statement::AlterSchema(_)
            | Statement::AlterIndex { .. }
            | Statement::AlterView(_)
            | Statement::AlterFunction(_)
            | Statement::AlterType(_)
            | Statement::AlterCollation(_)
            | Statement::AlterOperator(_)
            | Statement::AlterOperatorFamily(_)
            | Statement::AlterOperatorClass(_)
            | Statement::AlterTextSearch(_)
            | Statement::AlterRole { .. }
            | Statement::AlterPolicy(_)
            | Statement::AlterTrigger(_)
            | Statement::AlterUser(_)
            | Statement::Drop { .. }
            | Statement::DropFunction(_)
            | Statement::DropDomain(_)
            | Statement::DropProcedure { .. }
            | Statement::DropPolicy(_)
            | Statement::DropRule(_)
            | Statement::DropExtension(_)
            | Statement::DropOperator(_)
            | Statement::DropOperatorFamily(_)
            | Statement::DropOperatorClass(_)
            | Statement::DropTrigger(_)
            | Statement::Comment { .. }
            | Statement::Grant(_)
            | Statement::GrantRole(_)
            | Statement::Revoke(_)
            | Statement::RevokeRole(_)
            | Statement::AlterDefaultPrivileges(_)
            | Statement::RefreshMaterializedView(_) => {
                self.need(Need::Ddl);
                StatementKind::Ddl
            }
            Statement::Load { .. } => return Err(not_allowed("LOAD")),
            Statement::Lock(_) | Statement::LockTables { .. } => return Err(not_allowed("LOCK")),
            Statement::Vacuum(_) => return Err(not_allowed("VACUUM")),
            Statement::Analyze(_) => return Err(not_allowed("ANALYZE")),
            _ => {
                return Err(AnalyseError::unsupported(format!(
                    "statement kind not supported: {}",
                    kind_words(normalized)
                )))
            }
        };
        Ok(kind)
    }
}
