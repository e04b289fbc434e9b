//! Finds the PostgreSQL server binaries, in the order SPEC §2 gives: `pg_config --bindir`,
//! then `PATH`, then the highest `/usr/lib/postgresql/<version>/bin`. A directory only counts
//! when it holds both `initdb` and `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::SandboxError;

/// The directory holding `initdb`, `postgres`, `psql`, `pg_isready`, `pgbench`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    bindir: PathBuf,
}

impl PgBinaries {
    /// Looks for the server binaries; the error's Display says how to install them.
    pub fn find() -> Result<Self, SandboxError> {
        let candidates = from_pg_config()
            .into_iter()
            .chain(from_path())
            .chain(from_usr_lib(Path::new("/usr/lib/postgresql")));
        for dir in candidates {
            if let Some(found) = Self::at(&dir) {
                return Ok(found);
            }
        }
        Err(SandboxError::BinariesNotFound)
    }

    /// `dir` if it holds the server binaries (symlinks resolved, so that `postgres` finds its
    /// share directory next to its real location).
    pub fn at(dir: &Path) -> Option<Self> {
        let dir = std::fs::canonicalize(dir).ok()?;
        let complete = ["initdb", "postgres"].iter().all(|b| dir.join(b).is_file());
        complete.then_some(Self { bindir: dir })
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The path of a PostgreSQL program: from the server's bin directory when it has it
    /// (client and server versions then match), otherwise the bare name for a `PATH` lookup.
    pub fn program(&self, name: &str) -> PathBuf {
        let local = self.bindir.join(name);
        if local.is_file() {
            local
        } else {
            PathBuf::from(name)
        }
    }
}

fn from_pg_config() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

fn from_path() -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&path)
        .filter_map(|dir| {
            let initdb = dir.join("initdb");
            // Resolve symlinks like /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
            let real = std::fs::canonicalize(initdb).ok()?;
            real.parent().map(Path::to_path_buf)
        })
        .collect()
}

/// `/usr/lib/postgresql/*/bin`, highest major version first.
fn from_usr_lib(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = parse_version(&name)?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["9.6", "10", "15", "notaversion"] {
            std::fs::create_dir_all(dir.path().join(v).join("bin")).unwrap();
        }
        let found = from_usr_lib(dir.path());
        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["15", "10", "9.6"]);
    }

    #[test]
    fn a_directory_without_postgres_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("initdb"), "").unwrap();
        assert_eq!(PgBinaries::at(dir.path()), None);
        std::fs::write(dir.path().join("postgres"), "").unwrap();
        assert!(PgBinaries::at(dir.path()).is_some());
    }

    #[test]
    fn missing_binaries_is_one_clear_line() {
        let text = SandboxError::BinariesNotFound.to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("apt-get install -y postgresql"));
    }
}
