//! Why a set of policy files could not be loaded. Every error names the file, and the line
//! and column where it knows them (`file:line:column: message`, as compilers print).

use std::fmt;
use std::path::{Path, PathBuf};

/// A small label for metrics and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// The directory or a file could not be read.
    Io,
    /// Not valid YAML, or not the policy format (unknown key, wrong type, bad name).
    Syntax,
    /// Well-formed but inconsistent: duplicate role, unknown inherited role, cycle.
    Invalid,
}

impl LoadErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadErrorKind::Io => "io",
            LoadErrorKind::Syntax => "syntax",
            LoadErrorKind::Invalid => "invalid",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no *.yaml policy files", dir.display())]
    NoFiles { dir: PathBuf },
    #[error("{}: {message}", Located(file, *location))]
    Syntax {
        file: PathBuf,
        location: Option<(usize, usize)>,
        message: String,
    },
    #[error("{}: {message}", Located(file, *location))]
    Invalid {
        file: PathBuf,
        location: Option<(usize, usize)>,
        message: String,
    },
}

impl LoadError {
    pub fn kind(&self) -> LoadErrorKind {
        match self {
            LoadError::Io { .. } | LoadError::NoFiles { .. } => LoadErrorKind::Io,
            LoadError::Syntax { .. } => LoadErrorKind::Syntax,
            LoadError::Invalid { .. } => LoadErrorKind::Invalid,
        }
    }

    /// The file the error is in, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            LoadError::Io { path, .. } => Some(path),
            LoadError::NoFiles { .. } => None,
            LoadError::Syntax { file, .. } | LoadError::Invalid { file, .. } => Some(file),
        }
    }

    /// 1-based (line, column), when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            LoadError::Syntax { location, .. } | LoadError::Invalid { location, .. } => *location,
            LoadError::Io { .. } | LoadError::NoFiles { .. } => None,
        }
    }

    pub(crate) fn syntax(file: &Path, err: &serde_yaml_ng::Error) -> LoadError {
        let location = err.location().map(|l| (l.line(), l.column()));
        let mut message = err.to_string();
        // serde_yaml_ng appends " at line L column C"; we print the location up front.
        if location.is_some() {
            if let Some(at) = message.rfind(" at line ") {
                message.truncate(at);
            }
        }
        LoadError::Syntax {
            file: file.to_path_buf(),
            location,
            message,
        }
    }

    pub(crate) fn invalid(file: &Path, location: Option<(usize, usize)>, message: String) -> Self {
        LoadError::Invalid {
            file: file.to_path_buf(),
            location,
            message,
        }
    }
}

struct Located<'a>(&'a PathBuf, Option<(usize, usize)>);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.0.display()),
            None => write!(f, "{}", self.0.display()),
        }
    }
}
