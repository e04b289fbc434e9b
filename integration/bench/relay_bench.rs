//! The relay benchmark: in one run, a sandbox PostgreSQL (TLS, client-certificate auth),
//! `pgbench -i`, then pgbench select-only (`-S`) and TPC-B-like for each protocol mode and
//! client count against every target, interleaved per round: PostgreSQL directly, pgward
//! (the release binary, a separate process; also with OTLP export), PgBouncer in session
//! mode (when installed) and the bare relay (`bare-relay`, this crate's yardstick). Then the
//! p99 latency at one client count from pgbench's per-transaction log, the connection setup
//! rate (`pgbench -C`), the system calls per statement of each proxy (`strace -c`, when
//! asked for), and the memory per idle TLS session of each proxy. TLS on every leg;
//! direct also with a client certificate. Prints markdown tables of medians, each proxy's
//! ratio to direct, and its CPU per 10k statements.
//!
//! A benchmark, not a test: nothing in CI runs it. See `integration/bench/README.md`.

mod idle;
mod opts;
mod pgbench;
mod pgbouncer;
mod report;
mod sys;
mod syscalls;
mod targets;

use std::error::Error;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use pgward_integration::{Cluster, ClusterOptions};

use crate::idle::IdleResult;
use crate::opts::Opts;
use crate::pgbench::{Bench, Run, Workload};
use crate::report::{Cell, Report, Runs};
use crate::targets::Target;

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Connections kept free for psql checks, pgward's catalog reader and the superuser's
/// reserved slots when sizing the runs against max_connections.
const CONNECTION_RESERVE: u32 = 12;
/// File descriptors asked for beyond the idle sessions' (pgbench, the proxies' own).
const FD_HEADROOM: u64 = 1024;
/// What a proxy needs besides 2 per idle session (client and upstream socket) when the
/// limit could not be raised that far.
const FD_SPARE: u64 = 128;
const BACKENDS_GONE_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("relay-bench: some measurements failed (see the tables)");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("relay-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The binaries relay-bench drives.
struct Programs {
    pgward: PathBuf,
    relay: PathBuf,
    pgbouncer: Option<(PathBuf, String)>,
}

fn programs(opts: &Opts, notes: &mut Vec<String>) -> BoxResult<Programs> {
    let exe_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or("current_exe has no directory")?;
    let pgward = opts
        .pgward
        .clone()
        .unwrap_or_else(|| exe_dir.join("pgward"));
    let relay = exe_dir.join("bare-relay");
    for bin in [&pgward, &relay] {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: cargo build --release -p pgward -p pgward-integration --bins \
                 (or pass --pgward PATH)",
                bin.display()
            )
            .into());
        }
    }
    let pgbouncer = if !opts.wants("pgbouncer") {
        None
    } else {
        let found = opts
            .pgbouncer
            .clone()
            .or_else(|| sys::find_program("pgbouncer"));
        if found.is_none() {
            let note = "pgbouncer not found (PATH, /usr/sbin): PgBouncer skipped";
            progress(note);
            notes.push(note.to_owned());
        }
        found.map(|bin| {
            let version = pgbouncer::version(&bin);
            (bin, version)
        })
    };
    Ok(Programs {
        pgward,
        relay,
        pgbouncer,
    })
}

