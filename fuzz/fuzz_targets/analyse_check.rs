//! Any text through the analyser and the example policies: must never panic (and libFuzzer's
//! timeout bounds the time per input). Every result, Ok or Err, is fine.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pgward_policy::Policy;
use pgward_sql::{analyse, AnalyseContext, Catalog};

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
