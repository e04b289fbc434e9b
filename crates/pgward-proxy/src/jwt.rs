//! JWT as a password (SPEC §3 `jwt:`): verifies a token against a JWKS and maps two of
//! its claims to the session's user and policy role.
//!
//! Never takes the algorithm from the token alone: the key named by `kid` fixes it, and a
//! token whose header disagrees is refused (this defeats the HS/RS confusion attack).
//! Only RS256, ES256 and EdDSA exist here; `alg: none` and every HMAC algorithm are
//! refused before any key is looked at. Never puts the token, its signature or its raw
//! claims in an error: `JwtError` names the reason for the log, and the client only ever
//! sees the generic authentication error.
//!
//! Key sets come from a file (`read_jwks_file`) or from an `https://` URL, which
//! `crate::jwks` fetches, refreshes and hands to `JwtVerifier::replace_keys`; this module
//! does no I/O but reading that file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind as LibErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew tolerated on `exp` and `nbf` unless the configuration says otherwise.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// A token longer than this is refused before it is parsed (a password message carries it).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// A JWKS document larger than this is refused (real ones are a few KiB).
pub const MAX_JWKS_LEN: usize = 1024 * 1024;
/// `user_claim` / `role_claim` values longer than this are refused.
const MAX_IDENTITY_LEN: usize = 256;
/// RSA moduli outside 2048..=8192 bits are refused when the key set is loaded.
const RSA_MIN_MODULUS_BYTES: usize = 256;
const RSA_MAX_MODULUS_BYTES: usize = 1024;

/// The checked `jwt:` section of the users file, minus the key source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub role_claim: String,
    pub user_claim: String,
    pub leeway_secs: u64,
}

impl JwtConfig {
    /// A configuration with the default leeway (`DEFAULT_LEEWAY_SECS`).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        role_claim: impl Into<String>,
        user_claim: impl Into<String>,
    ) -> JwtConfig {
        JwtConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            role_claim: role_claim.into(),
            user_claim: user_claim.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Where the key set comes from (`jwks:` in the users file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    /// Fetched and refreshed by `crate::jwks`.
    Https(String),
}

impl JwksSource {
    /// `https://...` is a URL; `http://` is refused (keys must not travel in clear);
    /// anything else is a file path.
    pub fn parse(text: &str) -> Result<JwksSource, JwtError> {
        let lower = text.get(..8).map(str::to_ascii_lowercase);
        if lower.as_deref() == Some("https://") {
            Ok(JwksSource::Https(text.to_owned()))
        } else if text.get(..7).map(str::to_ascii_lowercase).as_deref() == Some("http://") {
            Err(JwtError::Config(
                "jwks URL must use https: plain http is never fetched (keys must not travel in clear)",
            ))
        } else if text.is_empty() {
            Err(JwtError::Config("jwks is empty"))
        } else {
            Ok(JwksSource::File(PathBuf::from(text)))
        }
    }
}

/// Who a verified token says the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    pub user: String,
    pub role: String,
    /// The token's `exp` (seconds since the Unix epoch), without leeway.
    pub expires_at: u64,
}

/// Why a key set or a token was refused. The Display is for the log only; values taken
/// from a token (kid, alg, iss) are shortened and stripped of control characters.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("invalid jwt configuration: {0}")]
    Config(&'static str),
    #[error("cannot read JWKS file {path}: {source}")]
    JwksIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("JWKS is larger than {MAX_JWKS_LEN} bytes")]
    JwksTooLarge,
    #[error("JWKS is not a JSON object with a \"keys\" array: {0}")]
    JwksSyntax(String),
    #[error("JWKS key #{index} (kid {kid}) is unusable: {reason}")]
    JwksKey {
        index: usize,
        kid: String,
        reason: &'static str,
    },
    #[error("JWKS has more than one key with kid {0}")]
    JwksDuplicateKid(String),
    #[error("JWKS has no usable RS256, ES256 or EdDSA signing key")]
    JwksEmpty,

    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TokenTooLarge,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token algorithm {alg} is not allowed (only RS256, ES256, EdDSA)")]
    DisallowedAlgorithm { alg: String },
    #[error("token header has a \"crit\" parameter, which is not supported")]
    CriticalHeader,
    #[error("token has no kid and the key set has {keys} keys")]
    MissingKid { keys: usize },
    #[error("token kid {kid} is not in the key set")]
    UnknownKid { kid: String },
    #[error("token header says {header} but its key is {key}")]
    AlgorithmMismatch { header: String, key: &'static str },
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired at {exp} (now {now}, leeway {leeway}s)")]
    Expired { exp: u64, now: u64, leeway: u64 },
    #[error("token not valid before {nbf} (now {now}, leeway {leeway}s)")]
    NotYetValid { nbf: u64, now: u64, leeway: u64 },
    #[error("token issuer {got} is not the configured issuer")]
    WrongIssuer { got: String },
    #[error("token audience does not contain the configured audience")]
    WrongAudience,
    #[error("token has no {0} claim")]
    MissingClaim(String),
    #[error("token claim {0} has the wrong type or an unacceptable value")]
    InvalidClaim(String),
}

