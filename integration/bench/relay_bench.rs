//! The relay benchmark: in one run, a sandbox PostgreSQL (TLS, client-certificate auth),
//! `pgbench -i`, then pgbench select-only (`-S`) for each protocol mode and client count
//! against three targets, interleaved per round: PostgreSQL directly, pgward (the release
//! binary, a separate process) and the bare relay (`bare-relay`, this crate's yardstick).
//! TLS on every leg; direct also with a client certificate. Prints a markdown table of
//! median TPS, mean latency, each proxy's ratio to direct and its CPU per 10k statements.
//!
//! A benchmark, not a test: nothing in CI runs it. See `integration/bench/README.md`.

use std::error::Error;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use pgward_integration::{conninfo_pair, policies_dir, Cluster, ClusterOptions, BENCH_DATABASE};
use pgward_sandbox::{demo_logins, DevAuth, PgwardFiles};

type BoxResult<T> = Result<T, Box<dyn Error>>;

const BENCH_USER: &str = "pgbench_user";
/// The pgward demo login that maps to `pgbench_user` in `bench`.
const BENCH_LOGIN: &str = "bench";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "relay-bench [--seconds N] [--rounds N] [--clients 8,32] \
[--modes simple,extended,prepared] [--scale N] [--jobs N] [--warmup N] [--pgward PATH]";

struct Opts {
    seconds: u32,
    rounds: usize,
    clients: Vec<u32>,
    modes: Vec<String>,
    scale: u32,
    jobs: u32,
    warmup: u32,
    pgward: Option<PathBuf>,
}

