//! `pgward.yaml`: raw (as written) and checked (as used) configuration.
//!
//! STYLE rule 1: the YAML deserializes into `Raw*` structs that refuse unknown keys;
//! `Config::load` destructures them into checked types. Relative paths are resolved
//! against the directory of the config file. Secrets are resolved here, once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::secret::{self, Secret};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    tls: RawClientTls,
    upstream: RawUpstream,
    users: String,
    policies: String,
    #[serde(default)]
    telemetry: Option<RawTelemetry>,
    #[serde(default)]
    audit: Option<RawAudit>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    admin: Option<RawAdmin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientTls {
    cert: String,
    key: String,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default = "yes")]
    required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    host: String,
    port: u16,
    tls: RawUpstreamTls,
    #[serde(default)]
    catalog_user: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
    #[serde(default)]
    catalog_refresh_secs: Option<u64>,
    #[serde(default)]
    catalog_database: Option<String>,
    #[serde(default)]
    pool: Option<RawPool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    #[serde(default)]
    max_idle: Option<usize>,
    #[serde(default)]
    idle_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    ca: String,
    cert: String,
    key: String,
    #[serde(default)]
    server_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelemetry {
    #[serde(default)]
    otlp_endpoint: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    auth_timeout_ms: Option<u64>,
    #[serde(default)]
    max_message_bytes: Option<usize>,
    #[serde(default)]
    drain_timeout_ms: Option<u64>,
    #[serde(default)]
    max_sessions_per_user: Option<u32>,
    #[serde(default)]
    max_sessions_per_role: Option<u32>,
    #[serde(default)]
    statements_per_second: Option<f64>,
    #[serde(default)]
    statement_burst: Option<f64>,
    #[serde(default)]
    login_lockout_after: Option<u32>,
    #[serde(default)]
    login_lockout_secs: Option<u64>,
    #[serde(default)]
    idle_session_timeout_ms: Option<u64>,
    /// Per-login overrides, by login name.
    #[serde(default)]
    users: std::collections::BTreeMap<String, RawUserLimits>,
    /// Per-role limits, by policy role name.
    #[serde(default)]
    roles: std::collections::BTreeMap<String, RawRoleLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserLimits {
    #[serde(default)]
    max_sessions: Option<u32>,
    #[serde(default)]
    statements_per_second: Option<f64>,
    #[serde(default)]
    statement_burst: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoleLimits {
    #[serde(default)]
    max_sessions: Option<u32>,
    #[serde(default)]
    statements_per_second: Option<f64>,
    #[serde(default)]
    statement_burst: Option<f64>,
    #[serde(default)]
    source: Option<Vec<ipnet::IpNet>>,
}

fn yes() -> bool {
    true
}

/// Client-facing TLS files.
#[derive(Debug, Clone)]
pub struct ClientTlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub required: bool,
}

/// Upstream connection settings. TLS is not optional.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub host: String,
    pub port: u16,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub server_name: String,
    pub catalog_user: Option<String>,
    pub password: Option<Secret>,
    pub connect_timeout: Duration,
    /// How often every loaded catalog is re-read (DDL through pgward also triggers it).
    pub catalog_refresh: Duration,
    /// The database whose catalog is loaded at start; `/readyz` waits for it.
    pub catalog_database: String,
    /// Reuse of upstream sessions between clients (`upstream.pool`).
    pub pool: PoolConfig,
}

/// `upstream.pool`: how many reset upstream sessions are kept idle for the next login
/// with the same startup packet, and for how long. `max_idle: 0` turns reuse off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle sessions kept per pgward process, all logins together.
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_idle: 16,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The most idle upstream sessions `upstream.pool.max_idle` may ask for.
const MAX_POOL_IDLE: usize = 10_000;

