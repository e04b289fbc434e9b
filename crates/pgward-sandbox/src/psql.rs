//! Running the `psql` binary, and writing libpq conninfo strings. The environment's `PG*`
//! variables are removed so that a developer's PGHOST/PGSSLMODE/PGOPTIONS cannot change
//! what a test or the sandbox connects to; `-X` skips ~/.psqlrc for the same reason.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use crate::SandboxError;

/// What a `psql` run printed.
#[derive(Debug, Clone)]
pub struct PsqlOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl PsqlOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `psql -X -d <conninfo> <args...>`, feeding `stdin` when given.
pub fn run_psql(
    psql: &Path,
    conninfo: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<PsqlOutput, SandboxError> {
    let mut cmd = Command::new(psql);
    cmd.arg("-X").arg("-d").arg(conninfo).args(args);
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(&key);
        }
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(SandboxError::io("running psql", psql))?;
    // Feed stdin from another thread: a large script and a large result could otherwise
    // fill both pipes and deadlock.
    let out = std::thread::scope(|scope| {
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            scope.spawn(move || {
                // psql may exit early (ON_ERROR_STOP); a broken pipe is not our error then.
                let _ignored = pipe.write_all(text.as_bytes());
            });
        }
        child.wait_with_output()
    })
    .map_err(SandboxError::io("running psql", psql))?;
    Ok(PsqlOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// One `key=value` conninfo pair, the value quoted the way libpq parses it.
pub fn conninfo_pair(key: &str, value: impl AsRef<OsStr>) -> String {
    let value = value.as_ref().to_string_lossy();
    let escaped = value.replace('\\', r"\\").replace('\'', r"\'");
    format!("{key}='{escaped}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_values_are_quoted() {
        assert_eq!(conninfo_pair("user", "app"), "user='app'");
        assert_eq!(conninfo_pair("user", r"o'b\x"), r"user='o\'b\\x'");
    }
}