fn parse_opts() -> BoxResult<Opts> {
    let mut opts = Opts {
        seconds: 10,
        rounds: 3,
        clients: vec![8],
        modes: ["simple", "extended", "prepared"]
            .map(String::from)
            .to_vec(),
        scale: 10,
        jobs: 2,
        warmup: 2,
        pgward: None,
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
            "--clients" => {
                opts.clients = value.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--modes" => opts.modes = value.split(',').map(String::from).collect(),
            "--scale" => opts.scale = value.parse()?,
            "--jobs" => opts.jobs = value.parse()?,
            "--warmup" => opts.warmup = value.parse()?,
            "--pgward" => opts.pgward = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    if opts.rounds == 0 || opts.seconds == 0 || opts.clients.is_empty() || opts.jobs == 0 {
        return Err("--rounds, --seconds, --jobs and --clients must be positive".into());
    }
    if opts.clients.contains(&0) {
        return Err("a client count of 0 makes no benchmark".into());
    }
    for mode in &opts.modes {
        if !["simple", "extended", "prepared"].contains(&mode.as_str()) {
            return Err(format!("unknown pgbench mode {mode}").into());
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("relay-bench: some pgbench runs failed (see the table)");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("relay-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A child process we started; killed (by its own handle) when dropped.
struct Spawned {
    child: Child,
    /// Held so the bare relay sees EOF on stdin (and exits) if we die.
    _stdin: Option<ChildStdin>,
}

impl Spawned {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Target {
    name: &'static str,
    conninfo: String,
    /// The proxy process whose CPU we account; `None` for direct.
    pid: Option<u32>,
}

/// One result per round.
type Runs = Vec<Result<Sample, String>>;
/// Indexed `[clients][mode][target]`.
type Grid = Vec<Vec<Vec<Runs>>>;

struct Sample {
    tps: f64,
    latency_ms: f64,
    statements: u64,
    cpu_ticks: Option<u64>,
}

fn run() -> BoxResult<bool> {
    let opts = parse_opts()?;
    let exe_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or("current_exe has no directory")?;
    let pgward_bin = opts
        .pgward
        .clone()
        .unwrap_or_else(|| exe_dir.join("pgward"));
    let relay_bin = exe_dir.join("bare-relay");
    for bin in [&pgward_bin, &relay_bin] {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: cargo build --release -p pgward -p pgward-integration \
                 (or pass --pgward PATH)",
                bin.display()
            )
            .into());
        }
    }
    let (clk_tck, clk_note) = clock_ticks();
    let max_clients = opts.clients.iter().copied().max().unwrap_or(1);

    progress("starting the sandbox PostgreSQL");
    let cluster = Cluster::start(ClusterOptions::default())?;
    let max_conn: u32 = cluster.psql_admin("SHOW max_connections")?.trim().parse()?;
    // pgward also holds a catalog connection; leave room for it and for psql checks.
    if max_clients + 10 > max_conn {
        return Err(
            format!("max_connections is {max_conn}: too few for {max_clients} clients").into(),
        );
    }
    let server_version = cluster.psql_admin("SHOW server_version")?;
    cluster.load_demo()?;
    let pgbench = cluster.binaries().program("pgbench");
    let psql = cluster.binaries().program("psql");

    let user_cert = cluster.client_cert(BENCH_USER)?;
    let direct = format!(
        "host={} port={} {} {} sslmode=require gssencmode=disable {} {}",
        cluster.host(),
        cluster.port(),
        conninfo_pair("dbname", BENCH_DATABASE),
        conninfo_pair("user", BENCH_USER),
        conninfo_pair("sslcert", &user_cert.cert_path),
        conninfo_pair("sslkey", &user_cert.key_path),
    );
    progress(&format!("pgbench -i -s {} (direct)", opts.scale));
    let init = Command::new(&pgbench)
        .args(["-i", "-q", "-s", &opts.scale.to_string(), &direct])
        .output()?;
    if !init.status.success() {
        return Err(format!("pgbench -i: {}", String::from_utf8_lossy(&init.stderr)).into());
    }

    let dir = tempfile::tempdir()?;
    progress("starting pgward");
    let (pgward, pgward_info) = start_pgward(&cluster, &pgward_bin, dir.path(), &psql, None)?;
    // The same pgward exporting every span over OTLP to an in-process collector.
    let otlp_runtime = tokio::runtime::Runtime::new()?;
    let receiver = otlp_runtime.block_on(pgward_integration::otlp::start_otlp_receiver());
    let otlp_dir = tempfile::tempdir()?;
    progress("starting pgward with OTLP export");
    let (pgward_otlp, pgward_otlp_info) = start_pgward(
        &cluster,
        &pgward_bin,
        otlp_dir.path(),
        &psql,
        Some(receiver.endpoint()),
    )?;
    progress("starting the bare relay");
    let (relay, relay_info) = start_bare_relay(&cluster, &relay_bin, dir.path(), &psql)?;
    if which("pgbouncer") {
        progress("pgbouncer is installed, but this benchmark does not drive it yet: skipped");
    }
    let targets = [
        Target {
            name: "direct",
            conninfo: direct,
            pid: None,
        },
        Target {
            name: "pgward",
            conninfo: pgward_info,
            pid: Some(pgward.pid()),
        },
        Target {
            name: "pgward + OTLP",
            conninfo: pgward_otlp_info,
            pid: Some(pgward_otlp.pid()),
        },
        Target {
            name: "bare relay",
            conninfo: relay_info,
            pid: Some(relay.pid()),
        },
    ];

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
            warm.run(t, "prepared", max_clients)
                .map_err(|e| format!("warm-up through {}: {e}", t.name))?;
        }
    }

    let mut samples: Grid = opts
        .clients
        .iter()
        .map(|_| {
            opts.modes
                .iter()
                .map(|_| targets.iter().map(|_| Vec::new()).collect())
                .collect()
        })
        .collect();
    let started = Instant::now();
    let load_before = loadavg();
    for round in 0..opts.rounds {
        for (ci, &clients) in opts.clients.iter().enumerate() {
            for (mi, mode) in opts.modes.iter().enumerate() {
                // Rotate the order each round so no target always runs first.
                for k in 0..targets.len() {
                    let ti = (k + round) % targets.len();
                    let t = &targets[ti];
                    progress(&format!(
                        "round {}/{} clients {clients} -M {mode}: {}",
                        round + 1,
                        opts.rounds,
                        t.name
                    ));
                    let result = bench.run(t, mode, clients);
                    if let Err(err) = &result {
                        progress(&format!("  failed: {err}"));
                    }
                    samples[ci][mi][ti].push(result);
                }
            }
        }
    }
    let mut pgward = pgward;
    let mut relay = relay;
    if pgward.exited() || relay.exited() {
        return Err("a proxy exited during the benchmark (logs were in its temp dir)".into());
    }

    let mut out = String::new();
    let ok = report(
        &mut out,
        &opts,
        &targets,
        &samples,
        &Env {
            server_version: &server_version,
            clk_tck,
            clk_note,
            elapsed: started.elapsed(),
            load: [load_before, loadavg()],
            pgward: &pgward_bin,
        },
    );
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ok)
}

#[derive(Clone, Copy)]
struct Bench<'a> {
    pgbench: &'a Path,
    seconds: u32,
    jobs: u32,
}