fn run() -> BoxResult<bool> {
    let opts = opts::parse()?;
    let mut notes = Vec::new();
    let progs = programs(&opts, &mut notes)?;
    let (clk_tck, clk_note) = sys::clock_ticks();
    let max_clients = opts
        .clients
        .iter()
        .copied()
        .chain([opts.connect_clients, opts.syscalls, 1])
        .max()
        .unwrap_or(1);

    // Before any child starts, so that every child inherits it.
    let fd_need = opts.idle_sessions as u64 * 2 + u64::from(max_clients) * 4 + FD_HEADROOM;
    let fd_note = sys::raise_nofile(fd_need);
    progress(&fd_note);
    notes.push(format!("relay-bench: {fd_note}"));

    progress("starting the sandbox PostgreSQL");
    // Room for the idle-session step (one upstream session per proxy session) and for the
    // largest client count twice over (PgBouncer's pool stays open while others run).
    let wanted = u32::try_from(opts.idle_sessions).unwrap_or(u32::MAX);
    let max_connections = wanted
        .saturating_add(max_clients.saturating_mul(2))
        .saturating_add(CONNECTION_RESERVE + 50)
        .max(pgward_sandbox::DEFAULT_MAX_CONNECTIONS);
    let cluster = Cluster::start(ClusterOptions {
        max_connections: Some(max_connections),
        ..ClusterOptions::default()
    })?;
    let max_conn: u32 = cluster.psql_admin("SHOW max_connections")?.trim().parse()?;
    // A session-mode PgBouncer keeps its server connections pooled while the others run.
    let pooled = if progs.pgbouncer.is_some() {
        max_clients
    } else {
        0
    };
    if max_clients + pooled + CONNECTION_RESERVE > max_conn {
        return Err(format!(
            "max_connections is {max_conn}: too few for {max_clients} clients \
             (+ {pooled} pooled by PgBouncer + {CONNECTION_RESERVE} reserved)"
        )
        .into());
    }
    let server_version = cluster.psql_admin("SHOW server_version")?;
    cluster.load_demo()?;
    let pgbench = cluster.binaries().program("pgbench");
    let psql = cluster.binaries().program("psql");

    let direct = targets::direct(&cluster)?;
    progress(&format!("pgbench -i -s {} (direct)", opts.scale));
    let init = Command::new(&pgbench)
        .args(["-i", "-q", "-s", &opts.scale.to_string(), &direct.conninfo])
        .output()?;
    if !init.status.success() {
        return Err(format!("pgbench -i: {}", String::from_utf8_lossy(&init.stderr)).into());
    }

    // The OTLP collector pgward exports to, and the idle-session client, run here.
    let runtime = tokio::runtime::Runtime::new()?;
    let mut targets = vec![direct];
    let mut dirs = Vec::new();
    if opts.wants("pgward") {
        progress("starting pgward");
        let dir = tempfile::tempdir()?;
        targets.push(targets::start_pgward(
            "pgward",
            &cluster,
            &progs.pgward,
            dir.path(),
            &psql,
            None,
        )?);
        dirs.push(dir);
    }
    // Counts and drops what it receives: a collector elsewhere would cost this machine
    // nothing, so the sink must cost as little as possible.
    let sink = pgward_integration::otlp_sink::start_otlp_sink();
    if opts.wants("pgward-otlp") {
        progress("starting pgward with OTLP export");
        let dir = tempfile::tempdir()?;
        targets.push(targets::start_pgward(
            "pgward + OTLP",
            &cluster,
            &progs.pgward,
            dir.path(),
            &psql,
            Some(sink.endpoint()),
        )?);
        dirs.push(dir);
    }
    if let Some((bin, _)) = &progs.pgbouncer {
        progress("starting pgbouncer");
        let dir = tempfile::tempdir()?;
        targets.push(pgbouncer::start(
            &cluster,
            bin,
            dir.path(),
            &psql,
            max_clients,
        )?);
        dirs.push(dir);
    }
    for (proxy, per_core) in [("bare-relay", false), ("bare-relay-per-core", true)] {
        if opts.wants(proxy) {
            progress(&format!("starting {proxy}"));
            let dir = tempfile::tempdir()?;
            targets.push(targets::start_bare_relay(
                &cluster,
                &progs.relay,
                dir.path(),
                &psql,
                per_core,
            )?);
            dirs.push(dir);
        }
    }
    notes.push(inherited_limits(&targets));

    let bench = Bench {
        pgbench: &pgbench,
        seconds: opts.seconds,
        jobs: opts.jobs,
    };
    if opts.warmup > 0 {
        for t in &targets {
            progress(&format!("warm-up: {} for {} s", t.name, opts.warmup));
            let warm = Bench {
                seconds: opts.warmup,
                ..bench
            };
            let run = Run {
                workload: Workload::Select,
                mode: "prepared",
                clients: max_clients,
                connect: false,
                latency_log: None,
            };
            warm.run(t, &run)
                .map_err(|e| format!("warm-up through {}: {e}", t.name))?;
        }
    }

    if opts.p99_clients > 0 && !opts.clients.contains(&opts.p99_clients) {
        notes.push(format!(
            "p99: {} clients is not in --clients: no per-transaction logs",
            opts.p99_clients
        ));
    }
    let mut cells = Vec::new();
    for &workload in &opts.workloads {
        for &clients in &opts.clients {
            for mode in &opts.modes {
                cells.push(Cell {
                    workload,
                    clients,
                    mode: mode.clone(),
                    runs: targets.iter().map(|_| Vec::new()).collect(),
                });
            }
        }
    }
    let mut connect: Vec<Runs> = if opts.connect_clients > 0 {
        targets.iter().map(|_| Vec::new()).collect()
    } else {
        Vec::new()
    };
    let started = Instant::now();
    let load_before = sys::loadavg();
    for round in 0..opts.rounds {
        for cell in &mut cells {
            let run = Run {
                workload: cell.workload,
                mode: &cell.mode,
                clients: cell.clients,
                connect: false,
                latency_log: (cell.clients == opts.p99_clients).then_some(opts.p99_sampling),
            };
            let what = format!(
                "{} clients {} -M {}",
                cell.workload.name(),
                cell.clients,
                cell.mode
            );
            round_robin(
                &bench,
                &targets,
                &run,
                round,
                opts.rounds,
                &what,
                &mut cell.runs,
            );
        }
        if !connect.is_empty() {
            let run = Run {
                workload: Workload::Select,
                mode: "simple",
                clients: opts.connect_clients,
                connect: true,
                latency_log: None,
            };
            let what = format!("-C {} clients", opts.connect_clients);
            round_robin(
                &bench,
                &targets,
                &run,
                round,
                opts.rounds,
                &what,
                &mut connect,
            );
        }
    }
    let load_after = sys::loadavg();
    let elapsed = started.elapsed();
    for t in &mut targets {
        if t.exited() {
            return Err(format!("{} exited during the benchmark", t.name).into());
        }
    }
    // After the timed rounds (strace slows the proxy it traces) and the load reading.
    let syscalls = if opts.syscalls == 0 {
        Vec::new()
    } else if let Some(strace) = sys::find_program("strace") {
        syscalls::measure(&strace, &bench, &targets, &opts.modes, opts.syscalls)
    } else {
        let note = "strace not found (PATH, /usr/sbin): system calls per statement skipped";
        progress(note);
        notes.push(note.to_owned());
        Vec::new()
    };
    let names: Vec<&'static str> = targets.iter().map(|t| t.name).collect();
    // The idle-session readings use fresh processes: free these ones' upstream connections.
    targets.truncate(1);
    drop(dirs);

    let idle = if opts.idle_sessions > 0 {
        idle_sessions(&opts, &progs, &cluster, &psql, &runtime, &mut notes)?
    } else {
        Vec::new()
    };

    let mut out = String::new();
    let ok = Report {
        opts: &opts,
        targets: names,
        cells,
        connect,
        syscalls,
        idle,
        notes,
        server_version,
        pgbouncer_version: progs.pgbouncer.as_ref().map(|(_, v)| v.clone()),
        clk_tck,
        clk_note,
        elapsed,
        load: [load_before, load_after],
        pgward: progs.pgward.display().to_string(),
    }
    .write(&mut out);
    std::io::stdout().write_all(out.as_bytes())?;
    if opts.wants("pgward-otlp") {
        let (requests, spans) = sink.received();
        println!("\nOTLP sink: {spans} spans received in {requests} export requests");
    }
    drop(sink);
    Ok(ok)
}

