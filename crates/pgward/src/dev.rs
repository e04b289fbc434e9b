//! `pgward dev`: the one-command sandbox.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port pgward listens on.
    #[arg(long, default_value_t = 6432)]
    port: u16,
    /// Port for the throwaway PostgreSQL (default: a free port).
    #[arg(long)]
    pg_port: Option<u16>,
    /// Keep the data directory on exit.
    #[arg(long)]
    keep: bool,
    /// Send traces to this OTLP endpoint.
    #[arg(long)]
    otlp_endpoint: Option<String>,
}

pub fn run(_args: DevArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("pgward dev: not wired yet")
}
