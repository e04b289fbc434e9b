//! The pgward binary: the command line (serve, dev, check, validate, grants, passwd).
//!
//! `anyhow` lives here only; the libraries have their own error types.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod dev;
mod passwd;
mod serve;

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
    /// Read a password and print a SCRAM-SHA-256 verifier for the users file.
    Passwd(passwd::PasswdArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Dev(args) => dev::run(args),
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
