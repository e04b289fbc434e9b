//! What every session shares: configuration, TLS configs, users, the cancel registry
//! and the gate. No globals (STYLE rule 9): one `Deps`, passed to `run`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;

use crate::cancel::CancelRegistry;
use crate::config::Config;
use crate::error::ConfigError;
use crate::gate::AllowAllStandIn;
use crate::tls;
use crate::users::Users;

pub struct Deps {
    pub config: Config,
    pub server_tls: ArcSwap<ServerConfig>,
    pub upstream_tls: ArcSwap<ClientConfig>,
    pub upstream_name: ServerName<'static>,
    pub users: ArcSwap<Users>,
    pub cancel: Arc<CancelRegistry>,
    pub gate: AllowAllStandIn,
    /// Per-process key for deterministic mock SCRAM salts of unknown users, so a
    /// probe cannot tell an unknown user from a wrong password.
    pub mock_salt_key: [u8; 32],
}

impl Deps {
    /// Builds everything a server needs from a checked config, reading the TLS files
    /// and the users file.
    pub fn from_config(config: Config) -> Result<Arc<Deps>, ConfigError> {
        let server_tls = tls::server_config(&config.tls)?;
        let upstream_tls = tls::upstream_config(&config.upstream)?;
        let upstream_name = tls::upstream_server_name(&config.upstream)?;
        let users = Users::load(&config.users)?;
        Ok(Arc::new(Deps {
            server_tls: ArcSwap::new(server_tls),
            upstream_tls: ArcSwap::new(upstream_tls),
            upstream_name,
            users: ArcSwap::from_pointee(users),
            cancel: Arc::new(CancelRegistry::default()),
            gate: AllowAllStandIn,
            mock_salt_key: rand::random(),
            config,
        }))
    }

    /// Re-reads the users file and TLS files; keeps the old ones if anything fails.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let users = Users::load(&self.config.users)?;
        let server_tls = tls::server_config(&self.config.tls)?;
        let upstream_tls = tls::upstream_config(&self.config.upstream)?;
        self.users.store(Arc::new(users));
        self.server_tls.store(server_tls);
        self.upstream_tls.store(upstream_tls);
        Ok(())
    }
}
