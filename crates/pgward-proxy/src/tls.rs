//! rustls configurations: the client-facing server config and the upstream mTLS client
//! config. Always the `ring` provider, TLS 1.2 and 1.3 only, PEM via rustls-pki-types.
//!
//! TLS 1.3 suites go in Mozilla's "modern" order, AES-128-GCM first, on both legs; the
//! client-facing side picks by that order rather than the client's (libpq's OpenSSL
//! lists AES-256-GCM-SHA384 first). AES-128 is ten rounds to AES-256's fourteen on every
//! record, and SHA-256 is the cheaper hash in each handshake's key schedule: measurably
//! less CPU per statement and per login, at a strength every TLS 1.3 profile accepts.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CipherSuite, ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::{ClientTlsConfig, UpstreamConfig};
use crate::error::ConfigError;

/// The ALPN protocol name PostgreSQL 17+ clients send (and require for direct TLS).
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    // Stable: TLS 1.2 suites keep ring's order, after the TLS 1.3 ones.
    provider
        .cipher_suites
        .sort_by_key(|suite| suite_rank(suite.suite()));
    Arc::new(provider)
}

/// Where a suite goes in pgward's preference (lower first).
fn suite_rank(suite: CipherSuite) -> u8 {
    match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        _ => 3,
    }
}

fn tls_err(what: &'static str, path: &Path, reason: impl ToString) -> ConfigError {
    ConfigError::Tls {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err("certificate", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err("certificate", path, e))?;
    if certs.is_empty() {
        return Err(tls_err("certificate", path, "no certificate in file"));
    }
    Ok(certs)
}

/// Loads a private key, refusing a file that group or others may read (as PostgreSQL
/// and OpenSSH do): a key anyone on the host can read is not a secret.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| tls_err("private key", path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(tls_err(
            "private key",
            path,
            format!(
                "is accessible by group or others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_err("private key", path, e))
}

fn load_roots(path: &Path) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| tls_err("CA certificate", path, e))?;
    }
    Ok(roots)
}

/// The TLS server config clients connect to. With `client_ca`, client certificates
/// are verified against it (and optional, so SCRAM users need none).
pub fn server_config(cfg: &ClientTlsConfig) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_err("server TLS", &cfg.cert, e))?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(load_roots(ca)?), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| tls_err("client CA", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(load_certs(&cfg.cert)?, load_key(&cfg.key)?)
        .map_err(|e| tls_err("server certificate", &cfg.cert, e))?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// The upstream TLS client config: verifies the server against `upstream.tls.ca` and
/// presents pgward's client certificate (mutual TLS is not optional).
pub fn upstream_config(cfg: &UpstreamConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = provider();
    let roots = Arc::new(load_roots(&cfg.ca)?);
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| tls_err("upstream CA", &cfg.ca, e))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_err("upstream TLS", &cfg.ca, e))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(load_certs(&cfg.cert)?, load_key(&cfg.key)?)
        .map_err(|e| tls_err("upstream client certificate", &cfg.cert, e))?;
    Ok(Arc::new(config))
}

/// The name the upstream's certificate must carry.
pub fn upstream_server_name(cfg: &UpstreamConfig) -> Result<ServerName<'static>, ConfigError> {
    ServerName::try_from(cfg.server_name.clone()).map_err(|e| ConfigError::Invalid {
        path: "upstream.tls.server_name".to_owned(),
        message: e.to_string(),
    })
}

/// The common name of a client certificate's subject, if it has exactly one.
pub fn certificate_common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let mut names = parsed.subject().iter_common_name();
    let first = names.next()?.as_str().ok()?.to_owned();
    names.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A client that lists AES-256 first (as libpq does) gets AES-128 from pgward.
    #[test]
    fn the_server_picks_aes_128_first() {
        let dir = std::env::temp_dir().join(format!("pgward-suite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (dir.join("s.crt"), dir.join("s.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let server = server_config(&ClientTlsConfig {
            cert: cert_path,
            key: key_path,
            client_ca: None,
            required: true,
        })
        .unwrap();

        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let aes256_first = rustls::crypto::ring::default_provider();
        assert_eq!(
            aes256_first.cipher_suites[0].suite(),
            CipherSuite::TLS13_AES_256_GCM_SHA384
        );
        let client = ClientConfig::builder_with_provider(Arc::new(aes256_first))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut client = rustls::Connection::Client(
            rustls::ClientConnection::new(
                Arc::new(client),
                ServerName::try_from("localhost").unwrap(),
            )
            .unwrap(),
        );
        let mut server = rustls::Connection::Server(rustls::ServerConnection::new(server).unwrap());
        // The handshake over in-memory buffers.
        for _ in 0..10 {
            send_tls(&mut client, &mut server);
            send_tls(&mut server, &mut client);
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        assert!(!server.is_handshaking());
        for side in [&client, &server] {
            assert_eq!(
                side.negotiated_cipher_suite().map(|s| s.suite()),
                Some(CipherSuite::TLS13_AES_128_GCM_SHA256)
            );
        }
        let ours = provider();
        assert_eq!(
            ours.cipher_suites[0].suite(),
            CipherSuite::TLS13_AES_128_GCM_SHA256,
            "the upstream leg offers AES-128 first too"
        );
    }

    /// Moves what `from` has to send into `to`.
    fn send_tls(from: &mut rustls::Connection, to: &mut rustls::Connection) {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        if !wire.is_empty() {
            to.read_tls(&mut wire.as_slice()).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    #[test]
    fn world_readable_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("pgward-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.pem");
        let pair = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&key, pair.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_key(&key).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        load_key(&key).unwrap();
    }
}
