//! The DBA commands, run as a DBA runs them: the built binary, real files, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn pgward(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgward"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pgward");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn check(role: &str, sql: Option<&str>, stdin: Option<&str>, extra: &[&str]) -> Output {
    let policies = fixture("policies");
    let schema = fixture("schema.sql");
    let mut args = vec![
        "check",
        "-p",
        policies.to_str().unwrap(),
        "--role",
        role,
        "--schema",
        schema.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    if let Some(sql) = sql {
        args.push(sql);
    }
    pgward(&args, stdin)
}

#[test]
fn allowed_statement_exits_0() {
    let out = check(
        "analyst",
        Some("SELECT id, total FROM orders WHERE status = 'paid'"),
        None,
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.starts_with("ALLOW"), "{text}");
    // Literals never reach the output.
    assert!(!text.contains("paid"), "{text}");
}

#[test]
fn denied_statement_exits_1_with_every_reason() {
    let out = check(
        "analyst",
        Some("SELECT c.email, c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id"),
        None,
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.starts_with("DENY"), "{text}");
    assert!(
        text.contains(r#"permission denied: role "analyst" may not select column customers.email"#),
        "{text}"
    );
    assert!(
        text.contains("may not select column customers.name"),
        "{text}"
    );
    assert!(text.contains("hint: policy for role \"analyst\""), "{text}");
}

#[test]
fn statements_from_stdin_are_decided_one_by_one() {
    let out = check(
        "support",
        None,
        Some("SELECT name FROM customers;\nUPDATE orders SET status = 'x' WHERE id = 1;\nDELETE FROM orders;\n"),
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let lines: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("ALLOW"), "{lines:?}");
    assert!(lines[1].starts_with("ALLOW"), "{lines:?}");
    assert!(lines[2].starts_with("DENY"), "{lines:?}");
    assert!(stdout(&out).contains("may not delete from public.orders"));
}

#[test]
fn all_allowed_from_stdin_exits_0() {
    let out = check(
        "analyst",
        None,
        Some("BEGIN; SELECT count(*) FROM orders; COMMIT;"),
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out).lines().count(), 3);
}

#[test]
fn unanalysable_text_is_denied() {
    let out = check("analyst", Some("SELEC id FROM orders"), None, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("may not run this statement"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn audit_role_would_deny_and_exits_1() {
    let out = check("batch", Some("SELECT email FROM customers"), None, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("WOULD_DENY"), "{}", stdout(&out));
}

#[test]
fn json_output_has_decision_reasons_and_needs() {
    let out = check(
        "analyst",
        Some("SELECT id FROM orders; SELECT email FROM customers"),
        None,
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let values: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0]["decision"], "allow");
    assert_eq!(values[0]["kind"], "SELECT");
    assert_eq!(values[0]["needs"][0]["column"], "id");
    assert_eq!(values[1]["decision"], "deny");
    assert_eq!(
        values[1]["reasons"][0],
        r#"permission denied: role "analyst" may not select column customers.email"#
    );
}

#[test]
fn unknown_role_is_a_usage_error() {
    let out = check("nobody", Some("SELECT 1"), None, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("defines role \"nobody\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_role_flag_is_a_usage_error() {
    let out = pgward(&["check", "SELECT 1"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_policy_exits_2_with_file_line_col() {
    let policies = fixture("bad_policies");
    let out = pgward(
        &[
            "check",
            "-p",
            policies.to_str().unwrap(),
            "--role",
            "analyst",
            "SELECT 1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("broken.yaml:6:9: "), "{err}");
    assert!(err.contains("selekt"), "{err}");
}

#[test]
fn bad_schema_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.sql");
    std::fs::write(&schema, "CREATE TABLE (").unwrap();
    let policies = fixture("policies");
    let out = pgward(
        &[
            "check",
            "-p",
            policies.to_str().unwrap(),
            "--role",
            "analyst",
            "--schema",
            schema.to_str().unwrap(),
            "SELECT 1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("schema file"), "{}", stderr(&out));
}

#[test]
fn validate_clean_policies_exits_0() {
    let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let out = pgward(&["validate", "-p", policies.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("ok ("), "{}", stdout(&out));
}

#[test]
fn validate_bad_policy_prints_file_line_col_and_exits_1() {
    let policies = fixture("bad_policies");
    let out = pgward(&["validate", "-p", policies.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("broken.yaml:6:9: "), "{text}");
}

#[test]
fn validate_missing_directory_exits_2() {
    let out = pgward(&["validate", "-p", "/nonexistent/pgward-policies"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_against_schema_reports_names_that_do_not_exist() {
    let policies = fixture("policies");
    let schema = fixture("schema.sql");
    let out = pgward(
        &[
            "validate",
            "-p",
            policies.to_str().unwrap(),
            "--schema",
            schema.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        text.contains(
            "shop.yaml:12:31: role \"support\": column public.customers.phone does not exist upstream"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "shop.yaml:13:7: role \"support\": table public.refunds does not exist upstream"
        ),
        "{text}"
    );
}

#[test]
fn grants_for_one_role() {
    let policies = fixture("policies");
    let out = pgward(
        &[
            "grants",
            "-p",
            policies.to_str().unwrap(),
            "--role",
            "analyst",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("GRANT USAGE ON SCHEMA public TO analyst;"),
        "{text}"
    );
    assert!(
        text.contains("GRANT SELECT (country, created_at, id) ON public.customers TO analyst;"),
        "{text}"
    );
    assert!(!text.contains("support"), "{text}");
}

#[test]
fn grants_for_every_role() {
    let policies = fixture("policies");
    let out = pgward(&["grants", "-p", policies.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for role in ["analyst", "support", "batch"] {
        assert!(text.contains(&format!("-- role \"{role}\"")), "{text}");
    }
}

#[test]
fn grants_for_unknown_role_exits_2() {
    let policies = fixture("policies");
    let out = pgward(
        &[
            "grants",
            "-p",
            policies.to_str().unwrap(),
            "--role",
            "nobody",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}
