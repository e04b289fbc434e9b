//! The invariant the proxy's decision cache relies on: a statement and its decision shape
//! (numbers replaced by 0) need exactly the same privileges — over the whole corpus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::run;
use pgward_sql::{decision_shape, lexed_shape};

/// The corpus's statements (one per line; blank lines and `--` comment lines skipped).
fn corpus() -> impl Iterator<Item = &'static str> {
    include_str!("../corpus.sql")
        .lines()
        .map(str::trim)
        .filter(|sql| !sql.is_empty() && !sql.starts_with("--"))
}

#[test]
fn every_corpus_statement_needs_what_its_shape_needs() {
    let mut compared = 0;
    for sql in corpus() {
        let Some(shape) = decision_shape(sql) else {
            continue;
        };
        let original = run(sql);
        let shaped = run(&shape);
        match (&original, &shaped) {
            (Ok(a), Ok(b)) => {
                let a: Vec<_> = a.iter().map(|s| (&s.kind, &s.needs)).collect();
                let b: Vec<_> = b.iter().map(|s| (&s.kind, &s.needs)).collect();
                assert_eq!(a, b, "{sql}  vs  {shape}");
            }
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{sql}  vs  {shape}: {:?} / {:?}",
                original.as_ref().map(|_| "ok").map_err(|e| e.to_string()),
                shaped.as_ref().map(|_| "ok").map_err(|e| e.to_string())
            ),
        }
        compared += 1;
    }
    assert!(compared > 400, "only {compared} compared");
}

/// The proxy keys its decision cache by `decision_shape(sql)`, or the text itself when it has
/// none; the byte scanner behind it must key every corpus statement as the lexer would.
#[test]
fn every_corpus_statement_is_keyed_as_the_lexer_keys_it() {
    let mut compared = 0;
    for sql in corpus() {
        let key = decision_shape(sql);
        let lexed = lexed_shape(sql);
        assert_eq!(
            key.as_deref().unwrap_or(sql),
            lexed.as_deref().unwrap_or(sql),
            "{sql}"
        );
        compared += 1;
    }
    assert!(compared > 400, "only {compared} compared");
}