/// Runs `run` once against every target, rotating which goes first each round so that slow
/// drifts of the machine hit all targets alike.
fn round_robin(
    bench: &Bench<'_>,
    targets: &[Target],
    run: &Run<'_>,
    round: usize,
    rounds: usize,
    what: &str,
    results: &mut [Runs],
) {
    for k in 0..targets.len() {
        let ti = (k + round) % targets.len();
        let t = &targets[ti];
        progress(&format!("round {}/{rounds} {what}: {}", round + 1, t.name));
        let result = bench.run(t, run);
        if let Err(err) = &result {
            progress(&format!("  failed: {err}"));
        }
        results[ti].push(result);
    }
}

/// The open-files limit each proxy process got from us, for the report.
fn inherited_limits(targets: &[Target]) -> String {
    let limits: Vec<String> = targets
        .iter()
        .filter_map(|t| {
            let (soft, hard) = sys::nofile_limit(t.pid()?)?;
            Some(format!("{} {soft} / {hard}", t.name))
        })
        .collect();
    format!(
        "open-files limit (soft / hard) inherited: {}",
        limits.join(", ")
    )
}

/// Client backends connected to the sandbox PostgreSQL (the counting psql included).
fn backends(cluster: &Cluster) -> BoxResult<u32> {
    Ok(cluster
        .psql_admin("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")?
        .trim()
        .parse()?)
}

