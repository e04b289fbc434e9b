//! relay-bench's command line.

use std::path::PathBuf;

use crate::pgbench::Workload;
use crate::BoxResult;

pub const USAGE: &str = "relay-bench [--seconds N] [--rounds N] [--clients 1,8,32,64] \
[--modes simple,extended,prepared] [--workloads select,tpcb] \
[--proxies pgward,pgward-otlp,pgbouncer,bare-relay(,bare-relay-per-core)] [--p99-clients N] [--p99-sampling R] \
[--connect-clients N] [--idle-sessions N] [--syscalls N] [--scale N] [--jobs N] [--warmup N] \
[--pgward PATH] [--pgbouncer PATH]";

pub const MODES: [&str; 3] = ["simple", "extended", "prepared"];
pub const PROXIES: [&str; 5] = [
    "pgward",
    "pgward-otlp",
    "pgbouncer",
    "bare-relay",
    "bare-relay-per-core",
];

pub struct Opts {
    pub seconds: u32,
    pub rounds: usize,
    pub clients: Vec<u32>,
    pub modes: Vec<String>,
    pub workloads: Vec<Workload>,
    /// Which proxies to measure besides direct (always measured: the ratios need it).
    pub proxies: Vec<String>,
    /// The client count whose runs log every transaction for p99 (0: none).
    pub p99_clients: u32,
    /// pgbench `--sampling-rate` for those logs.
    pub p99_sampling: f64,
    /// Clients of the `pgbench -C` connection-setup runs (0: none).
    pub connect_clients: u32,
    /// Idle TLS sessions opened per proxy for the memory reading (0: none).
    pub idle_sessions: usize,
    /// Clients of the select-only runs under `strace -c`, per mode and proxy (0: none).
    pub syscalls: u32,
    pub scale: u32,
    pub jobs: u32,
    pub warmup: u32,
    pub pgward: Option<PathBuf>,
    pub pgbouncer: Option<PathBuf>,
}

impl Opts {
    pub fn wants(&self, proxy: &str) -> bool {
        self.proxies.iter().any(|p| p == proxy)
    }
}

fn list<T, E: std::fmt::Display>(
    value: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> BoxResult<Vec<T>> {
    value
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| parse(v).map_err(|e| format!("{v}: {e}").into()))
        .collect()
}

pub fn parse() -> BoxResult<Opts> {
    let mut opts = Opts {
        seconds: 10,
        rounds: 3,
        clients: vec![1, 8, 32, 64],
        modes: MODES.map(String::from).to_vec(),
        workloads: vec![Workload::Select, Workload::TpcB],
        // The per-core bare relay is a second yardstick, run only when asked for.
        proxies: PROXIES[..4].iter().map(|p| (*p).to_owned()).collect(),
        p99_clients: 8,
        p99_sampling: 0.1,
        connect_clients: 8,
        idle_sessions: 1000,
        syscalls: 0,
        scale: 10,
        jobs: 2,
        warmup: 2,
        pgward: None,
        pgbouncer: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--seconds" => opts.seconds = value.parse()?,
            "--rounds" => opts.rounds = value.parse()?,
            "--clients" => opts.clients = list(&value, str::parse::<u32>)?,
            "--modes" => opts.modes = list(&value, |v| Ok::<_, String>(v.to_owned()))?,
            "--workloads" => {
                opts.workloads = list(&value, |v| {
                    Workload::parse(v).ok_or("unknown workload (select, tpcb)")
                })?;
            }
            "--proxies" => opts.proxies = list(&value, |v| Ok::<_, String>(v.to_owned()))?,
            "--p99-clients" => opts.p99_clients = value.parse()?,
            "--p99-sampling" => opts.p99_sampling = value.parse()?,
            "--connect-clients" => opts.connect_clients = value.parse()?,
            "--idle-sessions" => opts.idle_sessions = value.parse()?,
            "--syscalls" => opts.syscalls = value.parse()?,
            "--scale" => opts.scale = value.parse()?,
            "--jobs" => opts.jobs = value.parse()?,
            "--warmup" => opts.warmup = value.parse()?,
            "--pgward" => opts.pgward = Some(value.into()),
            "--pgbouncer" => opts.pgbouncer = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    if opts.rounds == 0 || opts.seconds == 0 || opts.jobs == 0 || opts.scale == 0 {
        return Err("--rounds, --seconds, --jobs and --scale must be positive".into());
    }
    if opts.clients.contains(&0) {
        return Err("a client count of 0 makes no benchmark".into());
    }
    if !(opts.p99_sampling > 0.0 && opts.p99_sampling <= 1.0) {
        return Err("--p99-sampling must be in (0, 1]".into());
    }
    for mode in &opts.modes {
        if !MODES.contains(&mode.as_str()) {
            return Err(format!("unknown pgbench mode {mode}").into());
        }
    }
    for proxy in &opts.proxies {
        if !PROXIES.contains(&proxy.as_str()) {
            return Err(format!("unknown proxy {proxy} (one of {})", PROXIES.join(", ")).into());
        }
    }
    Ok(opts)
}
