//! `pgward check`: the proxy's decision, offline. Analyses SQL (an argument, or stdin)
//! against a catalog and decides it for a role with every reason it is denied.
//!
//! Exit status: 0 if every statement is allowed, 1 if any is denied (or, for a role in
//! audit mode, would be denied), 2 on usage or load errors. It never connects anywhere
//! except, with `--dsn`, to read the catalog.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use pgward_policy::{Decision, Denial, Mode, Policy, StatementAccess};
use pgward_sql::{analyse, AnalyseContext, Catalog};
use serde_json::json;

use crate::catalog_source::CatalogArgs;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy directory.
    #[arg(short, long, value_name = "DIR", default_value = "policies")]
    policies: PathBuf,
    /// The policy role to decide for.
    #[arg(long)]
    role: String,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// One JSON object per statement instead of text.
    #[arg(long)]
    json: bool,
    /// The SQL to decide; read from stdin when absent.
    sql: Option<String>,
}

/// Loads a policy directory; the error is `file:line:col: message`.
pub fn load_policy(dir: &Path) -> anyhow::Result<Policy> {
    Policy::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))
}

/// One statement's outcome.
struct Outcome {
    /// The normalized statement (literals as `?`), or the input for unanalysable text.
    statement: String,
    access: Option<StatementAccess>,
    decision: Decision,
    /// Every denial, one per missing privilege, in need order.
    reasons: Vec<Denial>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args.policies)?;
    let Some(settings) = policy.role_settings(&args.role) else {
        bail!(
            "no policy in {} defines role \"{}\" (roles: {})",
            args.policies.display(),
            args.role,
            policy.roles().collect::<Vec<_>>().join(", ")
        );
    };
    let search_path = settings.search_path().to_vec();
    let catalog = match args.catalog.load()? {
        Some(catalog) => catalog,
        None => {
            eprintln!("pgward check: no --schema or --dsn: names resolve against pg_catalog only");
            Catalog::new()
        }
    };
    let sql = match args.sql {
        Some(sql) => sql,
        None => {
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .context("reading SQL from stdin")?;
            sql
        }
    };
    let ctx = AnalyseContext {
        catalog: &catalog,
        search_path: &search_path,
    };
    let outcomes = decide(&policy, &args.role, &sql, &ctx);
    if outcomes.is_empty() {
        bail!("no SQL statement given");
    }
    for outcome in &outcomes {
        if args.json {
            println!("{}", outcome_json(outcome));
        } else {
            print_text(outcome);
        }
    }
    let all_allowed = outcomes.iter().all(|o| o.decision == Decision::Allow);
    Ok(if all_allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Decides every statement of `sql` separately, so each one gets its own line and
/// reasons. Text that does not analyse is one denied outcome: the analyser fails the
/// whole string, as the proxy does for a Query message.
fn decide(policy: &Policy, role: &str, sql: &str, ctx: &AnalyseContext<'_>) -> Vec<Outcome> {
    let statements = match analyse(sql, ctx) {
        Ok(statements) => statements,
        Err(err) => {
            let denial = policy.deny_unanalysable(role, err.to_string(), 0);
            return vec![Outcome {
                statement: sql.trim().to_string(),
                access: None,
                decision: decision_of(&denial),
                reasons: vec![denial],
            }];
        }
    };
    statements
        .into_iter()
        .map(|access| {
            let (decision, reasons) = match policy.check(role, std::slice::from_ref(&access)) {
                Ok(_) => (Decision::Allow, Vec::new()),
                Err(first) => {
                    let decision = decision_of(&first);
                    (decision, every_reason(policy, role, &access, first))
                }
            };
            Outcome {
                statement: access.normalized.clone(),
                access: Some(access),
                decision,
                reasons,
            }
        })
        .collect()
}

/// Enforce mode's decision is Deny; audit mode's is WouldDeny (forwarded, recorded).
fn decision_of(denial: &Denial) -> Decision {
    match denial.mode() {
        Some(Mode::Audit) => Decision::WouldDeny,
        Some(Mode::Enforce) | None => Decision::Deny,
    }
}

/// Every missing privilege of a denied statement: each need is checked on its own. A
/// denial that no single need explains (e.g. a statement kind) is reported as `first`.
fn every_reason(
    policy: &Policy,
    role: &str,
    access: &StatementAccess,
    first: Denial,
) -> Vec<Denial> {
    let mut seen = BTreeSet::new();
    let mut reasons = Vec::new();
    for need in &access.needs {
        let single = StatementAccess {
            kind: access.kind.clone(),
            needs: BTreeSet::from([need.clone()]),
            normalized: access.normalized.clone(),
        };
        if let Err(denial) = policy.check(role, std::slice::from_ref(&single)) {
            if seen.insert(denial.message()) {
                reasons.push(denial);
            }
        }
    }
    // The policy's own first reason leads; it may be one no single need explains.
    reasons.retain(|d| d.message() != first.message());
    reasons.insert(0, first);
    reasons
}

fn print_text(outcome: &Outcome) {
    let label = match outcome.decision {
        Decision::Allow => "ALLOW",
        Decision::Deny => "DENY",
        Decision::WouldDeny => "WOULD_DENY",
    };
    println!("{label:<10} {}", outcome.statement);
    for reason in &outcome.reasons {
        println!("           {}", reason.message());
    }
    if let Some(first) = outcome.reasons.first() {
        println!("           hint: {}", first.hint());
    }
}

fn outcome_json(outcome: &Outcome) -> serde_json::Value {
    let (kind, needs) = match &outcome.access {
        Some(access) => (
            json!(access.kind.operation_name()),
            json!(access.needs.iter().collect::<Vec<_>>()),
        ),
        None => (serde_json::Value::Null, json!([])),
    };
    json!({
        "statement": outcome.statement,
        "kind": kind,
        "decision": outcome.decision.as_str(),
        "reasons": outcome.reasons.iter().map(Denial::message).collect::<Vec<_>>(),
        "hint": outcome.reasons.first().map(Denial::hint),
        "needs": needs,
    })
}
