//! The benchmark's targets and the processes behind them: PostgreSQL directly, pgward (the
//! release binary), the bare relay and PgBouncer (`pgbouncer.rs`), each started as a separate
//! process on a free loopback port and killed, by its own handle, when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use pgward_integration::{conninfo_pair, policies_dir, Cluster, BENCH_DATABASE};
use pgward_sandbox::{demo_logins, DevAuth, PgwardFiles};

use crate::{last_line, BoxResult};

pub const BENCH_USER: &str = "pgbench_user";
/// The pgward demo login that maps to `pgbench_user` in `bench`.
pub const BENCH_LOGIN: &str = "bench";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A child process we started; killed (by its own handle) when dropped.
pub struct Spawned {
    child: Child,
    /// Held so the bare relay sees EOF on stdin (and exits) if we die.
    _stdin: Option<ChildStdin>,
}

impl Spawned {
    pub fn new(child: Child) -> Self {
        Self {
            child,
            _stdin: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a client logs in to a target (the idle-session client needs it unflattened).
#[derive(Clone)]
pub struct Login {
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: Option<String>,
}

pub struct Target {
    pub name: &'static str,
    pub conninfo: String,
    pub login: Login,
    /// The proxy process (its CPU is accounted); `None` for direct.
    pub process: Option<Spawned>,
}

impl Target {
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Spawned::pid)
    }

    /// True if the proxy process is gone.
    pub fn exited(&mut self) -> bool {
        self.process.as_mut().is_some_and(Spawned::exited)
    }
}

/// PostgreSQL itself, as `pgbench_user` with that user's client certificate.
pub fn direct(cluster: &Cluster) -> BoxResult<Target> {
    let user_cert = cluster.client_cert(BENCH_USER)?;
    let conninfo = format!(
        "host={} port={} {} {} sslmode=require gssencmode=disable {} {}",
        cluster.host(),
        cluster.port(),
        conninfo_pair("dbname", BENCH_DATABASE),
        conninfo_pair("user", BENCH_USER),
        conninfo_pair("sslcert", &user_cert.cert_path),
        conninfo_pair("sslkey", &user_cert.key_path),
    );
    Ok(Target {
        name: "direct",
        conninfo,
        login: Login {
            port: cluster.port(),
            user: BENCH_USER.to_owned(),
            database: BENCH_DATABASE.to_owned(),
            password: None,
        },
        process: None,
    })
}

/// Starts the release pgward on a free port with the sandbox's demo logins; the target logs
/// in as the `bench` login with its SCRAM password (in the conninfo).
pub fn start_pgward(
    name: &'static str,
    cluster: &Cluster,
    bin: &Path,
    dir: &Path,
    psql: &Path,
    otlp_endpoint: Option<String>,
) -> BoxResult<Target> {
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
    let mut spawned = Spawned::new(child);
    let conninfo = format!(
        "host=127.0.0.1 port={port} {} {} {} sslmode=require gssencmode=disable",
        conninfo_pair("dbname", &login.database),
        conninfo_pair("user", BENCH_LOGIN),
        conninfo_pair("password", password),
    );
    wait_ready(&mut spawned, psql, &conninfo, &log_path)?;
    Ok(Target {
        name,
        conninfo,
        login: Login {
            port,
            user: BENCH_LOGIN.to_owned(),
            database: login.database.clone(),
            password: Some(password.clone()),
        },
        process: Some(spawned),
    })
}

/// Starts `bare-relay` on a free port (it prints the address it bound); the target logs in
/// as `pgbench_user` (upstream accepts the relay's certificate for it).
pub fn start_bare_relay(
    cluster: &Cluster,
    bin: &Path,
    dir: &Path,
    psql: &Path,
    per_core: bool,
) -> BoxResult<Target> {
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
        .args(if per_core {
            vec!["--threads".to_owned(), cores().to_string()]
        } else {
            Vec::new()
        })
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
    let port: u16 = addr.rsplit(':').next().unwrap_or_default().parse()?;
    let conninfo = format!(
        "host=127.0.0.1 port={port} {} {} sslmode=require gssencmode=disable",
        conninfo_pair("dbname", BENCH_DATABASE),
        conninfo_pair("user", BENCH_USER),
    );
    wait_ready(&mut spawned, psql, &conninfo, &log_path)?;
    Ok(Target {
        name: if per_core {
            "bare relay, thread per core"
        } else {
            "bare relay"
        },
        conninfo,
        login: Login {
            port,
            user: BENCH_USER.to_owned(),
            database: BENCH_DATABASE.to_owned(),
            password: None,
        },
        process: Some(spawned),
    })
}

/// The machine's cores: the per-core bare relay's thread count.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Waits until a `SELECT 1` through the proxy succeeds.
pub fn wait_ready(proc: &mut Spawned, psql: &Path, info: &str, log: &Path) -> BoxResult<()> {
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

pub fn free_port() -> BoxResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn read_tail(path: &Path) -> String {
    last_line(&std::fs::read_to_string(path).unwrap_or_default())
}
