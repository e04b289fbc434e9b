//! The users file: who may log in, how, as which policy role and upstream user.
//!
//! Verifiers are PostgreSQL's own `SCRAM-SHA-256$iter:salt$stored:server` strings (what
//! `pgward passwd` prints); plaintext passwords are refused at load.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ipnet::IpNet;
use pgwire::api::auth::sasl::scram::ScramSecret;
use serde::Deserialize;

use crate::config::yaml_from_str;
use crate::error::ConfigError;
use crate::jwks::KeySource;
use crate::jwt::JwtConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUsersFile {
    #[serde(default)]
    users: BTreeMap<String, RawUser>,
    #[serde(default)]
    jwt: Option<RawJwt>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    jwks: String,
    /// CA bundle for an https `jwks` (default: the system's roots).
    #[serde(default)]
    jwks_ca: Option<std::path::PathBuf>,
    #[serde(default)]
    jwks_refresh_secs: Option<u64>,
    issuer: String,
    audience: String,
    #[serde(default)]
    role_claim: Option<String>,
    #[serde(default)]
    user_claim: Option<String>,
    /// The upstream login for JWT users (default: the user claim).
    #[serde(default)]
    upstream_user: Option<String>,
    #[serde(default)]
    leeway_secs: Option<u64>,
}

/// JWT logins (a token sent as the password, over TLS only).
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub config: JwtConfig,
    /// A JWKS file, or an https URL with its CA and refresh interval.
    pub keys: KeySource,
    pub upstream_user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    role: String,
    #[serde(default)]
    scram: Option<String>,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    upstream_user: Option<String>,
    #[serde(default)]
    source: Option<Vec<IpNet>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawAuth {
    Scram,
    Cert,
}

/// How a user proves who they are.
#[derive(Debug)]
pub enum Credential {
    /// SCRAM-SHA-256 against this verifier (never the password itself).
    Scram(ScramVerifier),
    /// A client certificate signed by `tls.client_ca` whose CN equals the user name.
    Cert,
}

/// A parsed SCRAM verifier. Key material is not printed by `Debug`.
pub struct ScramVerifier {
    pub iterations: usize,
    pub salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramVerifier {
    /// Parses `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(text: &str) -> Option<ScramVerifier> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let v = ScramVerifier {
            iterations: iterations.parse().ok().filter(|i| *i >= 1)?,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: STANDARD.decode(stored).ok()?,
            server_key: STANDARD.decode(server).ok()?,
        };
        (v.stored_key.len() == 32 && v.server_key.len() == 32).then_some(v)
    }

    /// The secret pgwire's SCRAM server state machine verifies against.
    pub fn to_secret(&self) -> ScramSecret {
        ScramSecret::Verifier {
            salt: self.salt.clone(),
            iterations: self.iterations,
            stored_key: self.stored_key.clone(),
            server_key: self.server_key.clone(),
        }
    }
}

/// One login.
#[derive(Debug)]
pub struct User {
    pub name: String,
    pub role: String,
    pub credential: Credential,
    pub upstream_user: String,
    /// Client address allowlist; empty means any address.
    pub source: Vec<IpNet>,
}

impl User {
    pub fn source_allowed(&self, addr: IpAddr) -> bool {
        self.source.is_empty() || self.source.iter().any(|net| net.contains(&addr))
    }
}

/// All logins, by name, and the JWT settings if tokens are accepted.
#[derive(Debug, Default)]
pub struct Users {
    by_name: BTreeMap<String, User>,
    pub jwt: Option<JwtSettings>,
}

