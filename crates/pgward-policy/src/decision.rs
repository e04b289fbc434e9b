//! The two outcomes of a decision. A [`Permit`] has private fields and no public
//! constructor: outside this crate the only ways to get one are [`Policy::check`] and
//! [`Denial::audit_permit`] (audit mode), so code that forwards a statement upstream can
//! demand a `&Permit` as proof. A [`Denial`] says, in a DBA's words, the first privilege
//! that was missing.
//!
//! [`Policy::check`]: crate::Policy::check

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgward_sql::access::{Action, FuncName, RelName};

use crate::policy::Mode;

/// The label recorded for a statement (`pgward.decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny,
    /// Audit mode: enforce mode would have denied it; forwarded anyway.
    WouldDeny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::WouldDeny => "would_deny",
        }
    }
}

/// Evidence that the policy lets `role` run the statements it was checked for.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Permit {
    role: Arc<str>,
    policy_version: u64,
    would_deny: Option<Denial>,
}

impl Permit {
    pub(crate) fn new(role: Arc<str>, policy_version: u64) -> Self {
        Permit {
            role,
            policy_version,
            would_deny: None,
        }
    }

    pub fn role(&self) -> &str {
        &self.role
    }

    /// The [`Policy::version`](crate::Policy::version) that decided.
    pub fn policy_version(&self) -> u64 {
        self.policy_version
    }

    /// In audit mode: the denial enforce mode would have returned.
    pub fn would_deny(&self) -> Option<&Denial> {
        self.would_deny.as_ref()
    }

    pub fn decision(&self) -> Decision {
        match self.would_deny {
            Some(_) => Decision::WouldDeny,
            None => Decision::Allow,
        }
    }
}

/// The first privilege a statement needed and the policy did not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No policy file defines the role.
    UnknownRole,
    /// `select`, `insert` or `update` on a column.
    Column {
        action: Action,
        relation: RelName,
        column: String,
    },
    /// `action` on at least one column of the relation.
    AnyColumn {
        action: Action,
        relation: RelName,
    },
    /// A relation-level privilege (`delete`, `truncate`; or a whole-table `select`,
    /// `insert`, `update`, which only `"*"` grants).
    Relation {
        action: Action,
        relation: RelName,
    },
    Function {
        function: FuncName,
    },
    Ddl,
    /// The statement could not be analysed (parse error, unsupported construct).
    Unanalysable {
        reason: String,
    },
}

impl fmt::Display for Missing {
    /// The words after `may not`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::UnknownRole => f.write_str("run anything: no policy defines the role"),
            Missing::Column {
                action,
                relation,
                column,
            } => {
                let verb = match action {
                    Action::Insert => "insert into",
                    other => other.as_str(),
                };
                write!(f, "{verb} column {}.{column}", Short(relation))
            }
            Missing::AnyColumn { action, relation } => match action {
                Action::Select => write!(f, "select from {relation}"),
                Action::Insert => write!(f, "insert into {relation}"),
                Action::Delete => write!(f, "delete from {relation}"),
                other => write!(f, "{other} {relation}"),
            },
            Missing::Relation { action, relation } => match action {
                Action::Delete => write!(f, "delete from {relation}"),
                Action::Insert => write!(f, "insert into all columns of {relation}"),
                Action::Truncate => write!(f, "truncate {relation}"),
                other => write!(f, "{other} all columns of {relation}"),
            },
            Missing::Function { function } => write!(f, "call function {function}"),
            Missing::Ddl => f.write_str("run DDL"),
            Missing::Unanalysable { reason } => write!(f, "run this statement: {reason}"),
        }
    }
}

/// `customers` for `public.customers`, `sales.orders` otherwise (column references).
struct Short<'a>(&'a RelName);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.schema.as_str() {
            "public" => f.write_str(&self.0.name),
            _ => write!(f, "{}", self.0),
        }
    }
}

/// A refusal: the role, what was missing, and where the role's policy lives.
/// Cheap to clone. `Display` is the client-facing message (SQLSTATE 42501).
#[derive(Debug, Clone)]
pub struct Denial(Arc<DenialInner>);

#[derive(Debug)]
struct DenialInner {
    role: Arc<str>,
    missing: Missing,
    policy_file: Option<PathBuf>,
    mode: Option<Mode>,
    policy_version: u64,
    statement: usize,
}

impl Denial {
    pub(crate) fn new(
        role: Arc<str>,
        missing: Missing,
        policy_file: Option<PathBuf>,
        mode: Option<Mode>,
        policy_version: u64,
        statement: usize,
    ) -> Self {
        Denial(Arc::new(DenialInner {
            role,
            missing,
            policy_file,
            mode,
            policy_version,
            statement,
        }))
    }

    pub fn role(&self) -> &str {
        &self.0.role
    }

    pub fn missing(&self) -> &Missing {
        &self.0.missing
    }

    /// The file that defines the role (None for an unknown role).
    pub fn policy_file(&self) -> Option<&Path> {
        self.0.policy_file.as_deref()
    }

    /// The role's mode (None for an unknown role, which is always denied).
    pub fn mode(&self) -> Option<Mode> {
        self.0.mode
    }

    /// Index of the denied statement in the slice given to `check`.
    pub fn statement_index(&self) -> usize {
        self.0.statement
    }

    /// `permission denied: role "analyst" may not select column customers.email`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The HINT of the ErrorResponse.
    pub fn hint(&self) -> String {
        let role = &self.0.role;
        let Some(file) = &self.0.policy_file else {
            return format!("no policy file defines role \"{role}\"");
        };
        let base = format!(
            "policy for role \"{role}\" ({}) does not grant it",
            file.display()
        );
        match &self.0.missing {
            Missing::Function { .. } => format!(
                "{base}; functions outside the built-in safe list must be listed under functions:"
            ),
            Missing::Column { relation, .. }
            | Missing::AnyColumn { relation, .. }
            | Missing::Relation { relation, .. }
                if crate::catalog::never_by_catalog_rule(&relation.schema, &relation.name) =>
            {
                format!("{base}; {relation} exposes data, so catalog: true does not cover it")
            }
            Missing::Unanalysable { .. } => {
                "pgward could not analyse the statement, so it is denied".to_string()
            }
            _ => base,
        }
    }

    pub fn decision(&self) -> Decision {
        Decision::Deny
    }

    /// In audit mode the statement is forwarded anyway: this turns the denial into a
    /// [`Permit`] that carries it (`would_deny`). In enforce mode, or for an unknown
    /// role, it gives the denial back.
    pub fn audit_permit(self) -> Result<Permit, Denial> {
        match self.0.mode {
            Some(Mode::Audit) => Ok(Permit {
                role: Arc::clone(&self.0.role),
                policy_version: self.0.policy_version,
                would_deny: Some(self),
            }),
            Some(Mode::Enforce) | None => Err(self),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.missing {
            Missing::UnknownRole => write!(
                f,
                "permission denied: role \"{}\" has no policy",
                self.0.role
            ),
            missing => write!(
                f,
                "permission denied: role \"{}\" may not {missing}",
                self.0.role
            ),
        }
    }
}

impl std::error::Error for Denial {}
