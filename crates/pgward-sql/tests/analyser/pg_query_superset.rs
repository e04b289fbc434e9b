//! A second opinion from PostgreSQL's own grammar (libpg_query, through the `pg_query`
//! crate): for every statement of the decision corpus and the fuzz seed corpus that the
//! analyser accepts, the relations it reports needs on must include every relation
//! pg_query's `tables()` finds. A relation pgward misses would be one the policy never
//! checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use pgward_sql::{analyse, AnalyseContext, Need, RelName, StatementKind};

fn manifest_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The decision corpus (one statement per line) and the analyse_check fuzz seeds.
fn statements() -> Vec<String> {
    let corpus = std::fs::read_to_string(manifest_path("tests/corpus.sql")).unwrap();
    let mut out: Vec<String> = corpus
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(str::to_string)
        .collect();
    if let Ok(dir) = std::fs::read_dir(manifest_path("../../fuzz/corpus/analyse_check")) {
        let mut seeds: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        seeds.sort();
        for seed in seeds {
            if let Ok(text) = std::fs::read_to_string(&seed) {
                if !out.contains(&text) {
                    out.push(text);
                }
            }
        }
    }
    out
}

fn relations(needs: &BTreeSet<Need>) -> impl Iterator<Item = &RelName> {
    needs.iter().filter_map(|need| match need {
        Need::Column { relation, .. }
        | Need::AnyColumn { relation, .. }
        | Need::Relation { relation, .. } => Some(relation),
        Need::Function { .. } | Need::Ddl => None,
    })
}

/// Whether pg_query's table name (`schema.name`, or `name` as written unqualified) is
/// among pgward's resolved relations: unqualified names resolve through pg_catalog and
/// then the search_path, as pgward resolved them.
fn covered(table: &str, found: &BTreeSet<RelName>, search_path: &[String]) -> bool {
    match table.split_once('.') {
        Some((schema, name)) => found.contains(&RelName::new(schema, name)),
        None => std::iter::once("pg_catalog")
            .chain(search_path.iter().map(String::as_str))
            .any(|schema| found.contains(&RelName::new(schema, table))),
    }
}

#[test]
fn pgward_relations_are_a_superset_of_pg_query_tables() {
    let catalog = common::catalog();
    let search_path = vec!["public".to_string()];
    let ctx = AnalyseContext {
        catalog: &catalog,
        search_path: &search_path,
    };
    let mut compared = 0;
    let mut rejected_by_pgward = 0;
    let mut rejected_by_pg_query = 0;
    let mut missing = Vec::new();
    let statements = statements();
    assert!(statements.len() >= 300, "{} statements", statements.len());
    for sql in &statements {
        let Ok(analysed) = analyse(sql, &ctx) else {
            rejected_by_pgward += 1;
            continue;
        };
        // DDL names objects it creates or drops; only ddl roles may run it at all.
        if analysed
            .iter()
            .any(|s| s.kind == StatementKind::Ddl || s.needs.contains(&Need::Ddl))
        {
            continue;
        }
        let parsed = match pg_query::parse(sql, 0) {
            Ok(parsed) => parsed,
            Err(_) => {
                // PostgreSQL would refuse it too; nothing to compare.
                rejected_by_pg_query += 1;
                continue;
            }
        };
        let found: BTreeSet<RelName> = analysed
            .iter()
            .flat_map(|s| relations(&s.needs))
            .cloned()
            .collect();
        compared += 1;
        for table in parsed.tables() {
            if !covered(&table, &found, &search_path) {
                missing.push(format!("{sql}\n    pg_query: {table}; pgward: {found:?}"));
            }
        }
    }
    println!(
        "pg_query superset: {} statements, {compared} compared, {rejected_by_pgward} rejected \
         by pgward, {rejected_by_pg_query} accepted by pgward but not by pg_query",
        statements.len()
    );
    assert!(compared >= 150, "only {compared} statements compared");
    assert!(
        missing.is_empty(),
        "pgward-sql misses relations pg_query finds:\n{}",
        missing.join("\n")
    );
}