impl Bench<'_> {
    /// One pgbench -S run against `target`, with the target proxy's CPU ticks over it.
    fn run(&self, target: &Target, mode: &str, clients: u32) -> Result<Sample, String> {
        let jobs = self.jobs.min(clients);
        let before = target.pid.map(cpu_ticks).transpose()?;
        let out = Command::new(self.pgbench)
            .args(["-n", "-S", "-M", mode, "-c", &clients.to_string()])
            .args(["-j", &jobs.to_string(), "-T", &self.seconds.to_string()])
            .arg(&target.conninfo)
            .output()
            .map_err(|e| format!("running pgbench: {e}"))?;
        let after = target.pid.map(cpu_ticks).transpose()?;
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
        let statements = field(&stdout, "number of transactions actually processed:")
            .ok_or("no transaction count in output")?;
        Ok(Sample {
            tps,
            latency_ms,
            // -S runs one statement per transaction.
            statements: statements as u64,
            cpu_ticks: match (before, after) {
                (Some(b), Some(a)) => Some(a.saturating_sub(b)),
                _ => None,
            },
        })
    }
}

/// Starts the release pgward on a free port with the sandbox's demo logins; returns it and
/// a conninfo for the `bench` login (password in the conninfo).
fn start_pgward(
    cluster: &Cluster,
    bin: &Path,
    dir: &Path,
    psql: &Path,
    otlp_endpoint: Option<String>,
) -> BoxResult<(Spawned, String)> {
    let port = free_port()?;
    let logins = demo_logins();
    let files = PgwardFiles {
        listen: ([127, 0, 0, 1], port).into(),
        policies: policies_dir(),
        tls_required: true,
        otlp_endpoint,
        limits: Vec::new(),
        upstream_password: None,
        extra: Vec::new(),
        users_extra: Vec::new(),
    };
    let config = cluster.write_pgward_files(dir, &files, &logins)?;
    let login = logins
        .iter()
        .find(|l| l.name == BENCH_LOGIN)
        .ok_or("no demo login `bench`")?;
    let DevAuth::Password(password) = &login.auth else {
        return Err("the demo login `bench` has no password".into());
    };
    let log_path = dir.join("pgward.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(bin)
        .args(["serve", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let mut spawned = Spawned {
        child,
        _stdin: None,
    };
    let info = format!(
        "host=127.0.0.1 port={port} {} {} {} sslmode=require gssencmode=disable",
        conninfo_pair("dbname", &login.database),
        conninfo_pair("user", BENCH_LOGIN),
        conninfo_pair("password", password),
    );
    wait_ready(&mut spawned, psql, &info, &log_path)?;
    Ok((spawned, info))
}

/// Starts `bare-relay` on a free port (it prints the address it bound); returns it and a
/// conninfo logging in as `pgbench_user` (upstream accepts the relay's certificate for it).
fn start_bare_relay(
    cluster: &Cluster,
    bin: &Path,
    dir: &Path,
    psql: &Path,
) -> BoxResult<(Spawned, String)> {
    let server = cluster.proxy_server_cert();
    let client = cluster.proxy_client_cert();
    let log_path = dir.join("bare-relay.log");
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(format!("{}:{}", cluster.host(), cluster.port()))
        .arg("--cert")
        .arg(&server.cert_path)
        .arg("--key")
        .arg(&server.key_path)
        .arg("--client-cert")
        .arg(&client.cert_path)
        .arg("--client-key")
        .arg(&client.key_path)
        .arg("--ca")
        .arg(cluster.ca_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let mut spawned = Spawned {
        child,
        _stdin: stdin,
    };
    let mut line = String::new();
    if let Some(stdout) = stdout {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .ok_or_else(|| format!("bare-relay did not start: {}", read_tail(&log_path)))?;
    let port = addr.rsplit(':').next().unwrap_or_default();
    let info = format!(
        "host=127.0.0.1 port={port} {} {} sslmode=require gssencmode=disable",
        conninfo_pair("dbname", BENCH_DATABASE),
        conninfo_pair("user", BENCH_USER),
    );
    wait_ready(&mut spawned, psql, &info, &log_path)?;
    Ok((spawned, info))
}

/// Waits until a `SELECT 1` through the proxy succeeds.
fn wait_ready(proc: &mut Spawned, psql: &Path, info: &str, log: &Path) -> BoxResult<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let out = Command::new(psql)
            .args(["-X", "-At", "-c", "SELECT 1", "-d", info])
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1" {
            return Ok(());
        }
        if proc.exited() || Instant::now() > deadline {
            return Err(format!(
                "proxy not ready: {} | log: {}",
                last_line(&String::from_utf8_lossy(&out.stderr)),
                read_tail(log)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Env<'a> {
    server_version: &'a str,
    clk_tck: u64,
    clk_note: &'static str,
    elapsed: Duration,
    /// /proc/loadavg before and after the measured rounds: other work on the machine shows.
    load: [String; 2],
    pgward: &'a Path,
}

/// Writes the markdown report; false if any run failed.
fn report(
    out: &mut String,
    opts: &Opts,
    targets: &[Target],
    samples: &Grid,
    env: &Env<'_>,
) -> bool {
    use std::fmt::Write as _;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let _ = writeln!(
        out,
        "pgbench -S (select-only), -T {} s, {} round(s), scale {}, -j {}; PostgreSQL {}; \
         {cores} core(s); CPU ticks {}/s ({}); {:.0} s measured; load average {} before, \
         {} after; pgward {}\n",
        opts.seconds,
        opts.rounds,
        opts.scale,
        opts.jobs,
        env.server_version,
        env.clk_tck,
        env.clk_note,
        env.elapsed.as_secs_f64(),
        env.load[0],
        env.load[1],
        env.pgward.display(),
    );
    let _ = writeln!(
        out,
        "| clients | mode | target | TPS (median) | × direct | latency avg ms (median) \
         | proxy CPU ms / 10k stmts (median) | TPS per round |"
    );
    let _ = writeln!(out, "|---:|---|---|---:|---:|---:|---:|---|");
    let mut all_ok = true;
    for (ci, clients) in opts.clients.iter().enumerate() {
        for (mi, mode) in opts.modes.iter().enumerate() {
            let direct_tps = median(ok_values(&samples[ci][mi][0], |s| s.tps));
            for (ti, target) in targets.iter().enumerate() {
                let runs = &samples[ci][mi][ti];
                let errors = runs.iter().filter(|r| r.is_err()).count();
                all_ok &= errors == 0;
                let tps = median(ok_values(runs, |s| s.tps));
                let latency = median(ok_values(runs, |s| s.latency_ms));
                let cpu = median(ok_values(runs, |s| {
                    s.cpu_ticks.map_or(f64::NAN, |t| {
                        let ms = t as f64 * 1000.0 / env.clk_tck as f64;
                        ms * 10_000.0 / s.statements.max(1) as f64
                    })
                }));
                let ratio = match (tps, direct_tps) {
                    (Some(t), Some(d)) if ti > 0 && d > 0.0 => format!("{:.2}", t / d),
                    _ if ti == 0 => "1.00".to_owned(),
                    _ => "—".to_owned(),
                };
                let per_round: Vec<String> = runs
                    .iter()
                    .map(|r| match r {
                        Ok(s) => format!("{:.0}", s.tps),
                        Err(_) => "error".to_owned(),
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "| {clients} | {mode} | {} | {} | {ratio} | {} | {} | {} |",
                    target.name,
                    fmt_opt(tps, 0),
                    fmt_opt(latency, 3),
                    fmt_opt(cpu.filter(|c| !c.is_nan()), 0),
                    per_round.join(" / "),
                );
            }
        }
    }
    let mut first_error = true;
    for (ci, clients) in opts.clients.iter().enumerate() {
        for (mi, mode) in opts.modes.iter().enumerate() {
            for (ti, target) in targets.iter().enumerate() {
                for (round, r) in samples[ci][mi][ti].iter().enumerate() {
                    if let Err(err) = r {
                        if first_error {
                            let _ = writeln!(out, "\nFailed runs:");
                            first_error = false;
                        }
                        let _ = writeln!(
                            out,
                            "- round {} clients {clients} -M {mode} {}: {err}",
                            round + 1,
                            target.name
                        );
                    }
                }
            }
        }
    }
    all_ok
}

fn ok_values(runs: &[Result<Sample, String>], f: impl Fn(&Sample) -> f64) -> Vec<f64> {
    runs.iter().filter_map(|r| r.as_ref().ok()).map(f).collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The number after `label` on the first line containing it (pgbench's summary lines).
fn field(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    let rest = line.trim_start().strip_prefix(label)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat).
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime 15.
    let num = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("no field {} in /proc/{pid}/stat", i + 3))
    };
    Ok(num(11)? + num(12)?)
}

fn clock_ticks() -> (u64, &'static str) {
    let measured = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
    match measured {
        Some(t) if t > 0 => (t, "from getconf CLK_TCK"),
        _ => (100, "getconf failed: assumed 100"),
    }
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".to_owned(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn free_port() -> BoxResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn read_tail(path: &Path) -> String {
    last_line(&std::fs::read_to_string(path).unwrap_or_default())
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
