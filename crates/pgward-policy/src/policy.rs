//! The compiled, checked policy: what each role may do after inheritance, with every name
//! folded. Read-only once built; a reload builds a new one (the proxy swaps snapshots).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgward_sql::access::{Action, FuncName, RelName};

use crate::catalog::is_system_column;

use crate::error::LoadError;
use crate::functions::FunctionTable;

/// A compiled set of policy files.
#[derive(Debug)]
pub struct Policy {
    pub(crate) roles: BTreeMap<String, Role>,
    pub(crate) version: u64,
    pub(crate) functions: FunctionTable,
}

/// One role, with its grants already merged with every inherited role's.
#[derive(Debug)]
pub struct Role {
    pub(crate) name: Arc<str>,
    pub(crate) description: Option<String>,
    pub(crate) file: PathBuf,
    pub(crate) inherit: Vec<String>,
    pub(crate) settings: RoleSettings,
    /// The `"*"` grant: every relation outside pg_catalog and information_schema.
    pub(crate) all_tables: Option<TableGrant>,
    pub(crate) tables: BTreeMap<RelName, TableGrant>,
    pub(crate) functions: BTreeSet<FuncName>,
}

/// The per-session settings of a role (its own, not inherited: they describe a session,
/// they are not grants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSettings {
    pub(crate) mode: Mode,
    pub(crate) search_path: Vec<String>,
    pub(crate) catalog: bool,
    pub(crate) ddl: bool,
}

/// `enforce` (deny what the policy does not grant) or `audit` (record it as
/// `would_deny`, forward anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Enforce,
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// The privileges granted on one table key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableGrant {
    pub(crate) select: Columns,
    pub(crate) insert: Columns,
    pub(crate) update: Columns,
    pub(crate) delete: bool,
    pub(crate) truncate: bool,
}

/// Columns granted for one action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Columns {
    /// Not granted.
    #[default]
    None,
    /// `"*"`: every column, including system columns and columns added later.
    All,
    /// These columns (folded catalog names).
    Only(BTreeSet<String>),
}

impl Columns {
    /// Whether `column` is granted. System columns are only granted by `"*"`; compilation
    /// refuses them in lists, so a list never contains one.
    pub fn grants(&self, column: &str) -> bool {
        match self {
            Columns::None => false,
            Columns::All => true,
            // Compilation refuses system columns in lists; this is the second lock.
            Columns::Only(list) => list.contains(column) && !is_system_column(column),
        }
    }

    /// Whether at least one column is granted.
    pub fn grants_any(&self) -> bool {
        match self {
            Columns::None => false,
            Columns::All => true,
            Columns::Only(list) => !list.is_empty(),
        }
    }

    pub(crate) fn union_with(&mut self, other: &Columns) {
        match (&mut *self, other) {
            (Columns::All, _) | (_, Columns::None) => {}
            (_, Columns::All) => *self = Columns::All,
            (Columns::None, Columns::Only(list)) => *self = Columns::Only(list.clone()),
            (Columns::Only(mine), Columns::Only(theirs)) => mine.extend(theirs.iter().cloned()),
        }
    }
}

impl TableGrant {
    pub fn select(&self) -> &Columns {
        &self.select
    }
    pub fn insert(&self) -> &Columns {
        &self.insert
    }
    pub fn update(&self) -> &Columns {
        &self.update
    }
    /// The columns granted for `select`, `insert` or `update` (None for the others).
    pub fn columns(&self, action: Action) -> &Columns {
        match action {
            Action::Select => &self.select,
            Action::Insert => &self.insert,
            Action::Update => &self.update,
            Action::Delete | Action::Truncate => &Columns::None,
        }
    }
    pub fn delete(&self) -> bool {
        self.delete
    }
    pub fn truncate(&self) -> bool {
        self.truncate
    }

    pub(crate) fn union_with(&mut self, other: &TableGrant) {
        let TableGrant {
            select,
            insert,
            update,
            delete,
            truncate,
        } = other;
        self.select.union_with(select);
        self.insert.union_with(insert);
        self.update.union_with(update);
        self.delete |= delete;
        self.truncate |= truncate;
    }
}

impl RoleSettings {
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The schemas pinned as the session's search_path (pg_catalog is implicitly first).
    pub fn search_path(&self) -> &[String] {
        &self.search_path
    }
    /// Whether the catalog rule applies (reads of pg_catalog / information_schema).
    pub fn catalog(&self) -> bool {
        self.catalog
    }
    /// Whether DDL is allowed (own or inherited).
    pub fn ddl(&self) -> bool {
        self.ddl
    }
}

impl Role {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The file that defines the role.
    pub fn file(&self) -> &Path {
        &self.file
    }
    /// The roles it inherits from directly, as written.
    pub fn inherit(&self) -> &[String] {
        &self.inherit
    }
    pub fn settings(&self) -> &RoleSettings {
        &self.settings
    }
    /// The effective `"*"` grant (own and inherited), if any.
    pub fn all_tables(&self) -> Option<&TableGrant> {
        self.all_tables.as_ref()
    }
    /// Effective grants on named relations (own and inherited).
    pub fn tables(&self) -> &BTreeMap<RelName, TableGrant> {
        &self.tables
    }
    /// Effective extra functions (own and inherited).
    pub fn functions(&self) -> &BTreeSet<FuncName> {
        &self.functions
    }
}

impl Policy {
    /// Loads every `*.yaml` file of `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Policy, LoadError> {
        crate::compile::load_dir(dir)
    }

    /// Compiles policy files given as (file name, contents), e.g. for tests.
    pub fn from_sources<P: AsRef<Path>, S: AsRef<str>>(
        sources: &[(P, S)],
    ) -> Result<Policy, LoadError> {
        let owned: Vec<(PathBuf, &str)> = sources
            .iter()
            .map(|(p, s)| (p.as_ref().to_path_buf(), s.as_ref()))
            .collect();
        crate::compile::compile(&owned)
    }

    /// A hash of the files' names and contents: the same files give the same version, so
    /// it is a sound cache key across reloads.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Role names, sorted.
    pub fn roles(&self) -> impl Iterator<Item = &str> + '_ {
        self.roles.keys().map(String::as_str)
    }

    pub fn mode(&self, role: &str) -> Option<Mode> {
        self.roles.get(role).map(|r| r.settings.mode)
    }

    pub fn role_settings(&self, role: &str) -> Option<&RoleSettings> {
        self.roles.get(role).map(|r| &r.settings)
    }
}
