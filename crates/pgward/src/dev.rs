//! `pgward dev`: the one-command sandbox (like `vault server -dev`). A throwaway
//! PostgreSQL with TLS and client-certificate auth only, a dev CA, the demo schema and
//! logins, and pgward in front of it; Ctrl-C removes everything (unless `--keep`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use pgward_sandbox::{conninfo_pair, demo_logins, Cluster, ClusterOptions, DevAuth, PgwardFiles};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port pgward listens on (127.0.0.1).
    #[arg(long, default_value_t = 6432)]
    port: u16,
    /// Port for the throwaway PostgreSQL (default: a free port).
    #[arg(long)]
    pg_port: Option<u16>,
    /// Keep the data directory on exit.
    #[arg(long)]
    keep: bool,
    /// Send traces to this OTLP endpoint (e.g. http://127.0.0.1:4317).
    #[arg(long)]
    otlp_endpoint: Option<String>,
    /// Policy directory (default: ./policies, else the one in the source tree).
    #[arg(long)]
    policies: Option<PathBuf>,
}

fn policies_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p);
    }
    let candidates = [
        PathBuf::from("policies"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies")),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_dir())
        .map(|p| p.canonicalize().unwrap_or(p))
        .context("no policies/ directory found; pass --policies DIR")
}

pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let policies = policies_dir(args.policies)?;
    eprintln!("pgward dev: starting a throwaway PostgreSQL (TLS, client-certificate auth only)...");
    let cluster = match Cluster::start(ClusterOptions {
        port: args.pg_port,
        keep: args.keep,
        base_dir: None,
        max_connections: None,
    }) {
        Ok(c) => c,
        Err(e) => {
            // One clear line, e.g. how to install the server binaries.
            eprintln!("pgward dev: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    cluster.load_demo().context("loading the demo schema")?;

    let dir = cluster.root_dir().join("pgward");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let logins = demo_logins();
    let files = PgwardFiles {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        policies,
        tls_required: true,
        otlp_endpoint: args.otlp_endpoint,
        limits: Vec::new(),
        upstream_password: None,
        extra: Vec::new(),
        users_extra: Vec::new(),
    };
    let config_path = cluster.write_pgward_files(&dir, &files, &logins)?;
    let config = pgward_proxy::Config::load(&config_path)?;
    let telemetry = crate::serve::install_telemetry(&config, pgward_telemetry::LogFormat::Text)?;

    println!();
    println!(
        "pgward dev is ready: pgward on 127.0.0.1:{}, PostgreSQL on {}:{} (TLS + cert auth only).",
        args.port,
        cluster.host(),
        cluster.port()
    );
    println!("config: {}", config_path.display());
    println!("Connect as each demo login (role in brackets):");
    for login in &logins {
        let mut info = format!(
            "host=localhost port={} {} {} sslmode=verify-full {}",
            args.port,
            conninfo_pair("user", &login.name),
            conninfo_pair("dbname", &login.database),
            conninfo_pair("sslrootcert", cluster.ca_path()),
        );
        let env = match &login.auth {
            DevAuth::Password(pw) => format!("PGPASSWORD={pw} "),
            DevAuth::Cert => {
                let cert = cluster.client_cert(&login.name)?;
                info.push(' ');
                info.push_str(&conninfo_pair("sslcert", &cert.cert_path));
                info.push(' ');
                info.push_str(&conninfo_pair("sslkey", &cert.key_path));
                String::new()
            }
        };
        println!("  [{}] {env}psql \"{info}\"", login.role);
    }
    println!(
        "Press Ctrl-C to stop and remove everything{}.",
        if args.keep { " (data dir kept)" } else { "" }
    );
    println!();

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let served = runtime.block_on(crate::serve::serve(config));
    telemetry.shutdown();
    drop(cluster);
    served?;
    Ok(ExitCode::SUCCESS)
}