impl JwtError {
    /// A short stable label for metrics (`auth_failures{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Config(_)
            | JwtError::JwksIo { .. }
            | JwtError::JwksTooLarge
            | JwtError::JwksSyntax(_)
            | JwtError::JwksKey { .. }
            | JwtError::JwksDuplicateKid(_)
            | JwtError::JwksEmpty => "jwks",
            JwtError::TokenTooLarge | JwtError::Malformed(_) | JwtError::CriticalHeader => {
                "malformed"
            }
            JwtError::DisallowedAlgorithm { .. } | JwtError::AlgorithmMismatch { .. } => {
                "algorithm"
            }
            JwtError::MissingKid { .. } | JwtError::UnknownKid { .. } => "kid",
            JwtError::BadSignature => "signature",
            JwtError::Expired { .. } => "expired",
            JwtError::NotYetValid { .. } => "not_yet_valid",
            JwtError::WrongIssuer { .. } => "issuer",
            JwtError::WrongAudience => "audience",
            JwtError::MissingClaim(_) | JwtError::InvalidClaim(_) => "claims",
        }
    }
}

/// Reads a JWKS file (size-capped). The caller passes the text to `from_jwks_json` or
/// `replace_keys`.
pub fn read_jwks_file(path: &Path) -> Result<String, JwtError> {
    let io = |source| JwtError::JwksIo {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_JWKS_LEN as u64 {
        return Err(JwtError::JwksTooLarge);
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Verifies tokens against the current key set; `replace_keys` swaps the set atomically,
/// so sessions verifying concurrently see either the old or the new set, never a mix.
pub struct JwtVerifier {
    config: JwtConfig,
    keys: ArcSwap<KeySet>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.load();
        f.debug_struct("JwtVerifier")
            .field("config", &self.config)
            .field("keys", &keys.keys.len())
            .finish()
    }
}

struct KeySet {
    keys: Vec<VerifyKey>,
}

struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl KeySet {
    fn find(&self, kid: &str) -> Option<&VerifyKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

impl JwtVerifier {
    pub fn from_jwks_json(config: JwtConfig, jwks_json: &str) -> Result<JwtVerifier, JwtError> {
        check_config(&config)?;
        let keys = parse_jwks(jwks_json)?;
        Ok(JwtVerifier {
            config,
            keys: ArcSwap::from_pointee(keys),
        })
    }

    /// A verifier that has no key yet and so refuses every token, until `replace_keys`
    /// installs a set (an https JWKS before its first fetch succeeded).
    pub fn without_keys(config: JwtConfig) -> Result<JwtVerifier, JwtError> {
        check_config(&config)?;
        Ok(JwtVerifier {
            config,
            keys: ArcSwap::from_pointee(KeySet { keys: Vec::new() }),
        })
    }

    /// A verifier with `config` and the current key set of `self` (a reload that changed
    /// the claims checked but not where the keys come from).
    pub fn reconfigured(&self, config: JwtConfig) -> Result<JwtVerifier, JwtError> {
        check_config(&config)?;
        Ok(JwtVerifier {
            config,
            keys: ArcSwap::new(self.keys.load_full()),
        })
    }

    /// How many keys the current set has (0 before the first successful fetch).
    pub fn key_count(&self) -> usize {
        self.keys.load().keys.len()
    }

    /// Installs a new key set (reload, rotation). On error the current set stays in use.
    pub fn replace_keys(&self, jwks_json: &str) -> Result<(), JwtError> {
        let keys = parse_jwks(jwks_json)?;
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// True when the token names a `kid` the current set does not have, i.e. a refetch of
    /// the JWKS might help. The kid is chosen by the client, so whoever refetches must rate
    /// limit it (e.g. at most once a minute) or an attacker can drive the fetches.
    pub fn needs_refresh(&self, token: &str) -> bool {
        let Ok(header) = parse_header(token) else {
            return false;
        };
        match header.get("kid") {
            Some(Value::String(kid)) => self.keys.load().find(kid).is_none(),
            _ => false,
        }
    }

    /// Verifies signature, `exp`/`nbf` (with leeway, against `now_unix`), `iss`, `aud` and
    /// the two identity claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<JwtIdentity, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TokenTooLarge);
        }
        let header = parse_header(token)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => match alg.as_str() {
                "RS256" => Algorithm::RS256,
                "ES256" => Algorithm::ES256,
                "EdDSA" => Algorithm::EdDSA,
                other => {
                    return Err(JwtError::DisallowedAlgorithm {
                        alg: for_log(other),
                    })
                }
            },
            Some(_) => return Err(JwtError::Malformed("alg is not a string")),
            None => return Err(JwtError::Malformed("header has no alg")),
        };
        if header.contains_key("crit") {
            return Err(JwtError::CriticalHeader);
        }

        let set = self.keys.load();
        let key = match header.get("kid") {
            Some(Value::String(kid)) => set
                .find(kid)
                .ok_or_else(|| JwtError::UnknownKid { kid: for_log(kid) })?,
            Some(_) => return Err(JwtError::Malformed("kid is not a string")),
            None => match set.keys.as_slice() {
                [only] => only,
                keys => return Err(JwtError::MissingKid { keys: keys.len() }),
            },
        };
        if key.alg != alg {
            return Err(JwtError::AlgorithmMismatch {
                header: for_log(alg_name(alg)),
                key: alg_name(key.alg),
            });
        }

        // The library checks the signature with exactly the key's algorithm; every claim
        // is checked below, against the caller's clock.
        let mut validation = Validation::new(key.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                LibErrorKind::InvalidSignature => JwtError::BadSignature,
                LibErrorKind::InvalidAlgorithm => JwtError::AlgorithmMismatch {
                    header: for_log(alg_name(alg)),
                    key: alg_name(key.alg),
                },
                LibErrorKind::Json(_) => JwtError::Malformed("claims are not a JSON object"),
                LibErrorKind::Base64(_) => JwtError::Malformed("part is not base64url"),
                _ => JwtError::Malformed("token could not be decoded"),
            })?
            .claims;
        self.check_claims(&claims, now_unix)
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<JwtIdentity, JwtError> {
        let leeway = self.config.leeway_secs;
        let exp = numeric_date(claims, "exp")?.ok_or(JwtError::MissingClaim("exp".into()))?;
        if now >= exp.saturating_add(leeway) {
            return Err(JwtError::Expired { exp, now, leeway });
        }
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if now.saturating_add(leeway) < nbf {
                return Err(JwtError::NotYetValid { nbf, now, leeway });
            }
        }
        match claims.get("iss") {
            Some(Value::String(iss)) if *iss == self.config.issuer => {}
            Some(Value::String(iss)) => return Err(JwtError::WrongIssuer { got: for_log(iss) }),
            Some(_) => return Err(JwtError::InvalidClaim("iss".into())),
            None => return Err(JwtError::MissingClaim("iss".into())),
        }
        let audience = self.config.audience.as_str();
        match claims.get("aud") {
            Some(Value::String(aud)) if aud == audience => {}
            Some(Value::Array(auds)) if auds.iter().any(|a| a.as_str() == Some(audience)) => {}
            Some(Value::String(_) | Value::Array(_)) => return Err(JwtError::WrongAudience),
            Some(_) => return Err(JwtError::InvalidClaim("aud".into())),
            None => return Err(JwtError::MissingClaim("aud".into())),
        }
        Ok(JwtIdentity {
            user: identity_claim(claims, &self.config.user_claim)?,
            role: identity_claim(claims, &self.config.role_claim)?,
            expires_at: exp,
        })
    }
}

