//! The server's configuration files: postgresql.conf settings, pg_hba.conf and pg_ident.conf.
//! pg_hba.conf admits exactly one thing — TLS from 127.0.0.1 with a client certificate signed
//! by the dev CA — and this module must never write another rule.

use std::io::Write;
use std::path::Path;

use crate::SandboxError;

pub(crate) struct ServerConfig<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) socket_dir: &'a Path,
    pub(crate) cert: &'a Path,
    pub(crate) key: &'a Path,
    pub(crate) ca: &'a Path,
    pub(crate) host: &'a str,
    pub(crate) max_connections: u32,
}

/// Writes the sandbox settings into a freshly initdb'd data directory. The port is not here:
/// it is given on the server's command line, so a retry on another port rewrites nothing.
pub(crate) fn write_server_config(cfg: &ServerConfig<'_>) -> Result<(), SandboxError> {
    let q = |p: &Path| conf_quote(&p.to_string_lossy());
    let settings = format!(
        "\n# pgward sandbox\n\
         listen_addresses = {host}\n\
         unix_socket_directories = {socket}\n\
         ssl = on\n\
         ssl_cert_file = {cert}\n\
         ssl_key_file = {key}\n\
         ssl_ca_file = {ca}\n\
         ssl_min_protocol_version = 'TLSv1.2'\n\
         max_connections = {max_connections}\n\
         shared_buffers = 128MB\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         lc_messages = 'C'\n",
        host = conf_quote(cfg.host),
        socket = q(cfg.socket_dir),
        cert = q(cfg.cert),
        key = q(cfg.key),
        ca = q(cfg.ca),
        max_connections = cfg.max_connections,
    );
    append(&cfg.data_dir.join("postgresql.conf"), &settings)?;
    // No `local` line, no `host`, no password methods.
    overwrite(
        &cfg.data_dir.join("pg_hba.conf"),
        &format!(
            "# pgward sandbox: client certificates over TLS, nothing else\n\
             hostssl all all {}/32 cert map=pgward\n",
            cfg.host
        ),
    )?;
    // A certificate's CN logs in as the same user name; pgward's own CN additionally as each
    // upstream user appended below by append_proxy_ident_lines.
    overwrite(
        &cfg.data_dir.join("pg_ident.conf"),
        "# MAPNAME SYSTEM-USERNAME PG-USERNAME\n\
         pgward /^(.*)$ \\1\n",
    )
}

/// Appends `pgward <proxy_cn> "<user>"` for each user not yet mapped; true if it added any
/// (the server then needs a reload).
pub(crate) fn append_proxy_ident_lines(
    data_dir: &Path,
    proxy_cn: &str,
    users: &[&str],
) -> Result<bool, SandboxError> {
    let path = data_dir.join("pg_ident.conf");
    let current =
        std::fs::read_to_string(&path).map_err(SandboxError::io("reading pg_ident.conf", &path))?;
    let mut added = String::new();
    for user in users {
        let line = format!("pgward {proxy_cn} {}\n", ident_token(user));
        if !current.contains(&line) && !added.contains(&line) {
            added.push_str(&line);
        }
    }
    if added.is_empty() {
        return Ok(false);
    }
    append(&path, &added)?;
    Ok(true)
}

/// A postgresql.conf string literal.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A pg_ident.conf user token: double-quoted, embedded quotes doubled.
fn ident_token(user: &str) -> String {
    format!("\"{}\"", user.replace('"', "\"\""))
}

fn append(path: &Path, text: &str) -> Result<(), SandboxError> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(SandboxError::io("opening a server config file", path))?;
    file.write_all(text.as_bytes())
        .map_err(SandboxError::io("writing a server config file", path))
}

/// Rewrites an existing file in place, so it keeps its owner (the server's user) and mode.
fn overwrite(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(SandboxError::io("writing a server config file", path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn quoting_for_server_files() {
        assert_eq!(conf_quote("/tmp/it's"), "'/tmp/it''s'");
        assert_eq!(ident_token("app_rw"), "\"app_rw\"");
        assert_eq!(ident_token("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn ident_lines_are_added_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pg_ident.conf"), "pgward /^(.*)$ \\1\n").unwrap();
        assert!(append_proxy_ident_lines(dir.path(), "pgward", &["a", "b", "a"]).unwrap());
        assert!(!append_proxy_ident_lines(dir.path(), "pgward", &["b"]).unwrap());
        let text = std::fs::read_to_string(dir.path().join("pg_ident.conf")).unwrap();
        assert_eq!(
            text,
            "pgward /^(.*)$ \\1\npgward pgward \"a\"\npgward pgward \"b\"\n"
        );
    }
}
