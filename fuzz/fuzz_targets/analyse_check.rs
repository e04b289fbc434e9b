//! Any text through the analyser and the example policies: must never panic (and libFuzzer's
//! timeout bounds the time per input). Every result, Ok or Err, is fine. And the decision
//! cache's key for the text is the same by the byte scanner and by the lexer.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pgward_policy::Policy;
use pgward_sql::{analyse, decision_shape, lexed_shape, AnalyseContext, Catalog};

const POLICIES: &[(&str, &str)] = &[
    (
        "policies/analyst.yaml",
        include_str!("../../policies/analyst.yaml"),
    ),
    ("policies/app.yaml", include_str!("../../policies/app.yaml")),
    (
        "policies/bench.yaml",
        include_str!("../../policies/bench.yaml"),
    ),
    (
        "policies/legacy_batch.yaml",
        include_str!("../../policies/legacy_batch.yaml"),
    ),
    (
        "policies/migrator.yaml",
        include_str!("../../policies/migrator.yaml"),
    ),
    (
        "policies/support.yaml",
        include_str!("../../policies/support.yaml"),
    ),
];

const SCHEMA: &str = "
CREATE TABLE customers (id int, name text, email text, phone text, country text, created_at timestamptz);
CREATE TABLE products (id int, name text, price numeric, stock int);
CREATE TABLE orders (id int, customer_id int, total numeric, status text, note text, created_at timestamptz);
CREATE SCHEMA secret;
CREATE TABLE secret.customers (id int, ssn text);
";

fn setup() -> &'static (Policy, Catalog) {
    static SETUP: OnceLock<(Policy, Catalog)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let policy = Policy::from_sources(POLICIES).unwrap();
        let catalog = Catalog::from_create_tables(SCHEMA).unwrap();
        (policy, catalog)
    })
}

fuzz_target!(|sql: &str| {
    // The decision cache's key (the shape, or the text itself when it has none): the byte
    // scanner behind `decision_shape` must key every text as the lexer does.
    let key = decision_shape(sql);
    let lexed = lexed_shape(sql);
    assert_eq!(
        key.as_deref().unwrap_or(sql),
        lexed.as_deref().unwrap_or(sql),
        "decision shape differs from the lexer's"
    );
    let (policy, catalog) = setup();
    for role in ["analyst", "support", "app", "migrator", "legacy_batch"] {
        let search_path = policy.role_settings(role).unwrap().search_path().to_vec();
        let ctx = AnalyseContext {
            catalog,
            search_path: &search_path,
        };
        match analyse(sql, &ctx) {
            Ok(statements) => {
                let _ = policy.check(role, &statements);
            }
            Err(err) => {
                let _ = policy.deny_unanalysable(role, err.to_string(), 0).message();
            }
        }
    }
});