fn check_config(config: &JwtConfig) -> Result<(), JwtError> {
    let JwtConfig {
        issuer,
        audience,
        role_claim,
        user_claim,
        leeway_secs: _,
    } = config;
    if issuer.is_empty() {
        return Err(JwtError::Config("issuer is empty"));
    }
    if audience.is_empty() {
        return Err(JwtError::Config("audience is empty"));
    }
    if role_claim.is_empty() || user_claim.is_empty() {
        return Err(JwtError::Config(
            "role_claim and user_claim must be claim names",
        ));
    }
    Ok(())
}

/// The decoded, parsed header (first segment) of a compact JWS.
fn parse_header(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed("header is not a JSON object")),
    }
}

/// `exp`/`nbf`: a non-negative number of seconds (RFC 7519 allows fractions; they are
/// truncated).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, JwtError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(secs) = value.as_u64() {
        return Ok(Some(secs));
    }
    match value.as_f64() {
        Some(secs) if secs.is_finite() && secs >= 0.0 && secs < u64::MAX as f64 => {
            Ok(Some(secs as u64))
        }
        _ => Err(JwtError::InvalidClaim(name.to_owned())),
    }
}

/// The user or role: a non-empty string of at most `MAX_IDENTITY_LEN` bytes without
/// control characters (it ends up in logs, spans and policy lookups).
fn identity_claim(claims: &Map<String, Value>, name: &str) -> Result<String, JwtError> {
    match claims.get(name) {
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= MAX_IDENTITY_LEN && !s.chars().any(char::is_control) =>
        {
            Ok(s.clone())
        }
        Some(_) => Err(JwtError::InvalidClaim(name.to_owned())),
        None => Err(JwtError::MissingClaim(name.to_owned())),
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "other",
    }
}