fn checked_pool(raw: Option<RawPool>) -> Result<PoolConfig, String> {
    let mut pool = PoolConfig::default();
    let Some(RawPool {
        max_idle,
        idle_timeout_secs,
    }) = raw
    else {
        return Ok(pool);
    };
    if let Some(n) = max_idle {
        if n > MAX_POOL_IDLE {
            return Err(format!(
                "upstream.pool.max_idle: at most {MAX_POOL_IDLE} (0 turns reuse off)"
            ));
        }
        pool.max_idle = n;
    }
    if let Some(secs) = idle_timeout_secs {
        if secs == 0 {
            return Err(
                "upstream.pool.idle_timeout_secs: must be at least 1 (max_idle: 0 turns reuse off)"
                    .into(),
            );
        }
        pool.idle_timeout = Duration::from_secs(secs);
    }
    Ok(pool)
}

#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

/// Session limits (SPEC §7).
#[derive(Debug, Clone)]
pub struct Limits {
    pub auth_timeout: Duration,
    pub max_message_bytes: usize,
    pub drain_timeout: Duration,
    /// Concurrent sessions per login (53300 beyond).
    pub max_sessions_per_user: Option<u32>,
    /// Concurrent sessions per policy role (53300 beyond).
    pub max_sessions_per_role: Option<u32>,
    /// Statements per second per login, as a token bucket (53400 beyond).
    pub statements_per_second: Option<f64>,
    pub statement_burst: Option<f64>,
    /// Failed logins from one address before it is locked out, and for how long.
    pub login_lockout_after: u32,
    pub login_lockout: Duration,
    /// A session with nothing in flight that sends nothing for this long is ended.
    pub idle_session_timeout: Option<Duration>,
    /// `limits.users.<login>`: overrides of the per-login session cap and statement rate.
    pub users: HashMap<String, UserLimits>,
    /// `limits.roles.<role>`: the role's session cap, a statement rate shared by all its
    /// sessions, and an address allowlist for all its logins.
    pub roles: HashMap<String, RoleLimits>,
}

/// A token bucket's refill rate and capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserLimits {
    pub max_sessions: Option<u32>,
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleLimits {
    pub max_sessions: Option<u32>,
    /// Shared by every session of the role (on top of each login's own bucket).
    pub rate: Option<Rate>,
    /// Empty: any address (the user's own `source` still applies).
    pub source: Vec<IpNet>,
}

impl Limits {
    /// The session cap of a login: its override, else `max_sessions_per_user`.
    pub fn max_sessions_of_user(&self, user: &str) -> Option<u32> {
        self.users
            .get(user)
            .and_then(|u| u.max_sessions)
            .or(self.max_sessions_per_user)
    }

    /// The session cap of a role: `roles.<role>.max_sessions`, else `max_sessions_per_role`.
    pub fn max_sessions_of_role(&self, role: &str) -> Option<u32> {
        self.roles
            .get(role)
            .and_then(|r| r.max_sessions)
            .or(self.max_sessions_per_role)
    }

    /// The statement rate of one login: its override, else the global per-login rate.
    pub fn rate_of_user(&self, user: &str) -> Option<Rate> {
        self.users.get(user).and_then(|u| u.rate).or_else(|| {
            self.statements_per_second.map(|per_second| Rate {
                per_second,
                burst: self.statement_burst.unwrap_or(per_second),
            })
        })
    }

    /// The statement rate shared by all sessions of a role, if it has one.
    pub fn rate_of_role(&self, role: &str) -> Option<Rate> {
        self.roles.get(role).and_then(|r| r.rate)
    }

