//! Where JWT keys come from (SPEC §3 `jwt.jwks`): a JWKS file, read at startup and on
//! every reload, or an `https://` URL, fetched at startup, refreshed every
//! `jwt.jwks_refresh_secs` and, rate limited, when a token names a `kid` the set lacks.
//!
//! Never fetches over plain http and never follows a redirect (only a 200 is a key set);
//! never reads more than `MAX_JWKS_LEN` bytes nor waits longer than the fetch timeout; a
//! fetch that fails or serves an unusable set keeps the keys already installed. The IdP
//! is trusted through the system's roots, or only through `jwt.jwks_ca` when given.
//!
//! Startup does not wait for the IdP: pgward serves its password and certificate users
//! while the IdP is briefly down. Until a first fetch succeeds there is no key, so every
//! token gets the generic authentication error; the failure is logged at error level and
//! the fetch retried every 30 s (and, rate limited, on a login). The HTTPS GET itself is
//! `fetch`. The URL's query is never logged: it may carry an API key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::error::ConfigError;
use crate::jwt::{read_jwks_file, JwksSource, JwtConfig, JwtError, JwtIdentity, JwtVerifier};
use crate::users::JwtSettings;

mod fetch;

use fetch::{client_tls, roots, Fetcher};
pub use fetch::{FetchError, JwksUrl};

/// `jwt.jwks_refresh_secs` when not given.
pub const DEFAULT_REFRESH_SECS: u64 = 300;
/// The longest refresh interval accepted: an older key set misses rotations for too long.
const MAX_REFRESH_SECS: u64 = 86_400;

/// The timing rules of an https key source. Only tests change them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Connect, TLS, request and body together.
    pub fetch_timeout: Duration,
    /// At most one fetch for unknown kids per this interval and verifier: the kid is the
    /// client's choice, so random kids must not make pgward hammer the IdP.
    pub unknown_kid_interval: Duration,
    /// After a failed fetch the next one comes this soon (or at the refresh interval if
    /// that is shorter).
    pub retry_after_failure: Duration,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            fetch_timeout: Duration::from_secs(10),
            unknown_kid_interval: Duration::from_secs(30),
            retry_after_failure: Duration::from_secs(30),
        }
    }
}

/// The checked `jwt.jwks` / `jwt.jwks_ca` / `jwt.jwks_refresh_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Read at startup and on every reload.
    File(PathBuf),
    Https(HttpsSource),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsSource {
    pub url: JwksUrl,
    /// The CA bundle the IdP's certificate must chain to; `None`: the system's roots.
    pub ca: Option<PathBuf>,
    pub refresh: Duration,
}

/// Why the key source settings were refused. Names the key for the users-file error.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("jwt.jwks: {0}")]
    Jwks(JwtError),
    #[error("jwt.jwks: {0}")]
    Url(&'static str),
    #[error("jwt.{0} applies to an https jwks only (a JWKS file is re-read on reload)")]
    HttpsOnly(&'static str),
    #[error("jwt.jwks_refresh_secs must be between 1 and {MAX_REFRESH_SECS}")]
    Refresh,
}

impl KeySource {
    pub fn from_config(
        jwks: &str,
        ca: Option<PathBuf>,
        refresh_secs: Option<u64>,
    ) -> Result<KeySource, SourceError> {
        match JwksSource::parse(jwks).map_err(SourceError::Jwks)? {
            JwksSource::File(path) => {
                if ca.is_some() {
                    return Err(SourceError::HttpsOnly("jwks_ca"));
                }
                if refresh_secs.is_some() {
                    return Err(SourceError::HttpsOnly("jwks_refresh_secs"));
                }
                Ok(KeySource::File(path))
            }
            JwksSource::Https(text) => {
                let secs = refresh_secs.unwrap_or(DEFAULT_REFRESH_SECS);
                if !(1..=MAX_REFRESH_SECS).contains(&secs) {
                    return Err(SourceError::Refresh);
                }
                Ok(KeySource::Https(HttpsSource {
                    url: JwksUrl::parse(&text).map_err(SourceError::Url)?,
                    ca,
                    refresh: Duration::from_secs(secs),
                }))
            }
        }
    }

    /// Relative file paths are relative to the users file's directory.
    pub fn resolve_relative(&mut self, base: &Path) {
        let path = match self {
            KeySource::File(path) => path,
            KeySource::Https(HttpsSource { ca: Some(path), .. }) => path,
            KeySource::Https(HttpsSource { ca: None, .. }) => return,
        };
        if path.is_relative() {
            *path = base.join(&*path);
        }
    }
}

/// Verifies JWT logins against keys kept current from their source (SPEC §3 `jwt:`).
pub struct JwksVerifier {
    backing: Backing,
    /// Ends the refresher when this verifier is replaced (reload) or dropped.
    stop: CancellationToken,
}

enum Backing {
    File(JwtVerifier),
    Https {
        remote: Arc<Remote>,
        source: HttpsSource,
        /// The CA bundle as read, so a reload notices a changed file.
        ca_pem: Option<Vec<u8>>,
    },
}

impl fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backing {
            Backing::File(v) => f.debug_tuple("JwksVerifier").field(v).finish(),
            Backing::Https { remote, source, .. } => f
                .debug_struct("JwksVerifier")
                .field("url", &source.url)
                .field("verifier", &remote.verifier)
                .finish(),
        }
    }
}