/// A client-chosen value made safe for a log line: at most 64 characters, printable ASCII.
fn for_log(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn parse_jwks(json: &str) -> Result<KeySet, JwtError> {
    if json.len() > MAX_JWKS_LEN {
        return Err(JwtError::JwksTooLarge);
    }
    let doc: Value = serde_json::from_str(json).map_err(|e| JwtError::JwksSyntax(e.to_string()))?;
    let Some(Value::Array(raw_keys)) = doc.get("keys") else {
        return Err(JwtError::JwksSyntax("no \"keys\" array".into()));
    };
    let mut keys: Vec<VerifyKey> = Vec::with_capacity(raw_keys.len());
    for (index, raw) in raw_keys.iter().enumerate() {
        if let Some(key) = parse_jwk(index, raw)? {
            if let Some(kid) = &key.kid {
                if keys.iter().any(|k| k.kid.as_ref() == Some(kid)) {
                    return Err(JwtError::JwksDuplicateKid(for_log(kid)));
                }
            }
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(JwtError::JwksEmpty);
    }
    Ok(KeySet { keys })
}

/// One JWK. Keys for encryption or for algorithms pgward never accepts (HMAC, PS*, RS384,
/// ...) are skipped: IdPs publish those next to the signing keys. A key that claims one of
/// our algorithms but is malformed fails the whole set, so a broken rotation is noticed
/// (and, on reload, the previous set stays).
fn parse_jwk(index: usize, raw: &Value) -> Result<Option<VerifyKey>, JwtError> {
    let kid_for_log = match raw.get("kid") {
        Some(Value::String(kid)) => for_log(kid),
        _ => "(none)".to_owned(),
    };
    let bad = |reason| JwtError::JwksKey {
        index,
        kid: kid_for_log.clone(),
        reason,
    };
    let declared_alg = raw.get("alg").and_then(Value::as_str);
    let ours = matches!(declared_alg, Some("RS256" | "ES256" | "EdDSA"));
    let jwk: Jwk = match serde_json::from_value(raw.clone()) {
        Ok(jwk) => jwk,
        Err(_) if ours => return Err(bad("not a valid JWK")),
        Err(_) => return Ok(None),
    };
    if let Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_)) = jwk.common.public_key_use {
        return Ok(None);
    }
    // The JWK's alg decides. Without one, the key type decides: an EC P-256 or Ed25519
    // key can only mean ES256 / EdDSA, and RS256 is the one RSA signature we accept.
    let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), _) | (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (Some(KeyAlgorithm::ES256), _) | (None, AlgorithmParameters::EllipticCurve(_)) => {
            Algorithm::ES256
        }
        (Some(KeyAlgorithm::EdDSA), _) | (None, AlgorithmParameters::OctetKeyPair(_)) => {
            Algorithm::EdDSA
        }
        _ => return Ok(None),
    };
    let key = match (alg, &jwk.algorithm) {
        (Algorithm::RS256, AlgorithmParameters::RSA(rsa)) => {
            let n = b64(&rsa.n).ok_or_else(|| bad("n is not base64url"))?;
            let e = b64(&rsa.e).ok_or_else(|| bad("e is not base64url"))?;
            let n_len = n.iter().skip_while(|b| **b == 0).count();
            if !(RSA_MIN_MODULUS_BYTES..=RSA_MAX_MODULUS_BYTES).contains(&n_len) {
                return Err(bad("RSA modulus must be 2048 to 8192 bits"));
            }
            if e.is_empty() || e.len() > 8 {
                return Err(bad("RSA exponent has an unusual size"));
            }
            DecodingKey::from_rsa_raw_components(&n, &e)
        }
        (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec)) => {
            if ec.curve != EllipticCurve::P256 {
                return Err(bad("ES256 needs curve P-256"));
            }
            // Exact lengths: the library's point decoding trusts them.
            let (Some(x), Some(y)) = (b64(&ec.x), b64(&ec.y)) else {
                return Err(bad("x or y is not base64url"));
            };
            if x.len() != 32 || y.len() != 32 {
                return Err(bad("P-256 coordinates must be 32 bytes"));
            }
            DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|_| bad("bad EC key"))?
        }
        (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(okp)) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err(bad("EdDSA needs curve Ed25519"));
            }
            // The library slices the first 32 bytes without checking: check here.
            if b64(&okp.x).map(|x| x.len()) != Some(32) {
                return Err(bad("Ed25519 public key must be 32 bytes"));
            }
            DecodingKey::from_ed_components(&okp.x).map_err(|_| bad("bad Ed25519 key"))?
        }
        _ => return Err(bad("key type does not match its alg")),
    };
    Ok(Some(VerifyKey {
        kid: jwk.common.key_id,
        alg,
        key,
    }))
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    /// A throwaway 2048-bit RSA key (PKCS#1), generated for these tests only: generating
    /// one per run in a debug build takes seconds.
    const RSA_PRIVATE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAtQTir+LTOl6SXmi0+WebrOFnkdnARPS8vopfj6ZPniQ9tm8W