    /// Whether the role's allowlist (if any) admits `addr`.
    pub fn role_source_allowed(&self, role: &str, addr: IpAddr) -> bool {
        self.roles
            .get(role)
            .is_none_or(|r| r.source.is_empty() || r.source.iter().any(|net| net.contains(&addr)))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            auth_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024 * 1024,
            drain_timeout: Duration::from_secs(30),
            max_sessions_per_user: None,
            max_sessions_per_role: None,
            statements_per_second: None,
            statement_burst: None,
            login_lockout_after: 10,
            login_lockout: Duration::from_secs(300),
            idle_session_timeout: None,
            users: HashMap::new(),
            roles: HashMap::new(),
        }
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub listen: SocketAddr,
    pub tls: ClientTlsConfig,
    pub upstream: UpstreamConfig,
    pub users: PathBuf,
    pub policies: PathBuf,
    pub telemetry: TelemetryConfig,
    pub audit_path: Option<String>,
    pub limits: Limits,
    /// The admin HTTP listener (`/metrics`, `/healthz`, `/readyz`); off when absent.
    pub admin_listen: Option<SocketAddr>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let raw: RawConfig = yaml_from_str(text, &shown)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let at = |p: &str| base.join(p);
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.clone(),
            message,
        };

        let RawConfig {
            listen,
            tls,
            upstream,
            users,
            policies,
            telemetry,
            audit,
            limits,
            admin,
        } = raw;
        let listen: SocketAddr = listen
            .parse()
            .map_err(|e| invalid(format!("listen: {e} (expected host:port)")))?;

        let RawClientTls {
            cert,
            key,
            client_ca,
            required,
        } = tls;
        let tls = ClientTlsConfig {
            cert: at(&cert),
            key: at(&key),
            client_ca: client_ca.as_deref().map(at),
            required,
        };

        let RawUpstream {
            host,
            port,
            tls: upstream_tls,
            catalog_user,
            password,
            connect_timeout_ms,
            catalog_refresh_secs,
            catalog_database,
            pool,
        } = upstream;
        let RawUpstreamTls {
            ca,
            cert,
            key,
            server_name,
        } = upstream_tls;
        let password = password
            .map(|p| secret::resolve(&p, &base, "upstream.password"))
            .transpose()?;
        let upstream = UpstreamConfig {
            server_name: server_name.unwrap_or_else(|| host.clone()),
            host,
            port,
            ca: at(&ca),
            cert: at(&cert),
            key: at(&key),
            catalog_user,
            password,
            connect_timeout: Duration::from_millis(connect_timeout_ms.unwrap_or(5_000)),
            catalog_refresh: Duration::from_secs(catalog_refresh_secs.unwrap_or(60).max(1)),
            catalog_database: catalog_database.unwrap_or_else(|| "postgres".to_owned()),
            pool: checked_pool(pool).map_err(invalid)?,
        };

        let telemetry = match telemetry {
            Some(RawTelemetry {
                otlp_endpoint,
                service_name,
            }) => TelemetryConfig {
                otlp_endpoint,
                service_name: service_name.unwrap_or_else(|| "pgward".to_owned()),
            },
            None => TelemetryConfig {
                otlp_endpoint: None,
                service_name: "pgward".to_owned(),
            },
        };

        let mut lim = Limits::default();
        if let Some(RawLimits {
            auth_timeout_ms,
            max_message_bytes,
            drain_timeout_ms,
            max_sessions_per_user,
            max_sessions_per_role,
            statements_per_second,
            statement_burst,
            login_lockout_after,
            login_lockout_secs,
            idle_session_timeout_ms,
            users,
            roles,
        }) = limits
        {
            for (
                name,
                RawUserLimits {
                    max_sessions,
                    statements_per_second,
                    statement_burst,
                },
            ) in users
            {
                let key = format!("limits.users.{name}");
                let rate =
                    checked_rate(&key, statements_per_second, statement_burst).map_err(invalid)?;
                lim.users.insert(name, UserLimits { max_sessions, rate });
            }
            for (name, raw) in roles {
                let RawRoleLimits {
                    max_sessions,
                    statements_per_second,
                    statement_burst,
                    source,
                } = raw;
                let key = format!("limits.roles.{name}");
                let rate =
                    checked_rate(&key, statements_per_second, statement_burst).map_err(invalid)?;
                let source = source.unwrap_or_default();
                lim.roles.insert(
                    name,
                    RoleLimits {
                        max_sessions,
                        rate,
                        source,
                    },
                );
            }
            lim.idle_session_timeout = idle_session_timeout_ms.map(Duration::from_millis);
            lim.max_sessions_per_user = max_sessions_per_user;
            lim.max_sessions_per_role = max_sessions_per_role;
            if let Some(rate) = statements_per_second {
                if rate.is_nan() || rate <= 0.0 {
                    return Err(invalid(
                        "limits.statements_per_second: must be positive".into(),
                    ));
                }
                lim.statements_per_second = Some(rate);
            }
            lim.statement_burst = statement_burst;
            if let Some(n) = login_lockout_after {
                lim.login_lockout_after = n.max(1);
            }
            if let Some(secs) = login_lockout_secs {
                lim.login_lockout = Duration::from_secs(secs);
            }
            if let Some(ms) = auth_timeout_ms {
                lim.auth_timeout = Duration::from_millis(ms);
            }
            if let Some(n) = max_message_bytes {
                if n < 1024 {
                    return Err(invalid(
                        "limits.max_message_bytes: must be at least 1024".into(),
                    ));
                }
                lim.max_message_bytes = n;
            }
            if let Some(ms) = drain_timeout_ms {
                lim.drain_timeout = Duration::from_millis(ms);
            }
        }

        let admin_listen = admin
            .map(|RawAdmin { listen }| {
                listen
                    .parse::<SocketAddr>()
                    .map_err(|e| invalid(format!("admin.listen: {e} (expected host:port)")))
            })
            .transpose()?;
        Ok(Config {
            admin_listen,
            path: path.to_path_buf(),
            listen,
            tls,
            upstream,
            users: at(&users),
            policies: at(&policies),
            telemetry,
            audit_path: audit.map(|RawAudit { path }| path),
            limits: lim,
        })
    }
}

