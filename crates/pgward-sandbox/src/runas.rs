//! Who runs the PostgreSQL server. PostgreSQL refuses to run as root, so when we are root the
//! server (and initdb) run as the `postgres` OS user through `runuser` or `su`, and the files
//! the server must own are chowned to it. As any other user everything runs as ourselves.
//! Detection reads /proc and runs `id`; there is no libc call (the workspace forbids unsafe).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::SandboxError;

#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// Not root: run everything as the current user.
    Current,
    /// Root: run the server as `postgres` (uid, gid) via `switch`.
    Postgres { uid: u32, gid: u32, switch: Switch },
}

#[derive(Debug, Clone)]
pub(crate) enum Switch {
    Runuser(PathBuf),
    Su(PathBuf),
}

impl RunAs {
    pub(crate) fn detect() -> Result<Self, SandboxError> {
        if effective_uid() != Some(0) {
            return Ok(RunAs::Current);
        }
        let uid = id_of("-u").ok_or(SandboxError::NoPostgresUser)?;
        let gid = id_of("-g").ok_or(SandboxError::NoPostgresUser)?;
        let switch = if let Some(p) = find_program("runuser") {
            Switch::Runuser(p)
        } else if let Some(p) = find_program("su") {
            Switch::Su(p)
        } else {
            return Err(SandboxError::Command {
                what: "finding runuser or su to run PostgreSQL as the postgres user".into(),
                status: "not found".into(),
                detail: "install util-linux (runuser) or login (su)".into(),
            });
        };
        Ok(RunAs::Postgres { uid, gid, switch })
    }

    /// Gives `path` to the server's OS user (no-op when that is us).
    pub(crate) fn chown(&self, path: &Path) -> Result<(), SandboxError> {
        match self {
            RunAs::Current => Ok(()),
            RunAs::Postgres { uid, gid, .. } => {
                std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                    .map_err(SandboxError::io("chown to the postgres user", path))
            }
        }
    }

    /// `program args...` as the server's OS user.
    pub(crate) fn command(&self, program: &Path, args: &[&OsStr]) -> Command {
        match self {
            RunAs::Current => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            RunAs::Postgres { .. } => {
                let mut script = sh_quote(program.as_os_str());
                for arg in args {
                    script.push(' ');
                    script.push_str(&sh_quote(arg));
                }
                self.shell(&script)
            }
        }
    }

    /// `sh -c script` as the server's OS user.
    pub(crate) fn shell(&self, script: &str) -> Command {
        match self {
            RunAs::Current => {
                let mut cmd = Command::new("/bin/sh");
                cmd.arg("-c").arg(script);
                cmd
            }
            RunAs::Postgres {
                switch: Switch::Runuser(runuser),
                ..
            } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", "postgres", "--", "/bin/sh", "-c", script]);
                cmd
            }
            RunAs::Postgres {
                switch: Switch::Su(su),
                ..
            } => {
                let mut cmd = Command::new(su);
                cmd.args(["-s", "/bin/sh", "-c", script, "postgres"]);
                cmd
            }
        }
    }
}

/// Single-quotes a word for /bin/sh.
pub(crate) fn sh_quote(word: &OsStr) -> String {
    let text = String::from_utf8_lossy(word.as_bytes());
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The effective uid, from the second field of `Uid:` in /proc/self/status, else `id -u`.
fn effective_uid() -> Option<u32> {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2)?.parse().ok()
        });
    from_proc.or_else(|| {
        let out = Command::new("id").arg("-u").output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    })
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// `PATH` plus the sbin directories, which a root shell has but `cargo test` may not.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(sh_quote(OsStr::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(sh_quote(OsStr::new("it's")), r"'it'\''s'");
    }
}