impl Drop for JwksVerifier {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl JwksVerifier {
    /// Builds the verifier for `settings`. A JWKS file is read now (an error stops startup
    /// or keeps the previous users on reload). An https source starts its refresher (first
    /// fetch at once) on the current tokio runtime, without waiting for it. `previous` is
    /// the verifier a reload replaces: if nothing changed it is returned as is (no
    /// refetch, so a reload during an IdP outage keeps working keys); if only the claims
    /// settings changed, the new verifier starts with its keys.
    pub fn start(
        settings: &JwtSettings,
        previous: Option<&Arc<JwksVerifier>>,
    ) -> Result<Arc<JwksVerifier>, ConfigError> {
        Self::start_tuned(settings, previous, Tuning::default())
    }

    pub(crate) fn start_tuned(
        settings: &JwtSettings,
        previous: Option<&Arc<JwksVerifier>>,
        tuning: Tuning,
    ) -> Result<Arc<JwksVerifier>, ConfigError> {
        let source = match &settings.keys {
            KeySource::File(path) => {
                let invalid = |e: JwtError| ConfigError::Invalid {
                    path: path.display().to_string(),
                    message: e.to_string(),
                };
                let json = read_jwks_file(path).map_err(invalid)?;
                let verifier =
                    JwtVerifier::from_jwks_json(settings.config.clone(), &json).map_err(invalid)?;
                return Ok(Arc::new(JwksVerifier {
                    backing: Backing::File(verifier),
                    stop: CancellationToken::new(),
                }));
            }
            KeySource::Https(source) => source,
        };
        let ca_pem = match &source.ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| ConfigError::Tls {
                what: "jwt.jwks_ca",
                path: path.display().to_string(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let mut seed = None;
        if let Some(prev) = previous {
            if let Backing::Https {
                remote,
                source: prev_source,
                ca_pem: prev_ca,
            } = &prev.backing
            {
                if prev_source == source && *prev_ca == ca_pem && !prev.stop.is_cancelled() {
                    if remote.verifier.config() == &settings.config {
                        return Ok(prev.clone());
                    }
                    seed = Some(&remote.verifier);
                }
            }
        }
        let invalid = |message: String| ConfigError::Invalid {
            path: source.url.to_string(),
            message,
        };
        let roots = roots(source.ca.as_deref().zip(ca_pem.as_deref()), &source.url)?;
        let tls = client_tls(roots).map_err(|e| invalid(format!("TLS client: {e}")))?;
        let config = settings.config.clone();
        let verifier = match seed {
            Some(v) => v.reconfigured(config),
            None => JwtVerifier::without_keys(config),
        }
        .map_err(|e| invalid(e.to_string()))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| invalid("an https JWKS needs a running tokio runtime".into()))?;
        let remote = Arc::new(Remote {
            verifier,
            fetcher: Fetcher {
                url: source.url.clone(),
                tls: TlsConnector::from(tls),
                timeout: tuning.fetch_timeout,
            },
            refresh: source.refresh,
            tuning,
            state: Mutex::new(FetchState::default()),
            done: watch::Sender::new(0),
        });
        let stop = CancellationToken::new();
        // Marked running before the task exists, so a login arriving first waits for it.
        let first = remote
            .begin()
            .ok_or_else(|| invalid("fetch state".into()))?;
        runtime.spawn(refresh_loop(remote.clone(), first, stop.clone()));
        Ok(Arc::new(JwksVerifier {
            backing: Backing::Https {
                remote,
                source: source.clone(),
                ca_pem,
            },
            stop,
        }))
    }

    pub fn config(&self) -> &JwtConfig {
        match &self.backing {
            Backing::File(v) => v.config(),
            Backing::Https { remote, .. } => remote.verifier.config(),
        }
    }

    /// Ends the refresher (a reload replaced this verifier). Logins still holding it keep
    /// verifying against its last keys.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Verifies a token (see `JwtVerifier::verify`). With an https source, a token whose
    /// kid the set lacks (or any token while there is no key) waits for a refetch, rate
    /// limited and at most the fetch timeout, and is verified once more.
    /// Cancel-safe: a fetch it started finishes on its own.
    pub async fn verify(&self, token: &str, now_unix: u64) -> Result<JwtIdentity, JwtError> {
        match &self.backing {
            Backing::File(v) => v.verify(token, now_unix),
            Backing::Https { remote, .. } => match remote.verifier.verify(token, now_unix) {
                Err(JwtError::UnknownKid { .. } | JwtError::MissingKid { keys: 0 }) => {
                    remote.refresh_for_unknown_kid().await;
                    remote.verifier.verify(token, now_unix)
                }
                result => result,
            },
        }
    }
}

/// An https key source: the verifier whose keys it replaces, and the fetch bookkeeping.
struct Remote {
    verifier: JwtVerifier,
    fetcher: Fetcher,
    refresh: Duration,
    tuning: Tuning,
    state: Mutex<FetchState>,
    /// Bumped when a fetch ends, whatever its outcome; logins waiting for it watch this.
    done: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct FetchState {
    in_flight: bool,
    last_unknown_kid_fetch: Option<Instant>,
}

/// A running fetch. Dropping it (done, failed or cancelled) wakes the waiting logins.
struct InFlight(Arc<Remote>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state().in_flight = false;
        self.0.done.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Remote {
    /// The lock is never held across an await.
    fn state(&self) -> MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims the fetch if none is running.
    fn begin(self: &Arc<Self>) -> Option<InFlight> {
        let mut state = self.state();
        if state.in_flight {
            return None;
        }
        state.in_flight = true;
        Some(InFlight(self.clone()))
    }

    /// Fetches and installs the set; false (and logged) if the current keys stay.
    async fn fetch_and_install(&self, why: &'static str) -> bool {
        let url = &self.fetcher.url;
        let had = self.verifier.key_count();
        let outcome = match self.fetcher.fetch().await {
            Ok(body) => self.verifier.replace_keys(&body).map_err(FetchError::Keys),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                let keys = self.verifier.key_count();
                if why == "interval" {
                    debug!(jwks = %url, keys, why, "JWKS fetched");
                } else {
                    info!(jwks = %url, keys, why, "JWKS fetched");
                }
                true
            }
            Err(e) if had == 0 => {
                error!(jwks = %url, error = %e, why,
                    "JWKS fetch failed; JWT logins fail until a fetch succeeds");
                false
            }
            Err(e) => {
                warn!(jwks = %url, error = %e, why,
                    keys = had, "JWKS refresh failed; keeping the previous keys");
                false
            }
        }
    }

    /// Waits for a fetch (started here if none runs and the rate limit allows one) for at
    /// most the fetch timeout. Returns at once when rate limited.
    async fn refresh_for_unknown_kid(self: &Arc<Self>) {
        // Subscribed before looking at the state, so a fetch ending in between is seen.
        let mut done = self.done.subscribe();
        let started = {
            let mut state = self.state();
            if state.in_flight {
                None
            } else if state
                .last_unknown_kid_fetch
                .is_some_and(|t| t.elapsed() < self.tuning.unknown_kid_interval)
            {
                debug!(jwks = %self.fetcher.url, "unknown kid: refetch rate limited");
                return;
            } else {
                state.in_flight = true;
                state.last_unknown_kid_fetch = Some(Instant::now());
                Some(InFlight(self.clone()))
            }
        };
        if let Some(in_flight) = started {
            // A task of its own, so a login that gives up does not cancel the fetch; it
            // ends within the fetch timeout.
            tokio::spawn(async move {
                in_flight.0.fetch_and_install("unknown kid").await;
                drop(in_flight);
            });
        }
        let _ = tokio::time::timeout(self.tuning.fetch_timeout, done.changed()).await;
    }
}

/// Fetches now (the claimed `first`), then every refresh interval, sooner after a failure,
/// until `stop`.
async fn refresh_loop(remote: Arc<Remote>, first: InFlight, stop: CancellationToken) {
    let mut claimed = Some(first);
    let mut why = "startup";
    loop {
        let fetched = match claimed.take().or_else(|| remote.begin()) {
            Some(in_flight) => {
                let fetched = tokio::select! {
                    _ = stop.cancelled() => return,
                    fetched = remote.fetch_and_install(why) => fetched,
                };
                drop(in_flight);
                fetched
            }
            // An unknown-kid fetch is running; it logs its own outcome.
            None => true,
        };
        why = "interval";
        let wait = if fetched {
            remote.refresh
        } else {
            remote.refresh.min(remote.tuning.retry_after_failure)
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests;