/// A rate and burst as configured under `at`: the rate must be positive, the burst (default:
/// the rate) at least 1; a burst without a rate means nothing and is refused.
fn checked_rate(
    at: &str,
    per_second: Option<f64>,
    burst: Option<f64>,
) -> Result<Option<Rate>, String> {
    match (per_second, burst) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(format!("{at}.statement_burst: needs statements_per_second")),
        (Some(rate), burst) => {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("{at}.statements_per_second: must be positive"));
            }
            let burst = burst.unwrap_or(rate);
            if !(burst.is_finite() && burst >= 1.0) {
                return Err(format!("{at}.statement_burst: must be at least 1"));
            }
            Ok(Some(Rate {
                per_second: rate,
                burst,
            }))
        }
    }
}

/// Deserializes YAML, turning serde's error into one that names file, line and column.
pub(crate) fn yaml_from_str<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &str,
) -> Result<T, ConfigError> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = "listen: 127.0.0.1:6432
tls: { cert: s.crt, key: s.key }
upstream:
  host: 127.0.0.1
  port: 5432
  tls: { ca: ca.crt, cert: p.crt, key: p.key }
users: users.yaml
policies: policies/
";

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = Config::parse(MINIMAL, Path::new("/etc/pgward/pgward.yaml")).unwrap();
        assert!(c.tls.required);
        assert_eq!(c.upstream.server_name, "127.0.0.1");
        assert_eq!(c.users, PathBuf::from("/etc/pgward/users.yaml"));
        assert_eq!(c.limits.max_message_bytes, 64 * 1024 * 1024);
        assert_eq!(c.limits.auth_timeout, Duration::from_secs(10));
    }

    #[test]
    fn per_user_and_per_role_limits_override_the_defaults() {
        let text = format!(
            "{MINIMAL}limits:
  max_sessions_per_user: 5
  max_sessions_per_role: 50
  statements_per_second: 100
  users:
    app: {{ max_sessions: 40, statements_per_second: 1000 }}
  roles:
    analyst: {{ max_sessions: 3, statements_per_second: 20, statement_burst: 40, source: [10.0.0.0/8] }}
"
        );
        let l = Config::parse(&text, Path::new("pgward.yaml"))
            .unwrap()
            .limits;
        assert_eq!(l.max_sessions_of_user("app"), Some(40));
        assert_eq!(l.max_sessions_of_user("alice"), Some(5));
        assert_eq!(l.max_sessions_of_role("analyst"), Some(3));
        assert_eq!(l.max_sessions_of_role("app"), Some(50));
        let rate = |per_second, burst| Some(Rate { per_second, burst });
        assert_eq!(l.rate_of_user("app"), rate(1000.0, 1000.0));
        assert_eq!(l.rate_of_user("alice"), rate(100.0, 100.0));
        assert_eq!(l.rate_of_role("analyst"), rate(20.0, 40.0));
        assert_eq!(l.rate_of_role("app"), None);
        assert!(l.role_source_allowed("analyst", "10.1.2.3".parse().unwrap()));
        assert!(!l.role_source_allowed("analyst", "127.0.0.1".parse().unwrap()));
        assert!(l.role_source_allowed("app", "127.0.0.1".parse().unwrap()));

        for (bad, says) in [
            (
                "    x: { statement_burst: 5 }",
                "limits.users.x.statement_burst",
            ),
            ("    x: { statements_per_second: 0 }", "must be positive"),
            (
                "    x: { statements_per_second: 5, statement_burst: 0.5 }",
                "at least 1",
            ),
            ("    x: { source: [10.0.0.0/8] }", "source"),
        ] {
            let text = format!("{MINIMAL}limits:\n  users:\n{bad}\n");
            let err = Config::parse(&text, Path::new("pgward.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn upstream_pool_defaults_overrides_and_refusals() {
        let c = Config::parse(MINIMAL, Path::new("pgward.yaml")).unwrap();
        assert_eq!(c.upstream.pool, PoolConfig::default());
        assert_eq!(c.upstream.pool.max_idle, 16);
        assert_eq!(c.upstream.pool.idle_timeout, Duration::from_secs(60));
        let with = |pool: &str| {
            let text = MINIMAL.replace("  port: 5432", &format!("  port: 5432\n  pool: {pool}"));
            Config::parse(&text, Path::new("pgward.yaml")).map(|c| c.upstream.pool)
        };
        assert_eq!(
            with("{ max_idle: 0, idle_timeout_secs: 5 }").unwrap(),
            PoolConfig {
                max_idle: 0,
                idle_timeout: Duration::from_secs(5)
            }
        );
        assert_eq!(
            with("{ max_idle: 3 }").unwrap().idle_timeout,
            Duration::from_secs(60)
        );
        for (bad, says) in [
            (
                "{ idle_timeout_secs: 0 }",
                "upstream.pool.idle_timeout_secs",
            ),
            ("{ max_idle: 1000000 }", "upstream.pool.max_idle"),
            ("{ max_idel: 3 }", "max_idel"),
            ("{ max_idle: -1 }", "max_idle"),
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = MINIMAL.replace("users: users.yaml", "users: users.yaml\nuserz: oops");
        let err = Config::parse(&text, Path::new("pgward.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pgward.yaml:8:1:"), "{err}");
        assert!(err.contains("userz"), "{err}");
    }

    #[test]
    fn upstream_without_tls_is_refused() {
        let text = MINIMAL.replace("  tls: { ca: ca.crt, cert: p.crt, key: p.key }\n", "");
        let err = Config::parse(&text, Path::new("pgward.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls"), "{err}");
    }

    #[test]
    fn inline_password_is_refused() {
        let text = MINIMAL.replace("  port: 5432", "  port: 5432\n  password: hunter2");
        let err = Config::parse(&text, Path::new("pgward.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("never inline") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
