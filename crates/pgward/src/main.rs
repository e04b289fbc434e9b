//! The pgward binary: the command line (serve, dev, check, validate, grants, passwd).
//!
//! `anyhow` lives here only; the libraries have their own error types.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod catalog_source;
mod check;
mod dev;
mod grants;
mod passwd;
mod serve;
mod validate;

/// pgward: a PostgreSQL wire-protocol security proxy.
#[derive(Debug, Parser)]
#[command(name = "pgward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy until SIGTERM/SIGINT; SIGHUP reloads users and certificates.
    Serve(serve::ServeArgs),
    /// One-command sandbox: a throwaway PostgreSQL with TLS and cert auth, the demo
    /// schema and policies, and pgward in front of it.
    Dev(dev::DevArgs),
    /// Decide SQL for a role offline: every reason, exit 1 if anything is denied.
    Check(check::CheckArgs),
    /// Load and lint policies; with --dsn, report names that do not exist upstream.
    Validate(validate::ValidateArgs),
    /// Print PostgreSQL GRANT statements equivalent to the policy.
    Grants(grants::GrantsArgs),
    /// Read a password and print a SCRAM-SHA-256 verifier for the users file.
    Passwd(passwd::PasswdArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Check(args) => check::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Grants(args) => grants::run(args),
        Command::Passwd(args) => passwd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgward: {e:#}");
            ExitCode::from(2)
        }
    }
}