/// Opens the idle sessions against a fresh process of each proxy in turn (pgward, the bare
/// relay, PgBouncer), each stopped before the next starts so that all get the same number
/// of upstream connections.
fn idle_sessions(
    opts: &Opts,
    progs: &Programs,
    cluster: &Cluster,
    psql: &Path,
    runtime: &tokio::runtime::Runtime,
    notes: &mut Vec<String>,
) -> BoxResult<Vec<(&'static str, Result<IdleResult, String>)>> {
    // Every proxy session holds an upstream one (PgBouncer's too: session mode, and each
    // idle session has run a query), so max_connections bounds the count.
    let deadline = Instant::now() + BACKENDS_GONE_TIMEOUT;
    let mut in_use = backends(cluster)?;
    while in_use > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        in_use = backends(cluster)?;
    }
    let max_conn: u32 = cluster.psql_admin("SHOW max_connections")?.trim().parse()?;
    let by_server = max_conn.saturating_sub(in_use + CONNECTION_RESERVE) as usize;
    let fds = sys::nofile_soft(std::process::id()).unwrap_or(1024);
    let by_fds = usize::try_from(fds.saturating_sub(FD_SPARE) / 2).unwrap_or(usize::MAX);
    let sessions = opts.idle_sessions.min(by_server).min(by_fds);
    if sessions < opts.idle_sessions {
        let note = format!(
            "idle sessions capped at {sessions} (asked {}): the sandbox's max_connections is \
             {max_conn} ({in_use} in use, {CONNECTION_RESERVE} reserved), open-files limit {fds}",
            opts.idle_sessions
        );
        progress(&note);
        notes.push(note);
    }
    if sessions == 0 {
        return Ok(Vec::new());
    }
    let mut results = Vec::new();
    for proxy in ["pgward", "bare-relay", "pgbouncer"] {
        if !opts.wants(proxy) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let started = match proxy {
            "pgward" => {
                targets::start_pgward("pgward", cluster, &progs.pgward, dir.path(), psql, None)
            }
            "bare-relay" => {
                targets::start_bare_relay(cluster, &progs.relay, dir.path(), psql, false)
            }
            _ => match &progs.pgbouncer {
                Some((bin, _)) => {
                    let pool = u32::try_from(sessions).unwrap_or(u32::MAX);
                    pgbouncer::start(cluster, bin, dir.path(), psql, pool)
                }
                None => continue,
            },
        };
        let target = started?;
        progress(&format!(
            "idle sessions: {sessions} to a fresh {}",
            target.name
        ));
        let result = idle::measure(runtime, &target, sessions, cluster.ca_path());
        if let Err(err) = &result {
            progress(&format!("  failed: {err}"));
        }
        results.push((target.name, result));
        drop(target);
        // Wait for the upstream sessions to go before the next proxy needs them.
        let deadline = Instant::now() + BACKENDS_GONE_TIMEOUT;
        while backends(cluster)? > in_use + 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(results)
}

/// The number after `label` on the first line containing it (pgbench's summary lines).
fn field(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    let rest = line.trim_start().strip_prefix(label)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .to_owned()
}

fn progress(msg: &str) {
    eprintln!("relay-bench: {msg}");
}
