//! Where `check` and `validate` get the catalog names resolve against: a schema file of
//! CREATE statements (`--schema`) or a live database (`--dsn`), read from pg_catalog.
//!
//! The live reader always uses TLS and verifies the server: it never sends a password or
//! reads a catalog over plaintext. It only reads names (schemas, relations, columns,
//! functions), never table data.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use pgward_sql::Catalog;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// `--schema FILE | --dsn URL`: the catalog names are resolved against.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// A file of CREATE SCHEMA/TABLE/VIEW statements describing the database.
    #[arg(long, value_name = "FILE", conflicts_with = "dsn")]
    pub schema: Option<PathBuf>,
    /// A live database to read the catalog from: a postgresql:// URL or a libpq conninfo
    /// string (`sslrootcert`, `sslcert`, `sslkey` are honoured; TLS is always on).
    #[arg(long, value_name = "URL")]
    pub dsn: Option<String>,
}

impl CatalogArgs {
    /// The catalog, or None when neither flag was given.
    pub fn load(&self) -> anyhow::Result<Option<Catalog>> {
        if let Some(path) = &self.schema {
            return load_schema_file(path).map(Some);
        }
        if let Some(dsn) = &self.dsn {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            return runtime.block_on(load_catalog(dsn)).map(Some);
        }
        Ok(None)
    }
}

/// A catalog from a schema file of CREATE statements.
pub fn load_schema_file(path: &Path) -> anyhow::Result<Catalog> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading schema file {}", path.display()))?;
    Catalog::from_create_tables(&text).with_context(|| format!("schema file {}", path.display()))
}

/// The TLS files named in a DSN (libpq's names), taken out before tokio-postgres parses
/// the rest: it knows neither these keys nor `sslmode=verify-full`.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsFiles {
    root_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Splits a DSN into a tokio-postgres config and the TLS files it names.
fn parse_dsn(dsn: &str) -> anyhow::Result<(tokio_postgres::Config, TlsFiles)> {
    let mut files = TlsFiles::default();
    let mut take = |key: &str, value: &str| -> anyhow::Result<bool> {
        match key {
            "sslrootcert" => files.root_cert = Some(PathBuf::from(value)),
            "sslcert" => files.cert = Some(PathBuf::from(value)),
            "sslkey" => files.key = Some(PathBuf::from(value)),
            "sslmode" => match value {
                // verify-ca is treated as verify-full: the host name is always checked.
                "require" | "verify-ca" | "verify-full" => {}
                other => bail!("sslmode={other}: pgward reads catalogs over verified TLS only"),
            },
            // Never used: the connection is TLS with certificate verification.
            "gssencmode" | "sslnegotiation" => {}
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        let (base, query) = dsn.split_once('?').unwrap_or((dsn, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(&percent_decode(key)?, &percent_decode(value)?)? {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for (key, value) in conninfo_pairs(dsn)? {
            if !take(&key, &value)? {
                kept.push(format!(
                    "{key}='{}'",
                    value.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        kept.join(" ")
    };
    let mut config = tokio_postgres::Config::from_str(&rest).context("invalid --dsn")?;
    config.ssl_mode(SslMode::Require);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    Ok((config, files))
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .context("invalid percent-encoding in --dsn")?;
                out.push(u8::from_str_radix(hex, 16).context("invalid percent-encoding in --dsn")?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).context("--dsn is not UTF-8 after percent-decoding")
}

/// libpq conninfo `key = value` pairs; values may be single-quoted with `\'` and `\\`.
fn conninfo_pairs(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            bail!("invalid --dsn: expected `=` after `{key}`");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => bail!("invalid --dsn: unterminated quoted value for `{key}`"),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => bail!("invalid --dsn: unterminated quoted value for `{key}`"),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        value.push(next);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

fn tls_config(files: &TlsFiles) -> anyhow::Result<rustls::ClientConfig> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let default = |name: &str| home.as_ref().map(|h| h.join(".postgresql").join(name));
    let root_cert = files
        .root_cert
        .clone()
        .or_else(|| default("root.crt").filter(|p| p.exists()))
        .context("--dsn needs sslrootcert=FILE (the CA that signed the server's certificate)")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(&root_cert)? {
        roots
            .add(cert)
            .with_context(|| format!("CA certificate {}", root_cert.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    let cert = files
        .cert
        .clone()
        .or_else(|| default("postgresql.crt").filter(|p| p.exists()));
    match cert {
        None => Ok(builder.with_no_client_auth()),
        Some(cert) => {
            let key = files
                .key
                .clone()
                .or_else(|| default("postgresql.key"))
                .context("--dsn names sslcert but no sslkey")?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .with_context(|| format!("client key {}", key.display()))?;
            builder
                .with_client_auth_cert(read_certs(&cert)?, key)
                .with_context(|| format!("client certificate {}", cert.display()))
        }
    }
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("certificate file {}", path.display()))?;
    if certs.is_empty() {
        bail!("certificate file {}: no certificate in it", path.display());
    }
    Ok(certs)
}

/// Reads schemas, relations (tables, partitioned tables, views, materialized views,
/// foreign tables, sequences) with their columns, and function names from a live
/// database into a [`Catalog`]. Reusable by anything that has a DSN.
pub async fn load_catalog(dsn: &str) -> anyhow::Result<Catalog> {
    let (config, files) = parse_dsn(dsn)?;
    let tls = MakeRustlsConnect::new(tls_config(&files)?);
    let (client, connection) = config.connect(tls).await.context("connecting to --dsn")?;
    let connection = tokio::spawn(connection);
    let catalog = read_catalog(&client).await;
    drop(client);
    // The connection ends once the client is gone; its own error is not interesting then.
    let _ = connection.await;
    catalog
}

/// Fills a [`Catalog`] from pg_catalog over an open connection (the proxy's reader).
pub async fn read_catalog(client: &tokio_postgres::Client) -> anyhow::Result<Catalog> {
    pgward_proxy::catalog::read_catalog(client)
        .await
        .context("reading the catalog")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn conninfo_takes_out_tls_files() {
        let (config, files) = parse_dsn(
            "host=db port=5433 user=alice dbname='my db' sslmode=verify-full \
             sslrootcert=/ca.crt sslcert='/c\\'s.crt' sslkey=/k.key gssencmode=disable",
        )
        .unwrap();
        assert_eq!(config.get_user(), Some("alice"));
        assert_eq!(config.get_dbname(), Some("my db"));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(files.root_cert, Some(PathBuf::from("/ca.crt")));
        assert_eq!(files.cert, Some(PathBuf::from("/c's.crt")));
        assert_eq!(files.key, Some(PathBuf::from("/k.key")));
    }

    #[test]
    fn url_takes_out_tls_files() {
        let (config, files) = parse_dsn(
            "postgresql://bob@db.internal:6000/shop?sslmode=verify-full&sslrootcert=%2Fca.crt&application_name=x",
        )
        .unwrap();
        assert_eq!(config.get_user(), Some("bob"));
        assert_eq!(config.get_dbname(), Some("shop"));
        assert_eq!(config.get_application_name(), Some("x"));
        assert_eq!(files.root_cert, Some(PathBuf::from("/ca.crt")));
    }

    #[test]
    fn plaintext_is_refused() {
        assert!(parse_dsn("host=db sslmode=disable").is_err());
        assert!(parse_dsn("postgres://db/x?sslmode=prefer").is_err());
    }
}