impl Users {
    pub fn load(path: &Path) -> Result<Users, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut users = Self::parse(&text, &path.display().to_string())?;
        if let Some(jwt) = &mut users.jwt {
            jwt.keys
                .resolve_relative(path.parent().unwrap_or(Path::new(".")));
        }
        Ok(users)
    }

    pub fn parse(text: &str, shown: &str) -> Result<Users, ConfigError> {
        let RawUsersFile { users, jwt } = yaml_from_str(text, shown)?;
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_owned(),
            message,
        };
        let jwt = match jwt {
            None => None,
            Some(RawJwt {
                jwks,
                jwks_ca,
                jwks_refresh_secs,
                issuer,
                audience,
                role_claim,
                user_claim,
                upstream_user,
                leeway_secs,
            }) => {
                let keys = KeySource::from_config(&jwks, jwks_ca, jwks_refresh_secs)
                    .map_err(|e| invalid(e.to_string()))?;
                let mut config = JwtConfig::new(
                    issuer,
                    audience,
                    role_claim.unwrap_or_else(|| "pgward_role".to_owned()),
                    user_claim.unwrap_or_else(|| "sub".to_owned()),
                );
                if let Some(l) = leeway_secs {
                    config.leeway_secs = l;
                }
                Some(JwtSettings {
                    config,
                    keys,
                    upstream_user,
                })
            }
        };
        let mut by_name = BTreeMap::new();
        for (name, raw) in users {
            let RawUser {
                role,
                scram,
                auth,
                upstream_user,
                source,
            } = raw;
            let credential = match (auth, scram) {
                (Some(RawAuth::Cert), None) => Credential::Cert,
                (Some(RawAuth::Cert), Some(_)) => {
                    return Err(invalid(format!(
                        "users.{name}: auth: cert takes no scram verifier"
                    )))
                }
                (Some(RawAuth::Scram) | None, Some(v)) => {
                    Credential::Scram(ScramVerifier::parse(&v).ok_or_else(|| {
                        invalid(format!(
                            "users.{name}.scram: not a SCRAM-SHA-256 verifier (make one with `pgward passwd`; plaintext passwords are refused)"
                        ))
                    })?)
                }
                (Some(RawAuth::Scram) | None, None) => {
                    return Err(invalid(format!(
                        "users.{name}: needs a scram verifier or auth: cert"
                    )))
                }
            };
            if role.is_empty() {
                return Err(invalid(format!("users.{name}.role: must not be empty")));
            }
            by_name.insert(
                name.clone(),
                User {
                    upstream_user: upstream_user.unwrap_or_else(|| name.clone()),
                    name,
                    role,
                    credential,
                    source: source.unwrap_or_default(),
                },
            );
        }
        Ok(Users { by_name, jwt })
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn verifier() -> String {
        postgres_protocol::password::scram_sha_256(b"secret")
    }

    #[test]
    fn parses_scram_and_cert_users() {
        let text = format!(
            "users:\n  alice:\n    role: analyst\n    scram: \"{}\"\n    source: [127.0.0.1/32]\n  bob:\n    role: support\n    auth: cert\n    upstream_user: app_rw\n",
            verifier()
        );
        let users = Users::parse(&text, "users.yaml").unwrap();
        let alice = users.get("alice").unwrap();
        assert!(matches!(alice.credential, Credential::Scram(_)));
        assert_eq!(alice.upstream_user, "alice");
        assert!(alice.source_allowed("127.0.0.1".parse().unwrap()));
        assert!(!alice.source_allowed("10.0.0.1".parse().unwrap()));
        let bob = users.get("bob").unwrap();
        assert!(matches!(bob.credential, Credential::Cert));
        assert_eq!(bob.upstream_user, "app_rw");
    }

    #[test]
    fn plaintext_password_is_refused() {
        let err = Users::parse("users:\n  a:\n    role: r\n    scram: hunter2\n", "u.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("plaintext passwords are refused"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn unknown_key_is_an_error_with_location() {
        let err = Users::parse(
            "users:\n  a:\n    role: r\n    auth: cert\n    pasword: x\n",
            "u.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("u.yaml:5:"), "{err}");
    }

    #[test]
    fn jwt_jwks_https_with_ca_and_refresh() {
        let jwt = "jwt:\n  jwks: https://idp.example.com/.well-known/jwks.json\n  jwks_ca: certs/idp-ca.pem\n  jwks_refresh_secs: 60\n  issuer: https://idp.example.com\n  audience: pgward\n";
        let users = Users::parse(jwt, "u.yaml").unwrap();
        let Some(JwtSettings {
            keys: KeySource::Https(source),
            ..
        }) = &users.jwt
        else {
            panic!("no https jwt source: {:?}", users.jwt);
        };
        assert_eq!(source.refresh, std::time::Duration::from_secs(60));
        assert_eq!(source.ca.as_deref(), Some(Path::new("certs/idp-ca.pem")));

        let plain = jwt.replace(
            "https://idp.example.com/.well-known",
            "http://idp.example.com",
        );
        let err = Users::parse(&plain, "u.yaml").unwrap_err().to_string();
        assert!(
            err.starts_with("u.yaml: jwt.jwks: ") && err.contains("must use https"),
            "{err}"
        );
        let file_with_ca =
            "jwt:\n  jwks: jwks.json\n  jwks_ca: ca.pem\n  issuer: i\n  audience: a\n";
        let err = Users::parse(file_with_ca, "u.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("jwt.jwks_ca applies to an https jwks only"),
            "{err}"
        );
    }

    #[test]
    fn verifier_debug_hides_keys() {
        let v = ScramVerifier::parse(&verifier()).unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains("stored_key"), "{shown}");
    }
}
