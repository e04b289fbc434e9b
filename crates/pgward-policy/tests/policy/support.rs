//! Builders that make decision tests read like the spec: `col("orders", "id")` is
//! "select on column public.orders.id". Tests build `StatementAccess` by hand so they do
//! not depend on the analyser.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use pgward_policy::{Action, FuncName, Need, Policy, RelName, StatementAccess, StatementKind};

/// The example policies shipped in `policies/`.
pub fn demo() -> &'static Policy {
    static DEMO: OnceLock<Policy> = OnceLock::new();
    DEMO.get_or_init(|| Policy::load_dir(&policies_dir()).unwrap())
}

pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// One policy file called `policies/test.yaml`.
pub fn policy(yaml: &str) -> Policy {
    Policy::from_sources(&[("policies/test.yaml", yaml)]).unwrap()
}

/// `schema.table` or `table` (= public.table), already folded.
pub fn rel(table: &str) -> RelName {
    match table.split_once('.') {
        Some((schema, name)) => RelName::new(schema, name),
        None => RelName::new("public", table),
    }
}

fn column(action: Action, table: &str, column: &str) -> Need {
    Need::Column {
        relation: rel(table),
        action,
        column: column.to_string(),
    }
}

pub fn col(table: &str, c: &str) -> Need {
    column(Action::Select, table, c)
}
pub fn ins(table: &str, c: &str) -> Need {
    column(Action::Insert, table, c)
}
pub fn upd(table: &str, c: &str) -> Need {
    column(Action::Update, table, c)
}
/// `count(*)`, `SELECT 1 FROM t`: select on at least one column.
pub fn any(table: &str) -> Need {
    Need::AnyColumn {
        relation: rel(table),
        action: Action::Select,
    }
}
pub fn any_of(action: Action, table: &str) -> Need {
    Need::AnyColumn {
        relation: rel(table),
        action,
    }
}
pub fn del(table: &str) -> Need {
    Need::Relation {
        relation: rel(table),
        action: Action::Delete,
    }
}
pub fn trunc(table: &str) -> Need {
    Need::Relation {
        relation: rel(table),
        action: Action::Truncate,
    }
}
pub fn whole(action: Action, table: &str) -> Need {
    Need::Relation {
        relation: rel(table),
        action,
    }
}
/// `name` = pg_catalog.name; `schema.name` otherwise.
pub fn func(name: &str) -> Need {
    let (schema, name) = name.split_once('.').unwrap_or(("pg_catalog", name));
    Need::Function {
        function: FuncName::new(schema, name),
    }
}
pub fn ddl() -> Need {
    Need::Ddl
}

pub fn stmt(kind: StatementKind, needs: impl IntoIterator<Item = Need>) -> StatementAccess {
    StatementAccess {
        kind,
        needs: needs.into_iter().collect::<BTreeSet<_>>(),
        normalized: String::new(),
    }
}

pub fn select(needs: impl IntoIterator<Item = Need>) -> StatementAccess {
    stmt(StatementKind::Select, needs)
}

/// A decision case: `Allow(role, needs)` or `Deny(role, needs, text the message must contain)`.
pub enum Case {
    Allow(&'static str, Vec<Need>),
    Deny(&'static str, Vec<Need>, &'static str),
}

pub fn allow<const N: usize>(role: &'static str, needs: [Need; N]) -> Case {
    Case::Allow(role, needs.into())
}

pub fn deny<const N: usize>(role: &'static str, needs: [Need; N], missing: &'static str) -> Case {
    Case::Deny(role, needs.into(), missing)
}

/// Runs every case against `policy` (each as one SELECT statement) and reports all
/// failures at once. Returns the number of cases run.
pub fn run(policy: &Policy, cases: Vec<Case>) -> usize {
    let mut failures = Vec::new();
    let n = cases.len();
    for (i, case) in cases.into_iter().enumerate() {
        match case {
            Case::Allow(role, needs) => {
                if let Err(d) = policy.check(role, &[select(needs.clone())]) {
                    failures.push(format!("#{i} allow {role} {needs:?}: denied: {d}"));
                }
            }
            Case::Deny(role, needs, missing) => {
                match policy.check(role, &[select(needs.clone())]) {
                    Ok(_) => failures.push(format!("#{i} deny {role} {needs:?}: allowed")),
                    Err(d) if !d.message().contains(missing) => failures.push(format!(
                        "#{i} deny {role} {needs:?}: message {:?} lacks {missing:?}",
                        d.message()
                    )),
                    Err(_) => {}
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}
