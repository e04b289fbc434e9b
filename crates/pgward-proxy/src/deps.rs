//! What every session shares: configuration, TLS configs, users, policy gate, catalogs
//! and the cancel registry. No globals (STYLE rule 9): one `Deps`, passed to `run`.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use pgward_policy::Policy;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tracing::{info, warn};

use crate::cancel::CancelRegistry;
use crate::catalog::CatalogStore;
use crate::config::Config;
use crate::error::ConfigError;
use crate::gate::Gate;
use crate::jwks::JwksVerifier;
use crate::limits::{LockoutPolicy, LoginGuard, SessionLimiter, StatementRates};
use crate::observe::Observe;
use crate::pool::UpstreamPool;
use crate::tls;
use crate::users::Users;

pub struct Deps {
    pub config: Config,
    pub server_tls: ArcSwap<ServerConfig>,
    /// The client-facing certificate (PEM), for SCRAM channel binding.
    pub server_cert_pem: ArcSwap<Vec<u8>>,
    pub upstream_tls: ArcSwap<ClientConfig>,
    pub upstream_name: ServerName<'static>,
    pub users: ArcSwap<Users>,
    /// Verifies JWT logins when the users file has a `jwt:` section.
    pub jwt: ArcSwapOption<JwksVerifier>,
    pub gate: Gate,
    pub catalogs: Arc<CatalogStore>,
    pub cancel: Arc<CancelRegistry>,
    /// Idle upstream sessions kept for the next login with the same startup packet.
    pub pool: Arc<UpstreamPool>,
    pub observe: Observe,
    pub sessions: SessionLimiter,
    /// Token buckets per login.
    pub rates: StatementRates,
    /// Token buckets shared by all sessions of a role (`limits.roles.<role>`).
    pub role_rates: StatementRates,
    pub logins: LoginGuard,
    /// Per-process key for deterministic mock SCRAM salts of unknown users, so a
    /// probe cannot tell an unknown user from a wrong password.
    pub mock_salt_key: [u8; 32],
}

/// The JWT verifier for the users file's `jwt:` section. An https key source is fetched
/// in the background (see `jwks`); `previous` is kept when its source is unchanged.
fn load_jwt(
    users: &Users,
    previous: Option<&Arc<JwksVerifier>>,
) -> Result<Option<Arc<JwksVerifier>>, ConfigError> {
    let Some(settings) = &users.jwt else {
        return Ok(None);
    };
    JwksVerifier::start(settings, previous).map(Some)
}

fn read_cert_pem(config: &Config) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(&config.tls.cert).map_err(|source| ConfigError::Read {
        path: config.tls.cert.display().to_string(),
        source,
    })
}

fn load_policy(config: &Config) -> Result<Policy, ConfigError> {
    Policy::load_dir(&config.policies).map_err(|e| ConfigError::Invalid {
        path: config.policies.display().to_string(),
        message: e.to_string(),
    })
}

impl Deps {
    /// Builds everything a server needs from a checked config: TLS files, users file,
    /// policies. Any error here stops the server from starting.
    pub fn from_config(config: Config) -> Result<Arc<Deps>, ConfigError> {
        let server_tls = tls::server_config(&config.tls)?;
        let server_cert_pem = read_cert_pem(&config)?;
        let upstream_tls = tls::upstream_config(&config.upstream)?;
        let upstream_name = tls::upstream_server_name(&config.upstream)?;
        let users = Users::load(&config.users)?;
        let jwt = load_jwt(&users, None)?;
        let policy = load_policy(&config)?;
        let observe = Observe::new(&config)?;
        let catalogs = Arc::new(CatalogStore::new(
            config.upstream.clone(),
            (*upstream_tls).clone(),
        ));
        Ok(Arc::new(Deps {
            server_tls: ArcSwap::new(server_tls),
            server_cert_pem: ArcSwap::from_pointee(server_cert_pem),
            upstream_tls: ArcSwap::new(upstream_tls),
            upstream_name,
            users: ArcSwap::from_pointee(users),
            jwt: ArcSwapOption::new(jwt),
            gate: Gate::new(policy),
            catalogs,
            cancel: Arc::new(CancelRegistry::default()),
            pool: UpstreamPool::new(config.upstream.pool.clone()),
            observe,
            sessions: SessionLimiter::new(),
            rates: StatementRates::new(),
            role_rates: StatementRates::new(),
            logins: LoginGuard::new(LockoutPolicy {
                free_attempts: (config.limits.login_lockout_after / 2).max(1),
                lockout_after: config.limits.login_lockout_after,
                lockout_for: config.limits.login_lockout,
                ..LockoutPolicy::default()
            }),
            mock_salt_key: rand::random(),
            config,
        }))
    }

    /// Re-reads policies, users and TLS files. Each part is swapped in only if it
    /// loaded cleanly; a broken part keeps the previous one and is reported.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let policy = load_policy(&self.config);
        let previous_jwt = self.jwt.load_full();
        let users = Users::load(&self.config.users)
            .and_then(|u| load_jwt(&u, previous_jwt.as_ref()).map(|jwt| (u, jwt)));
        let server_tls = tls::server_config(&self.config.tls);
        let upstream_tls = tls::upstream_config(&self.config.upstream);
        let mut first_error = None;
        match policy {
            Ok(p) => {
                info!(version = p.version(), "policies reloaded");
                self.gate.replace_policy(p);
                self.observe.metrics.policy_reload(true);
            }
            Err(e) => {
                warn!(error = %e, "policy reload failed; keeping the previous policy");
                self.observe.metrics.policy_reload(false);
                first_error.get_or_insert(e);
            }
        }
        match users {
            Ok((u, jwt)) => {
                self.users.store(Arc::new(u));
                let kept = jwt.clone();
                // The replaced verifier's refresher ends now, not when its last login does.
                if let Some(old) = self.jwt.swap(jwt) {
                    if !kept.is_some_and(|new| Arc::ptr_eq(&new, &old)) {
                        old.stop();
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "users reload failed; keeping the previous users");
                first_error.get_or_insert(e);
            }
        }
        match (server_tls, upstream_tls, read_cert_pem(&self.config)) {
            (Ok(s), Ok(u), Ok(pem)) => {
                self.server_tls.store(s);
                self.catalogs.set_tls(u.clone());
                self.upstream_tls.store(u);
                // Sessions made with the previous certificate are never handed out again.
                self.pool.clear();
                self.server_cert_pem.store(Arc::new(pem));
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                warn!(error = %e, "TLS reload failed; keeping the previous certificates");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
