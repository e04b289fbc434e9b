//! The analyser's one error type: every reason a statement cannot be analysed.
//!
//! Each message is written for a DBA (it reaches `pgward check` and the deny reason of a
//! span); it never contains literal values from the statement.

use thiserror::Error;

/// Why a SQL string could not be analysed. The policy layer turns every one of these into
/// a denial: nothing that fails analysis is ever forwarded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AnalyseError {
    /// The text is not SQL that sqlparser and PostgreSQL's lexer agree on.
    #[error("parse error at line {line} column {column}: {message}")]
    Parse {
        line: u64,
        column: u64,
        message: String,
    },
    /// A lexing construct where sqlparser would read the text differently from PostgreSQL.
    #[error("lexer disagreement at line {line} column {column}: {message}")]
    Lex {
        line: u64,
        column: u64,
        message: String,
    },
    /// A statement kind, clause or expression form the analyser does not understand.
    #[error("{0} not supported")]
    Unsupported(String),
    /// A statement pgward never forwards (SET ROLE, DO, COPY TO PROGRAM, ...).
    #[error("{0}")]
    NotAllowed(String),
    /// An unknown or ambiguous relation, column or schema.
    #[error("{0}")]
    Resolve(String),
    /// The statement nests deeper than the analyser's recursion limit.
    #[error("statement nests too deeply")]
    TooDeep,
}

/// A small label for metrics and logs (`pgward_denials_total{kind=...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Parse,
    Unsupported,
    NotAllowed,
    Resolve,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Parse => "parse",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::NotAllowed => "not_allowed",
            ErrorKind::Resolve => "resolve",
        }
    }
}

impl AnalyseError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AnalyseError::Parse { .. } | AnalyseError::Lex { .. } | AnalyseError::TooDeep => {
                ErrorKind::Parse
            }
            AnalyseError::Unsupported(_) => ErrorKind::Unsupported,
            AnalyseError::NotAllowed(_) => ErrorKind::NotAllowed,
            AnalyseError::Resolve(_) => ErrorKind::Resolve,
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        AnalyseError::Unsupported(what.into())
    }

    pub(crate) fn not_allowed(what: impl Into<String>) -> Self {
        AnalyseError::NotAllowed(what.into())
    }

    pub(crate) fn resolve(what: impl Into<String>) -> Self {
        AnalyseError::Resolve(what.into())
    }
}
