//! SQL text -> what it touches: statement kind, relations, columns, actions, functions.
//!
//! Pure: no sockets, no files. Anything the analyser does not understand is an error
//! (which the policy layer turns into a denial), never an empty set of needs.
//!
//! ```
//! use pgward_sql::{analyse, AnalyseContext, Catalog, RelKind};
//! let mut catalog = Catalog::new();
//! catalog.add_relation("public", "orders", RelKind::Table, vec!["id".into(), "total".into()]);
//! let search_path = vec!["public".to_string()];
//! let ctx = AnalyseContext { catalog: &catalog, search_path: &search_path };
//! let access = analyse("SELECT id FROM orders", &ctx).unwrap();
//! assert_eq!(access.len(), 1);
//! ```

pub mod access;
pub mod catalog;
mod dml;
mod error;
mod expr;
mod from;
pub mod ident;
mod lex;
mod normalize;
mod parse;
mod pg_builtin_data;
mod pg_catalog;
mod query;
mod schema_file;
mod scope;
pub mod settings;
mod shape;
mod statement;

pub use access::{Action, FuncName, Need, RelName, StatementAccess, StatementKind};
pub use catalog::{Catalog, RelKind, Relation};
pub use error::{AnalyseError, ErrorKind};
#[doc(hidden)]
pub use shape::lexed_shape;
pub use shape::{decision_shape, decision_shape_into};

use parse::Body;
use scope::Resolver;

/// What names resolve against: the catalog and the session's pinned search_path.
#[derive(Clone, Copy, Debug)]
pub struct AnalyseContext<'a> {
    pub catalog: &'a Catalog,
    pub search_path: &'a [String],
}

/// Analyses every statement of `sql`. One statement that cannot be analysed fails the
/// whole call; an empty string (or only comments) is `Ok(vec![])`.
pub fn analyse(sql: &str, ctx: &AnalyseContext<'_>) -> Result<Vec<StatementAccess>, AnalyseError> {
    let mut out = Vec::new();
    for parsed in parse::parse(sql)? {
        let mut resolver = Resolver::new(ctx);
        let kind = match &parsed.body {
            Body::Sql(statement) => resolver.statement(statement, &parsed.normalized)?,
            Body::TwoPhase => StatementKind::Transaction,
            Body::Move => StatementKind::Cursor,
        };
        out.push(StatementAccess {
            kind,
            needs: resolver.needs,
            normalized: parsed.normalized,
        });
    }
    Ok(out)
}
