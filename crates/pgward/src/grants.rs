//! `pgward grants`: prints PostgreSQL GRANT/REVOKE statements equivalent to the policy,
//! so a DBA can enforce the same rules in the database (defence in depth). It only prints;
//! it never connects to a database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use crate::check::load_policy;

#[derive(Debug, Args)]
pub struct GrantsArgs {
    /// Policy directory.
    #[arg(short, long, value_name = "DIR", default_value = "policies")]
    policies: PathBuf,
    /// Only this role (default: every role).
    #[arg(long)]
    role: Option<String>,
}

pub fn run(args: GrantsArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args.policies)?;
    if let Some(role) = &args.role {
        if policy.role(role).is_none() {
            bail!(
                "no policy in {} defines role \"{role}\"",
                args.policies.display()
            );
        }
    }
    print!("{}", policy.grants(args.role.as_deref()));
    Ok(ExitCode::SUCCESS)
}
