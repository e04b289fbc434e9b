//! `pgward validate`: loads and lints a policy directory; with a catalog (`--dsn`, or
//! `--schema`), reports every table, column and function a policy names that does not
//! exist there. Every problem is one line, `file:line:col: message`, as compilers print.
//!
//! Exit status: 0 when clean, 1 when problems were found, 2 when it could not run (no
//! such directory, unreadable files, catalog unreachable).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use pgward_policy::{Columns, LoadErrorKind, Policy, RelName};
use pgward_sql::Catalog;

use crate::catalog_source::CatalogArgs;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Policy directory.
    #[arg(short, long, value_name = "DIR", default_value = "policies")]
    policies: PathBuf,
    #[command(flatten)]
    catalog: CatalogArgs,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let policy = match Policy::load_dir(&args.policies) {
        Ok(policy) => policy,
        Err(err) => {
            println!("{err}");
            return Ok(match err.kind() {
                LoadErrorKind::Io => ExitCode::from(2),
                LoadErrorKind::Syntax | LoadErrorKind::Invalid => ExitCode::from(1),
            });
        }
    };
    let Some(catalog) = args.catalog.load()? else {
        println!(
            "{}: ok ({} roles)",
            args.policies.display(),
            policy.roles().count()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let problems = missing_upstream(&policy, &catalog);
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        println!(
            "{}: ok ({} roles, every table, column and function exists)",
            args.policies.display(),
            policy.roles().count()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

/// Every table, column and function named in a policy that `catalog` lacks, as
/// `file:line:col: message` lines, sorted and reported once where they are written.
fn missing_upstream(policy: &Policy, catalog: &Catalog) -> Vec<String> {
    let mut problems = BTreeSet::new();
    for name in policy.roles() {
        let Some(role) = policy.role(name) else {
            continue;
        };
        let file = role.file();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // Grants are effective (inherited ones included): only report a name in the file
        // that writes it, so an inherited mistake is reported once, by its own role.
        for (relation, grant) in role.tables() {
            let Some(table_at) = find_table(&text, relation) else {
                continue;
            };
            let Some(found) = catalog.relation(&relation.schema, &relation.name) else {
                problems.insert(format!(
                    "{}: role \"{name}\": table {relation} does not exist upstream",
                    at(file, &text, table_at)
                ));
                continue;
            };
            for columns in [grant.select(), grant.insert(), grant.update()] {
                let Columns::Only(list) = columns else {
                    continue;
                };
                for column in list {
                    if found.columns.iter().any(|c| c == column) {
                        continue;
                    }
                    if let Some(column_at) = find_word(&text, column, table_at) {
                        problems.insert(format!(
                            "{}: role \"{name}\": column {relation}.{column} does not exist upstream",
                            at(file, &text, column_at)
                        ));
                    }
                }
            }
        }
        for function in role.functions() {
            // A schema file carries no functions: only check what the catalog knows.
            if !catalog.knows_functions_of(&function.schema)
                || catalog.has_function(&function.schema, &function.name)
            {
                continue;
            }
            if let Some(function_at) = find_word(&text, &function.name, 0) {
                problems.insert(format!(
                    "{}: role \"{name}\": function {function} does not exist upstream",
                    at(file, &text, function_at)
                ));
            }
        }
    }
    problems.into_iter().collect()
}

/// `file:line:col` (1-based) of a byte offset of the file's text.
fn at(file: &Path, text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{}:{line}:{column}", file.display())
}

/// Where a table key is written: `schema.name`, or `name` alone for public tables.
fn find_table(text: &str, relation: &RelName) -> Option<usize> {
    let qualified = format!("{}.{}", relation.schema, relation.name);
    find_word(text, &qualified, 0).or_else(|| {
        (relation.schema == "public")
            .then(|| find_word(text, &relation.name, 0))
            .flatten()
    })
}

/// The first occurrence of `word` at or after `from` not inside a longer identifier
/// (and not in a comment line).
fn find_word(text: &str, word: &str, from: usize) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut start = from;
    while let Some(found) = text.get(start..)?.find(word) {
        let pos = start + found;
        let before = text[..pos].chars().next_back();
        let after = text[pos + word.len()..].chars().next();
        let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
        let in_comment = text[line_start..pos].contains('#');
        if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) && !in_comment {
            return Some(pos);
        }
        start = pos + word.len();
    }
    None
}
