//! Secrets referenced from configuration: `env:NAME` or `file:path`, never inline.
//!
//! A `Secret` never prints its value: `Debug` and `Display` are redacted, so a secret
//! cannot reach a log line, a span or an error message by accident.

use std::fmt;
use std::path::Path;

use crate::error::ConfigError;

/// A secret value. Its contents are only reachable through [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret's value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Resolves a secret reference: `env:NAME` reads the environment, `file:path` reads the
/// file (relative to `base`, trailing newline removed). Anything else is refused, so a
/// secret written inline in a config file is an error, not a silently used password.
pub fn resolve(reference: &str, base: &Path, key: &str) -> Result<Secret, ConfigError> {
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name)
            .map(Secret)
            .map_err(|_| ConfigError::Secret {
                key: key.to_owned(),
                reason: format!("environment variable {name} is not set"),
            });
    }
    if let Some(path) = reference.strip_prefix("file:") {
        let path = base.join(path);
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Secret {
            key: key.to_owned(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        return Ok(Secret(text.trim_end_matches(['\n', '\r']).to_owned()));
    }
    Err(ConfigError::Secret {
        key: key.to_owned(),
        reason: "secrets are never inline: use env:NAME or file:path".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inline_secret_is_refused() {
        let err = resolve("hunter2", Path::new("."), "upstream.password").unwrap_err();
        assert!(err.to_string().contains("never inline"));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
    }

    #[test]
    fn file_secret_is_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("pgward-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        let s = resolve("file:pw", &dir, "k").unwrap();
        assert_eq!(s.expose(), "s3cret");
    }
}
