//! One pgbench run against one target: the command line, the proxy's CPU ticks around it,
//! the summary pgbench prints, and the latency percentiles from its per-transaction log.

use std::path::Path;
use std::process::Command;

use crate::sys::{cpu_ticks, CpuTicks};
use crate::targets::Target;
use crate::{field, last_line};

/// A pgbench built-in script.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `-S`: one `SELECT abalance ... WHERE aid = :aid` per transaction.
    Select,
    /// pgbench's default TPC-B-like script: BEGIN, three UPDATEs, a SELECT, an INSERT, END.
    TpcB,
}

impl Workload {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "select" => Some(Self::Select),
            "tpcb" => Some(Self::TpcB),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::TpcB => "tpcb",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Self::Select => &["-S"],
            Self::TpcB => &[],
        }
    }

    /// Statements each transaction of the built-in script sends.
    pub fn statements_per_transaction(self) -> u64 {
        match self {
            Self::Select => 1,
            Self::TpcB => 7,
        }
    }
}

/// What one pgbench invocation does.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub workload: Workload,
    pub mode: &'a str,
    pub clients: u32,
    /// `-C`: a new connection for every transaction.
    pub connect: bool,
    /// `-l --sampling-rate R`: per-transaction log, for the latency percentiles.
    pub latency_log: Option<f64>,
}

/// Latency percentiles from a per-transaction log, in µs.
#[derive(Clone, Copy)]
pub struct Percentiles {
    pub p50_us: f64,
    pub p99_us: f64,
    pub samples: usize,
}

pub struct Sample {
    pub tps: f64,
    pub latency_ms: f64,
    pub transactions: u64,
    pub statements: u64,
    /// The target proxy's CPU over the run (none for direct).
    pub cpu: Option<CpuTicks>,
    /// `-C` only: pgbench's average connection time.
    pub connection_ms: Option<f64>,
    pub percentiles: Option<Percentiles>,
}

#[derive(Clone, Copy)]
pub struct Bench<'a> {
    pub pgbench: &'a Path,
    pub seconds: u32,
    pub jobs: u32,
}

impl Bench<'_> {
    /// One pgbench run against `target`, with the target proxy's CPU ticks over it.
    pub fn run(&self, target: &Target, run: &Run<'_>) -> Result<Sample, String> {
        let jobs = self.jobs.min(run.clients);
        let log_dir = match run.latency_log {
            Some(_) => Some(tempfile::tempdir().map_err(|e| format!("log temp dir: {e}"))?),
            None => None,
        };
        let mut cmd = Command::new(self.pgbench);
        cmd.arg("-n")
            .args(run.workload.args())
            .args(["-M", run.mode, "-c", &run.clients.to_string()])
            .args(["-j", &jobs.to_string(), "-T", &self.seconds.to_string()]);
        if run.connect {
            cmd.arg("-C");
        }
        if let (Some(rate), Some(dir)) = (run.latency_log, &log_dir) {
            cmd.arg("-l")
                .arg(format!("--log-prefix={}", dir.path().join("tx").display()))
                .arg(format!("--sampling-rate={rate}"));
        }
        cmd.arg(&target.conninfo);
        let pid = target.pid();
        let before = pid.map(cpu_ticks).transpose()?;
        let out = cmd.output().map_err(|e| format!("running pgbench: {e}"))?;
        let after = pid.map(cpu_ticks).transpose()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "pgbench exited with {}: {}",
                out.status,
                last_line(&String::from_utf8_lossy(&out.stderr))
            ));
        }
        let failed = field(&stdout, "number of failed transactions:").unwrap_or(0.0);
        if failed > 0.0 {
            return Err(format!("{failed} failed transactions"));
        }
        let tps = field(&stdout, "tps =").ok_or("no tps in pgbench output")?;
        let latency_ms = field(&stdout, "latency average =").ok_or("no latency in output")?;
        let transactions = field(&stdout, "number of transactions actually processed:")
            .ok_or("no transaction count in output")? as u64;
        let percentiles = match &log_dir {
            Some(dir) => Some(percentiles(dir.path())?),
            None => None,
        };
        Ok(Sample {
            tps,
            latency_ms,
            transactions,
            statements: transactions * run.workload.statements_per_transaction(),
            cpu: match (before, after) {
                (Some(b), Some(a)) => Some(a.since(b)),
                _ => None,
            },
            connection_ms: field(&stdout, "average connection time ="),
            percentiles,
        })
    }
}

/// p50 and p99 over every file of a per-transaction log directory (one file per pgbench
/// thread). Each line: `client_id transaction_no time script_no time_epoch time_us`, where
/// `time` is the transaction's latency in µs (or `skipped`/`failed`, which are not counted).
fn percentiles(dir: &Path) -> Result<Percentiles, String> {
    let mut latencies: Vec<u64> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading the log dir: {e}"))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("reading the log dir: {e}"))?
            .path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        latencies.extend(
            text.lines()
                .filter_map(|line| line.split_whitespace().nth(2)?.parse::<u64>().ok()),
        );
    }
    if latencies.is_empty() {
        return Err("the per-transaction log is empty".to_owned());
    }
    latencies.sort_unstable();
    Ok(Percentiles {
        p50_us: nearest_rank(&latencies, 0.50),
        p99_us: nearest_rank(&latencies, 0.99),
        samples: latencies.len(),
    })
}

/// The nearest-rank percentile of sorted, non-empty values.
fn nearest_rank(sorted: &[u64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or_default() as f64
}
