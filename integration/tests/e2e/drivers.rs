//! Real drivers through pgward with enforcement on (issue 5, "psql and ORMs unchanged"):
//! each suite in `integration/drivers/` runs its driver's normal connect + CRUD +
//! introspection as the demo roles `app` and `alice` with the example policies, and
//! checks that nothing the driver issues by itself is denied, while one deliberately
//! denied statement gets 42501 and leaves the session usable.
//!
//! The runtimes (python3 with psycopg and asyncpg, node with `pg` from
//! `integration/drivers/node`, java with the PostgreSQL JDBC jar) are installed by
//! `.ci/run` under CI=true. Outside CI a missing runtime skips its test with a message;
//! in CI it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pgward_integration::{admin_sql, cluster, start_proxy, Proxy, ProxyOptions};

/// Where the driver scripts live.
fn drivers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("drivers")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The environment every suite reads its connection parameters from.
fn driver_env(proxy: &Proxy) -> Vec<(String, String)> {
    let mut env = vec![
        ("PGWARD_HOST".to_owned(), "localhost".to_owned()),
        ("PGWARD_PORT".to_owned(), proxy.addr.port().to_string()),
        ("PGWARD_DB".to_owned(), proxy.login("app").database.clone()),
        (
            "PGWARD_CA".to_owned(),
            cluster().ca_path().display().to_string(),
        ),
    ];
    for name in ["app", "alice"] {
        let upper = name.to_uppercase();
        env.push((format!("PGWARD_{upper}_USER"), name.to_owned()));
        env.push((format!("PGWARD_{upper}_PASSWORD"), proxy.password(name)));
    }
    env
}

/// Whether `program args...` runs and exits 0 (a probe for a runtime or a package).
fn probe(program: &str, args: &[&str], dir: &Path) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Skips (locally) or fails (in CI) when a runtime the suite needs is missing.
/// Returns true when the suite can run.
fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let msg = format!(
        "{what} is not installed: run .ci/run with CI=true (or install it as .ci/run does)"
    );
    assert!(!in_ci(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    false
}

/// Runs one driver suite against a fresh proxy with the example policies and asserts it
/// exits 0, printing its output either way.
/// `note` is the prefix of `orders.note` the suite writes: none of its rows may remain.
async fn run_suite(program: &'static str, args: Vec<String>, dir: PathBuf, note: &str) {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let env = driver_env(&proxy);
    let shown = format!("{program} {}", args.join(" "));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .args(&args)
            .current_dir(&dir)
            .envs(env)
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("running {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- {shown}\n{stdout}");
    if !stderr.is_empty() {
        println!("--- stderr\n{stderr}");
    }
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("ok ")),
        "{shown} ran no check:\n{stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l.starts_with("FAIL")),
        "{shown}:\n{stdout}"
    );
    // The suites clean up after themselves; a denied write never lands.
    let left = admin_sql(
        "shop",
        &format!("SELECT count(*) FROM orders WHERE note LIKE '{note}%'"),
    );
    assert_eq!(left.trim(), "0", "{shown} left rows in orders");
    proxy.stop().await;
}

fn python_has(module: &str) -> bool {
    probe(
        "python3",
        &["-c", &format!("import {module}")],
        &drivers_dir(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg3_connect_crud_pipeline_and_introspection() {
    if !require("python3 with psycopg 3", python_has("psycopg")) {
        return;
    }
    run_suite(
        "python3",
        vec!["psycopg_suite.py".to_owned()],
        drivers_dir(),
        "pgward-psycopg",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_orm_connect_reflection_and_crud() {
    if !require("python3 with SQLAlchemy", python_has("sqlalchemy")) {
        return;
    }
    run_suite(
        "python3",
        vec!["sqlalchemy_suite.py".to_owned()],
        drivers_dir(),
        "pgward-sqlalchemy",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncpg_connect_crud_and_type_introspection() {
    if !require("python3 with asyncpg", python_has("asyncpg")) {
        return;
    }
    run_suite(
        "python3",
        vec!["asyncpg_suite.py".to_owned()],
        drivers_dir(),
        "pgward-asyncpg",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_postgres_connect_crud_and_catalog_reads() {
    let dir = drivers_dir().join("node");
    let present = probe("node", &["-e", "require('pg')"], &dir);
    if !require(
        "node with pg (npm ci --prefix integration/drivers/node)",
        present,
    ) {
        return;
    }
    run_suite("node", vec!["suite.js".to_owned()], dir, "pgward-node").await;
}

/// Debian's libpostgresql-jdbc-java.
const PGJDBC_JAR: &str = "/usr/share/java/postgresql.jar";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_connect_crud_batches_and_metadata() {
    let dir = drivers_dir().join("java");
    let present = probe("java", &["-version"], &dir) && Path::new(PGJDBC_JAR).exists();
    if !require(
        "java with the PostgreSQL JDBC jar (apt-get install libpostgresql-jdbc-java)",
        present,
    ) {
        return;
    }
    run_suite(
        "java",
        vec![
            "-cp".to_owned(),
            PGJDBC_JAR.to_owned(),
            "PgjdbcSuite.java".to_owned(),
        ],
        dir,
        "pgward-pgjdbc",
    )
    .await;
}
