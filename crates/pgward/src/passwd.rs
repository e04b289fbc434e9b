//! `pgward passwd [USER]`: reads a password (terminal without echo, or stdin) and
//! prints PostgreSQL's SCRAM-SHA-256 verifier for it. The password is never printed.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The user the verifier is for (only used in the prompt).
    user: Option<String>,
}

pub fn run(args: PasswdArgs) -> anyhow::Result<ExitCode> {
    let password = if std::io::stdin().is_terminal() {
        let prompt = match &args.user {
            Some(u) => format!("Password for {u}: "),
            None => "Password: ".to_owned(),
        };
        let first = rpassword::prompt_password(&prompt).context("reading password")?;
        let again = rpassword::prompt_password("Again: ").context("reading password")?;
        if first != again {
            bail!("passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    println!(
        "{}",
        postgres_protocol::password::scram_sha_256(password.as_bytes())
    );
    Ok(ExitCode::SUCCESS)
}
