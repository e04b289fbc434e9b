//! SQL text -> what it touches: statement kind, relations, columns, actions, functions.
//!
//! Pure: no sockets, no files. Anything the analyser does not understand is an error
//! (which the policy layer turns into a denial), never an empty set of needs.

pub mod access;
pub mod catalog;

pub use access::{Action, FuncName, Need, RelName, StatementAccess, StatementKind};
pub use catalog::{Catalog, RelKind, Relation};
