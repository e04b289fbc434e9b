//! Phase 2: client authentication, terminated at pgward.
//!
//! SCRAM-SHA-256 against verifiers from the users file (pgwire's `ScramServerAuth`), or
//! a client certificate whose CN equals the user name. Every failure looks the same to
//! the client as PostgreSQL's own (28P01 / 28000); the reason goes to the log only.
//! Unknown users get a full mock SCRAM exchange so they cannot be told apart from a
//! wrong password.

use std::net::SocketAddr;

use bytes::Bytes;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramSecret, ScramServerAuth};
use pgwire::api::auth::sasl::{SCRAM_SHA_256_METHOD, SCRAM_SHA_256_PLUS_METHOD};
use pgwire::messages::startup::{Authentication, NegotiateProtocolVersion};

use crate::conn::ClientConn;
use crate::deps::Deps;
use crate::error::SessionError;
use crate::frame::BodyReader;
use crate::handshake::TlsInfo;
use crate::jwks::JwksVerifier;
use crate::limits::LoginVerdict;
use crate::startup::StartupPacket;
use crate::users::{Credential, JwtSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Scram,
    Cert,
    Jwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Scram => "scram-sha-256",
            AuthMethod::Cert => "cert",
            AuthMethod::Jwt => "jwt",
        }
    }
}

/// Who the client proved to be.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: String,
    pub role: String,
    pub upstream_user: String,
    pub database: String,
    pub method: AuthMethod,
}

fn password_failed(user: &str, reason: impl Into<String>) -> SessionError {
    SessionError::Auth {
        sqlstate: "28P01",
        client: format!("password authentication failed for user \"{user}\""),
        reason: reason.into(),
    }
}

fn cert_failed(user: &str, reason: impl Into<String>) -> SessionError {
    SessionError::Auth {
        sqlstate: "28000",
        client: format!("certificate authentication failed for user \"{user}\""),
        reason: reason.into(),
    }
}

/// Authenticates the client. Not cancel-safe; runs under the authentication timeout.
#[tracing::instrument(name = "pgward.auth", skip_all)]
pub async fn authenticate(
    client: &mut ClientConn,
    startup: &StartupPacket,
    peer: SocketAddr,
    tls: &TlsInfo,
    deps: &Deps,
) -> Result<Authenticated, SessionError> {
    // Brute force: an address with recent failures is slowed down, then locked out.
    match deps.logins.check(peer.ip(), std::time::Instant::now()) {
        LoginVerdict::Allowed => {}
        LoginVerdict::Delay(d) => tokio::time::sleep(d).await,
        LoginVerdict::LockedOut { .. } => {
            return Err(SessionError::Auth {
                sqlstate: "28000",
                client:
                    "too many failed authentication attempts from this address; try again later"
                        .into(),
                reason: "client address locked out after repeated failures".into(),
            })
        }
    }
    let outcome = authenticate_inner(client, startup, peer, tls, deps).await;
    match &outcome {
        Ok(_) => deps.logins.succeeded(peer.ip()),
        Err(SessionError::Auth { .. }) => {
            if deps
                .logins
                .failed(peer.ip(), std::time::Instant::now())
                .is_some()
            {
                deps.observe.metrics.auth_failure("lockout");
            }
        }
        Err(_) => {}
    }
    outcome
}