oHuNJ6k2nNJN3YvX4un1IiiOOXDMUMn7bP2A0cPAofDXZuA2TW4Am3ppP/BNI85F
h9DQm4Pp/EVyZ4+zOvcM6kOAQqSdwYDJpJZAuQ/4zbO/xqcg0Wq8cltYkWnMIh4n
nV4uFSgvcIr28IR3EwtWC61n4x91f4FgtdOhSp2YQiloaCdmrNkP6tNkEBx0J4Lj
NSVy4hQS+hxZ0nDbbSJpk346UxWW8lnY5qMyxpdq2C1odT+hlqgT83HY2Elu5ky6
55TnXStByYWQB/bpVxIQOZ12WKtkRvQ9w/6vFwIDAQABAoIBAC/dmlma93LERhzr
wAsBABOvSLUy6JnzQyN5MHqqJfxxpdXjOw71jKYzourF22wdSdlJNxYwtibvMj+c
oTy5LcKJ6hqINlUQLZu83jE+pa0QDD3PEeivaTHuKEWaUX2b7G9Hm2UoszYsFEDy
Hp/EUVn+JLKz+J59W/q0KB9vExTj/ItfMAD794+m/Hk7uwcRKehxNBGuCRiYuOlE
ZP+RRfKsA/cg57qYysjAECbOd2C2i+TrjIOJ5LYWm9d5m5FNq88Tf9nSJp4GzE/k
8wSOhNgRkZ+bcig/9EY5SBEoHdujQrPX4bT7HPouIxkDjVDdJ7q5SesYDocKP4bH
JEXMMb0CgYEA10k4T9LFQ6NW78ViwUzcFQK6AXe7HUbgBh4EhvMDem8vRy1ea6mk
bOHowCFCbTcg+x/A/xYbx7m4oHlN2U2rvR41+linvJCewmj5w8E+cHeMy/YFacuy
Z892Nj7cZtHhEEva11cbqyYojmtnhAcxbKwg9zfL4v3ykWdoc6TtosUCgYEA10Ct
t3d1SKtRkXIloLxJvlEBO9Xw5/jwxXuDJ5F71IQceZ1laAPAALDcMWb68mI2adg8
L6qf3UBfYLdAXii72rhwYEpEiFHAU2Zlx1i8IAJpEroMQWiw/VOP7tmMmpYoOOrI
q1Hxuks3tw0Ya8vokf5eg/YzUOgAh0gvPxkoeCsCgYEAji+ZtX6rMmTqwilHdAtj
P60xVE7Tkh6BTwj8THSr020jeIsKVWkRY6hApMRSrvc+HR13xgHAD0UmHzZ+qAqY
ZqtRUyrCfdO2Rwg2DYfPyU/r+blfEeSqy81FccZKos3zK2QuARNS/tKQ7p8ZGyX1
CqUUkLKVQjIextHZNqezG1ECgYB+4MsEx89EJGeSGfyAADxfiBP4FyVHNv+FCEbI
vgKFw9GdBd/OLdexEI7aN99Xm/iC70iauDI/EkCmG54/YjdIt0rWFzDKQZXiEwuP
M4jAPWt99Fhg/brFt8mxel5ciIHw+sOJ6GVZ8BhJN9jbQXg3Bf7kPe0FlZsqIqxm
vweRvQKBgBYweX/17uLm7OBdMJNnnLBH30/3qziDcB61/j/MRCjGSSveBEVBXhQs
V5EEL8HnIM53+/uHsdyOct3F+vQ5GCqYtIAHq2DNCQsW+KA02rjBUW/KXdZS7EAn
PEoxSLSy7AAJYpRbla516Xte7ipskU0CvmaHP+fbx4d77hIxcIFK
-----END RSA PRIVATE KEY-----
";
    const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtQTir+LTOl6SXmi0+Web
