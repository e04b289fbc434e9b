//! PgBouncer as a benchmark target, set up as close to pgward's bench setup as PgBouncer
//! allows: session pooling, TLS required from clients (the sandbox's proxy server
//! certificate), SCRAM-SHA-256 for the client login `bench` against a verifier in its
//! auth_file (pgward keeps a SCRAM verifier for the same login), and mutual TLS upstream
//! (verify-full against the sandbox CA, client certificate CN `pgbench_user`, which the
//! sandbox's `cert` auth accepts) with the server user forced to `pgbench_user`.
//!
//! PgBouncer refuses to run as root: when we are root it runs as the `postgres` OS user
//! (set on the child by std's `Command::uid`/`gid`, so its pid is PgBouncer's own), from a
//! directory it owns holding copies of the keys it must read. It never listens anywhere
//! but 127.0.0.1 and has no Unix socket.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgward_integration::{conninfo_pair, Cluster, BENCH_DATABASE};

use crate::sys;
use crate::targets::{free_port, wait_ready, Login, Spawned, Target, BENCH_LOGIN, BENCH_USER};
use crate::BoxResult;

/// `pgbouncer --version`'s first line.
pub fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "PgBouncer (version unknown)".to_owned())
}

/// Starts PgBouncer in `dir` (created fresh by the caller; we chown it when we are root)
/// with a pool of `pool_size` server connections.
pub fn start(
    cluster: &Cluster,
    bin: &Path,
    dir: &Path,
    psql: &Path,
    pool_size: u32,
) -> BoxResult<Target> {
    let run_as = if sys::euid() == Some(0) {
        Some(sys::user_ids("postgres").ok_or("running as root and there is no postgres user")?)
    } else {
        None
    };
    let own = |path: &Path, mode: u32| -> BoxResult<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    };
    own(dir, 0o700)?;
    let copy = |from: &Path, name: &str, mode: u32| -> BoxResult<PathBuf> {
        let to = dir.join(name);
        std::fs::copy(from, &to)?;
        own(&to, mode)?;
        Ok(to)
    };
    let server = cluster.proxy_server_cert();
    let client = cluster.client_cert(BENCH_USER)?;
    let client_tls_cert = copy(&server.cert_path, "client-side.crt", 0o644)?;
    let client_tls_key = copy(&server.key_path, "client-side.key", 0o600)?;
    let server_tls_cert = copy(&client.cert_path, "server-side.crt", 0o644)?;
    let server_tls_key = copy(&client.key_path, "server-side.key", 0o600)?;
    let ca = copy(cluster.ca_path(), "ca.crt", 0o644)?;

    let password = random_password()?;
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let auth_file = dir.join("userlist.txt");
    std::fs::write(&auth_file, format!("\"{BENCH_LOGIN}\" \"{verifier}\"\n"))?;
    own(&auth_file, 0o600)?;

    let port = free_port()?;
    let mut ini = String::new();
    let _ = writeln!(ini, "[databases]");
    let _ = writeln!(
        ini,
        "{BENCH_DATABASE} = host={} port={} dbname={BENCH_DATABASE} user={BENCH_USER}",
        cluster.host(),
        cluster.port()
    );
    let _ = writeln!(ini, "\n[pgbouncer]");
    for (key, value) in [
        ("listen_addr", "127.0.0.1".to_owned()),
        ("listen_port", port.to_string()),
        ("unix_socket_dir", String::new()),
        ("pool_mode", "session".to_owned()),
        ("max_client_conn", (pool_size + 100).to_string()),
        ("default_pool_size", pool_size.to_string()),
        ("auth_type", "scram-sha-256".to_owned()),
        ("auth_file", path_str(&auth_file)?),
        ("client_tls_sslmode", "require".to_owned()),
        ("client_tls_cert_file", path_str(&client_tls_cert)?),
        ("client_tls_key_file", path_str(&client_tls_key)?),
        ("server_tls_sslmode", "verify-full".to_owned()),
        ("server_tls_ca_file", path_str(&ca)?),
        ("server_tls_cert_file", path_str(&server_tls_cert)?),
        ("server_tls_key_file", path_str(&server_tls_key)?),
        // Logging stays at PgBouncer's defaults (a line per login and logout), as pgward's
        // stays at its own (a line per login).
    ] {
        let _ = writeln!(ini, "{key} = {value}");
    }
    let ini_path = dir.join("pgbouncer.ini");
    std::fs::write(&ini_path, ini)?;
    own(&ini_path, 0o600)?;

    let log_path = dir.join("pgbouncer.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new(bin);
    cmd.arg(&ini_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some((uid, gid)) = run_as {
        // std drops the supplementary groups too when a root parent sets the uid.
        cmd.uid(uid).gid(gid);
    }
    let mut spawned = Spawned::new(cmd.spawn()?);
    let conninfo = format!(
        "host=127.0.0.1 port={port} {} {} {} sslmode=require gssencmode=disable",
        conninfo_pair("dbname", BENCH_DATABASE),
        conninfo_pair("user", BENCH_LOGIN),
        conninfo_pair("password", &password),
    );
    wait_ready(&mut spawned, psql, &conninfo, &log_path)?;
    Ok(Target {
        name: "pgbouncer",
        conninfo,
        login: Login {
            port,
            user: BENCH_LOGIN.to_owned(),
            database: BENCH_DATABASE.to_owned(),
            password: Some(password),
        },
        process: Some(spawned),
    })
}

/// An ini value: PgBouncer takes paths unquoted, so refuse the characters that would break
/// the line (temp dirs never contain them).
fn path_str(path: &Path) -> BoxResult<String> {
    let text = path.to_str().ok_or("non-UTF-8 temp path")?;
    if text.contains(['\n', ';', '#', '=']) || text.trim() != text {
        return Err(format!("temp path {text:?} cannot go into pgbouncer.ini").into());
    }
    Ok(text.to_owned())
}

fn random_password() -> BoxResult<String> {
    use std::io::Read;
    // 128 bits from the OS, hex: a throwaway secret for a throwaway pooler.
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}
