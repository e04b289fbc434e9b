//! The sandbox's certificate authority: a dev CA and the leaf certificates signed by it
//! (PostgreSQL's server certificate, pgward's client-facing server certificate, pgward's
//! upstream client certificate and per-user client certificates), written as PEM files.
//! Private keys are written mode 0600 and never appear in Debug output.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::SandboxError;

/// A certificate and its private key, both as PEM text and as the files they were written to.
#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl fmt::Debug for CertPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertPair")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A throwaway certificate authority living in one directory.
pub struct DevCa {
    dir: PathBuf,
    cert_pem: String,
    cert_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("dir", &self.dir)
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Creates a new CA and writes `ca.crt` and `ca.key` into `dir` (which must exist).
    pub fn create(dir: &Path) -> Result<Self, SandboxError> {
        let name = "pgward dev CA";
        let cert_err = |source| SandboxError::Cert {
            name: name.to_owned(),
            source,
        };
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "pgward sandbox");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(cert_err)?;
        let cert_pem = cert.pem();
        let cert_path = dir.join("ca.crt");
        write_public(&cert_path, &cert_pem)?;
        write_private(&dir.join("ca.key"), &key.serialize_pem())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            cert_pem,
            cert_path,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate file: `sslrootcert` for clients, `ssl_ca_file` for PostgreSQL,
    /// `tls.client_ca` / `upstream.tls.ca` for pgward.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A server certificate for `names` (DNS names or IP addresses; the first is also the CN),
    /// written as `<file_stem>.crt` / `<file_stem>.key`.
    pub fn issue_server(&self, file_stem: &str, names: &[&str]) -> Result<CertPair, SandboxError> {
        let cn = names.first().copied().unwrap_or(file_stem);
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).map_err(|source| SandboxError::Cert {
            name: file_stem.to_owned(),
            source,
        })?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(file_stem, cn, params)
    }

    /// A client certificate whose CN is `cn` (PostgreSQL's and pgward's cert auth compare the
    /// CN with the user name), written as `client-<cn>.crt` / `.key`.
    pub fn issue_client(&self, cn: &str) -> Result<CertPair, SandboxError> {
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(&format!("client-{}", file_safe(cn)), cn, params)
    }

    /// Like `issue_client`, written as `<file_stem>.crt` / `.key`: a second certificate for
    /// the same CN (rotation tests) that does not replace the first one's files.
    pub fn issue_client_as(&self, file_stem: &str, cn: &str) -> Result<CertPair, SandboxError> {
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(file_stem, cn, params)
    }

    fn issue(
        &self,
        file_stem: &str,
        cn: &str,
        mut params: CertificateParams,
    ) -> Result<CertPair, SandboxError> {
        let cert_err = |source| SandboxError::Cert {
            name: cn.to_owned(),
            source,
        };
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(cert_err)?;
        let pair = CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_path: self.dir.join(format!("{file_stem}.crt")),
            key_path: self.dir.join(format!("{file_stem}.key")),
        };
        write_public(&pair.cert_path, &pair.cert_pem)?;
        write_private(&pair.key_path, &pair.key_pem)?;
        Ok(pair)
    }
}

/// A file name part for an arbitrary user name: kept as is when it is plain, hex otherwise
/// (so `../x` or `a b` can neither escape the directory nor collide with a plain name).
fn file_safe(name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        name.to_owned()
    } else {
        // '=' never appears in a plain name, so the two forms cannot collide.
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        format!("hex={hex}")
    }
}

fn write_public(path: &Path, text: &str) -> Result<(), SandboxError> {
    write_mode(path, text, 0o644)
}

fn write_private(path: &Path, text: &str) -> Result<(), SandboxError> {
    write_mode(path, text, 0o600)
}

fn write_mode(path: &Path, text: &str, mode: u32) -> Result<(), SandboxError> {
    let err = SandboxError::io("writing certificate file", path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // `mode` only applies to new files; an existing one keeps its bits otherwise.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(SandboxError::io("setting certificate file mode", path))?;
    file.write_all(text.as_bytes())
        .map_err(SandboxError::io("writing certificate file", path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn keys_are_private_and_certs_public() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::create(dir.path()).unwrap();
        let server = ca
            .issue_server("server", &["localhost", "127.0.0.1"])
            .unwrap();
        let client = ca.issue_client("alice").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
        assert_eq!(mode(ca.cert_path()), 0o644);
        assert_eq!(mode(&server.key_path), 0o600);
        assert_eq!(mode(&server.cert_path), 0o644);
        assert_eq!(mode(&client.key_path), 0o600);
        assert_eq!(client.cert_path, dir.path().join("client-alice.crt"));
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(client.key_pem.contains("PRIVATE KEY"));
        assert!(!format!("{client:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn odd_user_names_get_safe_file_names() {
        assert_eq!(file_safe("app_readonly"), "app_readonly");
        assert_eq!(file_safe("../x"), "hex=2e2e2f78");
        assert_eq!(file_safe("a b"), "hex=612062");
        assert_eq!(file_safe(""), "hex=");
    }
}