rOFnkdnARPS8vopfj6ZPniQ9tm8WoHuNJ6k2nNJN3YvX4un1IiiOOXDMUMn7bP2A
0cPAofDXZuA2TW4Am3ppP/BNI85Fh9DQm4Pp/EVyZ4+zOvcM6kOAQqSdwYDJpJZA
uQ/4zbO/xqcg0Wq8cltYkWnMIh4nnV4uFSgvcIr28IR3EwtWC61n4x91f4FgtdOh
Sp2YQiloaCdmrNkP6tNkEBx0J4LjNSVy4hQS+hxZ0nDbbSJpk346UxWW8lnY5qMy
xpdq2C1odT+hlqgT83HY2Elu5ky655TnXStByYWQB/bpVxIQOZ12WKtkRvQ9w/6v
FwIDAQAB
-----END PUBLIC KEY-----
";

    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://idp.example.com";
    const AUD: &str = "pgward";

    struct Signer {
        kid: &'static str,
        alg: Algorithm,
        key: EncodingKey,
    }

    impl Signer {
        fn rsa(kid: &'static str) -> Signer {
            let key = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap();
            Signer {
                kid,
                alg: Algorithm::RS256,
                key,
            }
        }
        fn ec(kid: &'static str) -> Signer {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let key = EncodingKey::from_ec_der(&pair.serialize_der());
            Signer {
                kid,
                alg: Algorithm::ES256,
                key,
            }
        }
        fn ed(kid: &'static str) -> Signer {
            // ring writes PKCS#8 v2 (seed and public key); the RustCrypto backend wants
            // v1, so rewrap the seed, which sits at bytes 16..48 of ring's document.
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
            let v2 = pair.serialize_der();
            let mut v1 = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            v1.extend_from_slice(&v2[16..48]);
            let key = EncodingKey::from_ed_der(&v1);
            Signer {
                kid,
                alg: Algorithm::EdDSA,
                key,
            }
        }

        fn jwk(&self) -> Value {
            let mut jwk =
                serde_json::to_value(Jwk::from_encoding_key(&self.key, self.alg).unwrap()).unwrap();
            jwk["kid"] = json!(self.kid);
            jwk["use"] = json!("sig");
            jwk
        }

        fn sign(&self, claims: &Value) -> String {
            self.sign_with(self.alg, Some(self.kid), claims)
        }

        fn sign_with(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
            let mut header = Header::new(alg);
            header.kid = kid.map(str::to_owned);
            encode(&header, claims, &self.key).unwrap()
        }
    }

    fn jwks(signers: &[&Signer]) -> String {
        json!({ "keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>() }).to_string()
    }

    fn config() -> JwtConfig {
        JwtConfig::new(ISS, AUD, "pgward_role", "sub")
    }

    fn verifier(signers: &[&Signer]) -> JwtVerifier {
        JwtVerifier::from_jwks_json(config(), &jwks(signers)).unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": ISS,
            "aud": AUD,
            "sub": "alice",
            "pgward_role": "analyst",
            "exp": NOW + 300,
            "iat": NOW - 10,
        })
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn without(mut claims: Value, key: &str) -> Value {
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    fn b64json(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn alice() -> JwtIdentity {
        JwtIdentity {
            user: "alice".into(),
            role: "analyst".into(),
            expires_at: NOW + 300,
        }
    }

    #[test]
    fn accepts_rs256_es256_eddsa() {
        let (rsa, ec, ed) = (Signer::rsa("r1"), Signer::ec("e1"), Signer::ed("d1"));
        let v = verifier(&[&rsa, &ec, &ed]);
        for signer in [&rsa, &ec, &ed] {
            assert_eq!(
                v.verify(&signer.sign(&claims()), NOW).unwrap(),
                alice(),
                "{:?}",
                signer.alg
            );
        }
    }

    #[test]
    fn exp_is_required_and_honoured_with_leeway() {
        let ec = Signer::ec("e1");
        let v = verifier(&[&ec]);
        let expired = with(claims(), "exp", json!(NOW - 31));
        assert!(matches!(
            v.verify(&ec.sign(&expired), NOW),
            Err(JwtError::Expired { .. })
        ));
        let within_leeway = with(claims(), "exp", json!(NOW - 29));
        assert!(v.verify(&ec.sign(&within_leeway), NOW).is_ok());
        let no_exp = without(claims(), "exp");
        assert!(
            matches!(v.verify(&ec.sign(&no_exp), NOW), Err(JwtError::MissingClaim(c)) if c == "exp")
        );
        let text_exp = with(claims(), "exp", json!("tomorrow"));
        assert!(matches!(
            v.verify(&ec.sign(&text_exp), NOW),
            Err(JwtError::InvalidClaim(_))
        ));
    }

    #[test]
    fn nbf_is_honoured_with_leeway() {
        let ec = Signer::ec("e1");
        let v = verifier(&[&ec]);
        let future = with(claims(), "nbf", json!(NOW + 60));
        assert!(matches!(
            v.verify(&ec.sign(&future), NOW),
            Err(JwtError::NotYetValid { .. })
        ));
        let skewed = with(claims(), "nbf", json!(NOW + 20));
        assert!(v.verify(&ec.sign(&skewed), NOW).is_ok());
    }

    #[test]
    fn issuer_must_match_exactly() {
        let ec = Signer::ec("e1");
        let v = verifier(&[&ec]);
        for iss in ["https://evil.example.com", "https://idp.example.com/", ""] {
            let token = ec.sign(&with(claims(), "iss", json!(iss)));
            assert!(
                matches!(v.verify(&token, NOW), Err(JwtError::WrongIssuer { .. })),
                "{iss}"
            );
        }
        let token = ec.sign(&without(claims(), "iss"));
        assert!(matches!(
            v.verify(&token, NOW),
            Err(JwtError::MissingClaim(_))
        ));
    }

    #[test]
    fn audience_string_or_array() {
        let ec = Signer::ec("e1");
        let v = verifier(&[&ec]);
        let wrong = ec.sign(&with(claims(), "aud", json!("other-service")));
        assert!(matches!(
            v.verify(&wrong, NOW),
            Err(JwtError::WrongAudience)
        ));
        let array = ec.sign(&with(claims(), "aud", json!(["other-service", AUD])));
        assert_eq!(v.verify(&array, NOW).unwrap(), alice());
        let array_without = ec.sign(&with(claims(), "aud", json!(["a", "b"])));
        assert!(matches!(
            v.verify(&array_without, NOW),
            Err(JwtError::WrongAudience)
        ));
        let missing = ec.sign(&without(claims(), "aud"));
        assert!(matches!(
            v.verify(&missing, NOW),
            Err(JwtError::MissingClaim(_))
        ));
    }

    #[test]
    fn identity_claims_must_be_non_empty_strings() {
        let ec = Signer::ec("e1");
        let v = verifier(&[&ec]);
        let missing_role = ec.sign(&without(claims(), "pgward_role"));
        assert!(
            matches!(v.verify(&missing_role, NOW), Err(JwtError::MissingClaim(c)) if c == "pgward_role")
        );
        for bad in [json!(""), json!(["analyst"]), json!(7), json!("ana\nlyst")] {
            let token = ec.sign(&with(claims(), "pgward_role", bad.clone()));
            assert!(
                matches!(v.verify(&token, NOW), Err(JwtError::InvalidClaim(_))),
                "{bad}"
            );
        }
        let empty_user = ec.sign(&with(claims(), "sub", json!("")));
        assert!(matches!(v.verify(&empty_user, NOW), Err(JwtError::InvalidClaim(c)) if c == "sub"));
    }

    #[test]
    fn unknown_kid_is_refused_and_asks_for_refresh() {
        let (ec, other) = (Signer::ec("e1"), Signer::ec("e2"));
        let v = verifier(&[&ec]);
        let token = other.sign(&claims());
        assert!(matches!(v.verify(&token, NOW), Err(JwtError::UnknownKid { kid }) if kid == "e2"));
        assert!(v.needs_refresh(&token));
        assert!(!v.needs_refresh(&ec.sign(&claims())));
        assert!(!v.needs_refresh("garbage"));
    }

    #[test]
    fn missing_kid_only_with_a_single_key() {
        let (ec, ed) = (Signer::ec("e1"), Signer::ed("d1"));
        let token = ec.sign_with(Algorithm::ES256, None, &claims());
        assert_eq!(verifier(&[&ec]).verify(&token, NOW).unwrap(), alice());
        let two = verifier(&[&ec, &ed]);
        assert!(matches!(
            two.verify(&token, NOW),
            Err(JwtError::MissingKid { keys: 2 })
        ));
        assert!(!two.needs_refresh(&token));
    }

    #[test]
    fn alg_none_is_refused() {
        let rsa = Signer::rsa("r1");
        let v = verifier(&[&rsa]);
        for header in [
            json!({"alg": "none"}),
            json!({"alg": "none", "kid": "r1"}),
            json!({"alg": "None"}),
        ] {
            let token = format!("{}.{}.", b64json(&header), b64json(&claims()));
            let err = v.verify(&token, NOW).unwrap_err();
            assert!(matches!(err, JwtError::DisallowedAlgorithm { .. }), "{err}");
        }
        // The literal token from the brief.
        let token = format!("eyJhbGciOiJub25lIn0.{}.", b64json(&claims()));
        assert!(matches!(
            v.verify(&token, NOW),
            Err(JwtError::DisallowedAlgorithm { .. })
        ));
    }

    #[test]
    fn hs256_signed_with_the_rsa_public_key_is_refused() {
        // The HS/RS confusion attack: the public key is public, so an HS256 token "signed"
        // with its bytes would verify if the verifier trusted the header's alg.
        let rsa = Signer::rsa("r1");
        let v = verifier(&[&rsa]);
        let forger = EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes()).unwrap();
        for kid in [Some("r1"), None] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = kid.map(str::to_owned);
            let token = encode(&header, &claims(), &forger).unwrap();
            let err = v.verify(&token, NOW).unwrap_err();
            assert!(
                matches!(err, JwtError::DisallowedAlgorithm { ref alg } if alg == "HS256"),
                "{err}"
            );
            assert!(!err.to_string().contains(&token));
        }
    }

    #[test]
    fn header_alg_must_equal_the_key_alg() {
        let (rsa, ec) = (Signer::rsa("r1"), Signer::ec("e1"));
        let v = verifier(&[&rsa, &ec]);
        // Signed with RSA but naming the EC key.
        let token = rsa.sign_with(Algorithm::RS256, Some("e1"), &claims());
        let err = v.verify(&token, NOW).unwrap_err();
        assert!(
            matches!(err, JwtError::AlgorithmMismatch { key: "ES256", .. }),
            "{err}"
        );
        // An EdDSA/ES256 header naming the RSA key.
        let token = ec.sign_with(Algorithm::ES256, Some("r1"), &claims());
        assert!(matches!(
            v.verify(&token, NOW),
            Err(JwtError::AlgorithmMismatch { key: "RS256", .. })
        ));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let ec = Signer::ec("e1");
        let v = verifier(&[&ec]);
        let token = ec.sign(&claims());
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{sig}",
            b64json(&with(claims(), "pgward_role", json!("migrator")))
        );
        assert!(matches!(
            v.verify(&forged, NOW),
            Err(JwtError::BadSignature)
        ));
        // Signed by a different key under the same kid.
        let impostor = Signer::ec("e1");
        assert!(matches!(
            v.verify(&impostor.sign(&claims()), NOW),
            Err(JwtError::BadSignature)
        ));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let ec = Signer::ec("e1");
        let v = verifier(&[&ec]);
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let header = b64json(&json!({"alg": "ES256", "kid": "e1"}));
        let inputs = [
            "".to_owned(),
            "garbage".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "!!!.???.###".to_owned(),
            format!("{}.e30.", b64json(&json!([1, 2]))),
            format!("{}.e30.", b64json(&json!({"kid": "e1"}))),
            format!("{}.e30.", b64json(&json!({"alg": 256}))),
            format!("{header}.bm90IGpzb24.AAAA"),
            format!("{header}.{}.!!", b64json(&claims())),
            format!("{header}.{}.", b64json(&claims())),
            format!(
                "{}.{}.AAAA",
                b64json(&json!({"alg": "ES256", "kid": "e1", "crit": ["exp"]})),
                b64json(&claims())
            ),
            long,
        ];
        for input in &inputs {
            let err = v.verify(input, NOW).unwrap_err();
            assert!(!err.to_string().contains("bm90IGpzb24"), "{err}");
            let _ = v.needs_refresh(input);
        }
    }

    #[test]
    fn rotation_accepts_new_keys_and_refuses_old_ones() {
        let (old, new) = (Signer::ec("2025"), Signer::ed("2026"));
        let v = verifier(&[&old]);
        let old_token = old.sign(&claims());
        let new_token = new.sign(&claims());
        assert!(v.verify(&old_token, NOW).is_ok());
        assert!(v.needs_refresh(&new_token));
        v.replace_keys(&jwks(&[&new])).unwrap();
        assert_eq!(v.verify(&new_token, NOW).unwrap(), alice());
        assert!(matches!(
            v.verify(&old_token, NOW),
            Err(JwtError::UnknownKid { .. })
        ));
        // A broken set is refused and the current one stays.
        assert!(v.replace_keys("{\"keys\": []}").is_err());
        assert!(v.replace_keys("not json").is_err());
        assert!(v.verify(&new_token, NOW).is_ok());
    }

    #[test]
    fn jwks_loading_rules() {
        let (ec, ed) = (Signer::ec("e1"), Signer::ed("d1"));
        let hmac = json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "h1"});
        let enc = with(ec.jwk(), "use", json!("enc"));
        let set = json!({"keys": [hmac, enc, ed.jwk()]}).to_string();
        let v = JwtVerifier::from_jwks_json(config(), &set).unwrap();
        assert!(matches!(
            v.verify(&ec.sign(&claims()), NOW),
            Err(JwtError::UnknownKid { .. })
        ));
        assert!(v.verify(&ed.sign(&claims()), NOW).is_ok());

        let only_hmac = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]});
        assert!(matches!(
            JwtVerifier::from_jwks_json(config(), &only_hmac.to_string()),
            Err(JwtError::JwksEmpty)
        ));
        let dup = jwks(&[&ec, &Signer::ec("e1")]);
        assert!(matches!(
            JwtVerifier::from_jwks_json(config(), &dup),
            Err(JwtError::JwksDuplicateKid(_))
        ));
        let short_ed = with(ed.jwk(), "x", json!("AAAA"));
        let err = JwtVerifier::from_jwks_json(config(), &json!({"keys": [short_ed]}).to_string())
            .unwrap_err();
        assert!(matches!(err, JwtError::JwksKey { .. }), "{err}");
        let lying_alg = with(ec.jwk(), "alg", json!("RS256"));
        let err = JwtVerifier::from_jwks_json(config(), &json!({"keys": [lying_alg]}).to_string())
            .unwrap_err();
        assert!(matches!(err, JwtError::JwksKey { .. }), "{err}");
        // No alg in the JWK: the key type decides.
        let bare = without(ec.jwk(), "alg");
        let v =
            JwtVerifier::from_jwks_json(config(), &json!({"keys": [bare]}).to_string()).unwrap();
        assert!(v.verify(&ec.sign(&claims()), NOW).is_ok());
        let mut cfg = config();
        cfg.audience.clear();
        assert!(matches!(
            JwtVerifier::from_jwks_json(cfg, &jwks(&[&ec])),
            Err(JwtError::Config(_))
        ));
    }

    #[test]
    fn jwks_file_and_source() {
        let ec = Signer::ec("e1");
        let dir = std::env::temp_dir().join(format!("pgward-jwt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks(&[&ec])).unwrap();
        let v = JwtVerifier::from_jwks_json(config(), &read_jwks_file(&path).unwrap()).unwrap();
        assert!(v.verify(&ec.sign(&claims()), NOW).is_ok());
        assert!(matches!(
            read_jwks_file(&dir.join("missing.json")),
            Err(JwtError::JwksIo { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(
            JwksSource::parse("certs/jwks.json").unwrap(),
            JwksSource::File("certs/jwks.json".into())
        );
        assert_eq!(
            JwksSource::parse("https://idp.example.com/.well-known/jwks.json").unwrap(),
            JwksSource::Https("https://idp.example.com/.well-known/jwks.json".into())
        );
        assert!(JwksSource::parse("http://idp.example.com/jwks").is_err());
    }
}
