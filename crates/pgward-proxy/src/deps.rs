//! What every session shares: configuration, TLS configs, users, policy gate, catalogs
//! and the cancel registry. No globals (STYLE rule 9): one `Deps`, passed to `run`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use pgward_policy::Policy;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tracing::{info, warn};

use crate::cancel::CancelRegistry;
use crate::catalog::CatalogStore;
use crate::config::Config;
use crate::error::ConfigError;
use crate::gate::Gate;
use crate::observe::Observe;
use crate::tls;
use crate::users::Users;

pub struct Deps {
    pub config: Config,
    pub server_tls: ArcSwap<ServerConfig>,
    pub upstream_tls: ArcSwap<ClientConfig>,
    pub upstream_name: ServerName<'static>,
    pub users: ArcSwap<Users>,
    pub gate: Gate,
    pub catalogs: Arc<CatalogStore>,
    pub cancel: Arc<CancelRegistry>,
    pub observe: Observe,
    /// Per-process key for deterministic mock SCRAM salts of unknown users, so a
    /// probe cannot tell an unknown user from a wrong password.
    pub mock_salt_key: [u8; 32],
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
        let upstream_tls = tls::upstream_config(&config.upstream)?;
        let upstream_name = tls::upstream_server_name(&config.upstream)?;
        let users = Users::load(&config.users)?;
        let policy = load_policy(&config)?;
        let observe = Observe::new(&config)?;
        let catalogs = Arc::new(CatalogStore::new(
            config.upstream.clone(),
            (*upstream_tls).clone(),
        ));
        Ok(Arc::new(Deps {
            server_tls: ArcSwap::new(server_tls),
            upstream_tls: ArcSwap::new(upstream_tls),
            upstream_name,
            users: ArcSwap::from_pointee(users),
            gate: Gate::new(policy),
            catalogs,
            cancel: Arc::new(CancelRegistry::default()),
            observe,
            mock_salt_key: rand::random(),
            config,
        }))
    }

    /// Re-reads policies, users and TLS files. Each part is swapped in only if it
    /// loaded cleanly; a broken part keeps the previous one and is reported.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let policy = load_policy(&self.config);
        let users = Users::load(&self.config.users);
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
            Ok(u) => self.users.store(Arc::new(u)),
            Err(e) => {
                warn!(error = %e, "users reload failed; keeping the previous users");
                first_error.get_or_insert(e);
            }
        }
        match (server_tls, upstream_tls) {
            (Ok(s), Ok(u)) => {
                self.server_tls.store(s);
                self.upstream_tls.store(u);
            }
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "TLS reload failed; keeping the previous certificates");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
