//! Policy files -> a compiled [`Policy`]; (role, what a statement needs) -> [`Permit`] or
//! [`Denial`]; GRANT export.
//!
//! Pure apart from reading its own files. Deny by default: a need the policy does not
//! grant, an unknown role or an unknown kind of need is a [`Denial`], never a [`Permit`].
//! A [`Permit`] can only be made here, by [`Policy::check`] (or, for a role in audit
//! mode, by [`Denial::audit_permit`]), so holding one is evidence that the policy allowed
//! (or audited) the statement.

mod cache;
mod catalog;
mod check;
mod compile;
mod decision;
mod error;
mod functions;
mod grants;
mod ident;
mod policy;
mod raw;

pub use cache::{CacheKey, DecisionCache};
pub use catalog::{
    is_catalog_schema, never_by_catalog_rule, CATALOG_SCHEMAS, NEVER_BY_CATALOG_RULE,
};
pub use decision::{Decision, Denial, Missing, Permit};
pub use error::{LoadError, LoadErrorKind};
pub use functions::{builtin_function, FunctionClass, BUILTIN_FUNCTIONS, REVIEWED_UNSAFE};
pub use policy::{Columns, Mode, Policy, Role, RoleSettings, TableGrant};

pub use pgward_sql::access::{Action, FuncName, Need, RelName, StatementAccess, StatementKind};