async fn authenticate_inner(
    client: &mut ClientConn,
    startup: &StartupPacket,
    peer: SocketAddr,
    tls: &TlsInfo,
    deps: &Deps,
) -> Result<Authenticated, SessionError> {
    negotiate_protocol(client, startup).await?;
    let name = startup
        .param("user")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| SessionError::Auth {
            sqlstate: "28000",
            client: "no PostgreSQL user name specified in startup packet".into(),
            reason: "startup packet without user".into(),
        })?
        .to_owned();
    if startup
        .param("replication")
        .is_some_and(|v| v != "false" && v != "0" && v != "off")
    {
        return Err(SessionError::Auth {
            sqlstate: "28000",
            client: "replication connections are not supported through pgward".into(),
            reason: "replication startup parameter".into(),
        });
    }
    let database = startup
        .param("database")
        .filter(|d| !d.is_empty())
        .unwrap_or(&name)
        .to_owned();

    let users = deps.users.load();
    let Some(user) = users.get(&name) else {
        if let (Some(settings), Some(verifier)) = (&users.jwt, deps.jwt.load_full()) {
            return jwt_login(client, &name, database, tls, settings, &verifier).await;
        }
        let pem = tls.encrypted.then(|| deps.server_cert_pem.load_full());
        let _ = scram_exchange(
            client,
            mock_secret(&name, deps),
            pem.as_deref().map(Vec::as_slice),
        )
        .await;
        return Err(password_failed(&name, "unknown user"));
    };
    if !user.source_allowed(peer.ip()) {
        return Err(SessionError::Auth {
            sqlstate: "28000",
            client: format!(
                "no access rule for host \"{}\", user \"{name}\", database \"{database}\"",
                peer.ip()
            ),
            reason: "client address not in the user's source allowlist".into(),
        });
    }
    let method = match &user.credential {
        Credential::Cert => {
            match tls.peer_cn.as_deref() {
                Some(cn) if cn == name => {}
                Some(cn) => {
                    return Err(cert_failed(
                        &name,
                        format!("certificate CN \"{cn}\" is not the user name"),
                    ))
                }
                None => {
                    return Err(SessionError::Auth {
                        sqlstate: "28000",
                        client: "connection requires a valid client certificate".into(),
                        reason: "no verified client certificate".into(),
                    })
                }
            }
            AuthMethod::Cert
        }
        Credential::Scram(verifier) => {
            let pem = tls.encrypted.then(|| deps.server_cert_pem.load_full());
            match scram_exchange(
                client,
                verifier.to_secret(),
                pem.as_deref().map(Vec::as_slice),
            )
            .await?
            {
                ScramOutcome::Ok => {}
                ScramOutcome::Failed(reason) => return Err(password_failed(&name, reason)),
            }
            AuthMethod::Scram
        }
    };
    Ok(Authenticated {
        role: user.role.clone(),
        upstream_user: user.upstream_user.clone(),
        user: name,
        database,
        method,
    })
}

/// A short-lived token as the password (cleartext password message, TLS only): the
/// token's signature, expiry, issuer and audience are verified, its user claim must be
/// the login name, its role claim names the policy role.
async fn jwt_login(
    client: &mut ClientConn,
    name: &str,
    database: String,
    tls: &TlsInfo,
    settings: &JwtSettings,
    verifier: &JwksVerifier,
) -> Result<Authenticated, SessionError> {
    if !tls.encrypted {
        return Err(SessionError::Auth {
            sqlstate: "28000",
            client: "token authentication requires TLS".into(),
            reason: "JWT login over plaintext refused".into(),
        });
    }
    client.w.push_message(&Authentication::CleartextPassword)?;
    client.w.flush().await?;
    let body = client.read_password_message().await?;
    let token = BodyReader::new(&body)
        .cstr()
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let identity = verifier
        .verify(token, now)
        .await
        .map_err(|e| password_failed(name, format!("JWT refused: {e}")))?;
    if identity.user != name {
        return Err(password_failed(
            name,
            "JWT user claim is not the login name",
        ));
    }
    Ok(Authenticated {
        upstream_user: settings
            .upstream_user
            .clone()
            .unwrap_or_else(|| identity.user.clone()),
        role: identity.role,
        user: identity.user,
        database,
        method: AuthMethod::Jwt,
    })
}

