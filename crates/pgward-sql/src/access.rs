//! What a statement touches: the analyser's output and the policy engine's input.
//!
//! This is the contract between `pgward-sql` (which fills it) and `pgward-policy`
//! (which decides on it). Every name in here is a catalog name, already folded the
//! way PostgreSQL folds identifiers (see `ident`), so the policy compares strings.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

/// A relation (table, view, partition, sequence, ...) by its catalog name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RelName {
    pub schema: String,
    pub name: String,
}

impl RelName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for RelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A function by its catalog name (`pg_catalog.lower`, `public.place_order`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FuncName {
    pub schema: String,
    pub name: String,
}

impl FuncName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for FuncName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A privilege as PostgreSQL names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Select => "select",
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Truncate => "truncate",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One privilege a statement needs. The policy must grant every need of a statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "need", rename_all = "snake_case")]
pub enum Need {
    /// `action` (select, insert or update) on one column. System columns
    /// (`ctid`, `xmin`, ...) appear here by name like any other column.
    Column {
        relation: RelName,
        action: Action,
        column: String,
    },
    /// `action` on at least one column of the relation: `count(*)`, `SELECT 1 FROM t`,
    /// `EXISTS (SELECT FROM t)`.
    AnyColumn { relation: RelName, action: Action },
    /// A relation-level privilege: `delete` or `truncate`.
    Relation { relation: RelName, action: Action },
    /// A call of this function (built-in safe list, catalog list, or the role's list).
    Function { function: FuncName },
    /// A DDL statement (CREATE/ALTER/DROP/COMMENT/GRANT/REVOKE...): needs `ddl: true`.
    Ddl,
}

/// What kind of statement this is, for decisions that are not about relations and for
/// telemetry (`db.operation.name`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Truncate,
    /// COPY TO STDOUT / FROM STDIN (files and programs never get this far).
    Copy,
    /// CREATE/ALTER/DROP/COMMENT/GRANT/REVOKE ...
    Ddl,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION, ...
    Transaction,
    /// SET/RESET of a harmless setting (the reviewed table).
    Set,
    Show,
    /// PREPARE name AS stmt: `needs` are the inner statement's.
    Prepare {
        name: String,
    },
    /// EXECUTE name: the proxy checks that `name` was prepared through an allowed PREPARE.
    Execute {
        name: String,
    },
    /// DECLARE CURSOR: `needs` are the inner query's.
    DeclareCursor {
        name: String,
    },
    /// FETCH/MOVE/CLOSE of a cursor.
    Cursor,
    Explain,
    /// LISTEN/UNLISTEN/NOTIFY, DISCARD PLANS/SEQUENCES/TEMP, DEALLOCATE.
    Utility,
    /// VALUES without relations, SELECT without FROM.
    Values,
    Call,
}

impl StatementKind {
    /// The `db.operation.name` span attribute.
    pub fn operation_name(&self) -> &'static str {
        match self {
            StatementKind::Select => "SELECT",
            StatementKind::Insert => "INSERT",
            StatementKind::Update => "UPDATE",
            StatementKind::Delete => "DELETE",
            StatementKind::Merge => "MERGE",
            StatementKind::Truncate => "TRUNCATE",
            StatementKind::Copy => "COPY",
            StatementKind::Ddl => "DDL",
            StatementKind::Transaction => "TRANSACTION",
            StatementKind::Set => "SET",
            StatementKind::Show => "SHOW",
            StatementKind::Prepare { .. } => "PREPARE",
            StatementKind::Execute { .. } => "EXECUTE",
            StatementKind::DeclareCursor { .. } => "DECLARE",
            StatementKind::Cursor => "FETCH",
            StatementKind::Explain => "EXPLAIN",
            StatementKind::Utility => "UTILITY",
            StatementKind::Values => "VALUES",
            StatementKind::Call => "CALL",
        }
    }
}

/// Everything one statement needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementAccess {
    pub kind: StatementKind,
    /// Deduplicated, ordered needs; empty for always-allowed statements.
    pub needs: BTreeSet<Need>,
    /// The statement with every literal replaced by `?` (for spans and audit lines).
    pub normalized: String,
}