/// Protocol 3.x with x > 0, or `_pq_.` options: tell the client we speak 3.0 only.
async fn negotiate_protocol(
    client: &mut ClientConn,
    startup: &StartupPacket,
) -> Result<(), SessionError> {
    let unsupported: Vec<String> = startup
        .params
        .iter()
        .filter(|(k, _)| k.starts_with("_pq_."))
        .map(|(k, _)| k.clone())
        .collect();
    if startup.minor > 0 || !unsupported.is_empty() {
        client
            .w
            .push_message(&NegotiateProtocolVersion::new(0, unsupported))?;
        client.w.flush().await?;
    }
    Ok(())
}

enum ScramOutcome {
    Ok,
    Failed(String),
}

/// Runs a SCRAM-SHA-256 exchange. Protocol errors end the session; a wrong proof is
/// `Failed` with the reason for the log.
/// Over TLS, SCRAM-SHA-256-PLUS (tls-server-end-point channel binding to pgward's
/// certificate) is offered first, as PostgreSQL does; a client that can bind but claims
/// the server cannot (a downgrade) is refused by the state machine.
async fn scram_exchange(
    client: &mut ClientConn,
    secret: ScramSecret,
    server_cert_pem: Option<&[u8]>,
) -> Result<ScramOutcome, SessionError> {
    let mut server = ScramServerAuth::new();
    let plus = match server_cert_pem {
        Some(pem) => match server.configure_certificate(pem) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "channel binding unavailable for this certificate");
                server = ScramServerAuth::new();
                false
            }
        },
        None => false,
    };
    let mut mechanisms = Vec::with_capacity(2);
    if plus {
        mechanisms.push(SCRAM_SHA_256_PLUS_METHOD.to_owned());
    }
    mechanisms.push(SCRAM_SHA_256_METHOD.to_owned());
    client.w.push_message(&Authentication::SASL(mechanisms))?;
    client.w.flush().await?;

    let body = client.read_password_message().await?;
    let mut r = BodyReader::new(&body);
    let mechanism = r.cstr().ok_or_else(|| bad_sasl("initial response"))?;
    let offered = mechanism == SCRAM_SHA_256_METHOD.as_bytes()
        || (plus && mechanism == SCRAM_SHA_256_PLUS_METHOD.as_bytes());
    if !offered {
        return Ok(ScramOutcome::Failed(format!(
            "unsupported SASL mechanism {}",
            String::from_utf8_lossy(mechanism)
        )));
    }
    let len = r
        .i32()
        .and_then(|l| usize::try_from(l).ok())
        .ok_or_else(|| bad_sasl("initial response length"))?;
    let client_first = r
        .bytes(len)
        .ok_or_else(|| bad_sasl("initial response data"))?;

    let (server_first, waiting) =
        match server.on_client_first_message_with_secret(client_first, secret) {
            Ok(v) => v,
            Err(e) => return Ok(ScramOutcome::Failed(format!("client-first: {e}"))),
        };
    client
        .w
        .push_message(&Authentication::SASLContinue(Bytes::from(server_first)))?;
    client.w.flush().await?;

    let client_final = client.read_password_message().await?;
    match waiting.on_client_final_message(&client_final) {
        Ok(server_final) => {
            client
                .w
                .push_message(&Authentication::SASLFinal(Bytes::from(server_final)))?;
            Ok(ScramOutcome::Ok)
        }
        Err(e) => Ok(ScramOutcome::Failed(format!("client-final: {e}"))),
    }
}

fn bad_sasl(what: &str) -> SessionError {
    SessionError::Protocol(format!("malformed SASL {what}"))
}

/// A verifier no password matches, with a salt that is stable per user name (so
/// repeated probes see the same salt, as for a real user).
fn mock_secret(user: &str, deps: &Deps) -> ScramSecret {
    let derived = gen_salted_password(user, &deps.mock_salt_key, 1);
    let salt = derived.get(..16).unwrap_or(&derived).to_vec();
    let random_key: [u8; 32] = rand::random();
    ScramSecret::verifier_from_salted_password(salt, random_key.to_vec(), 4096)
}
