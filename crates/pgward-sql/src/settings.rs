//! SET / RESET: the one reviewed table of settings a client may change through pgward.
//!
//! Everything not in [`HARMLESS_SETTINGS`] is refused, notably search_path,
//! standard_conforming_strings, role and session_authorization (pgward pins them), and
//! client_encoding to an encoding whose multibyte characters can contain ASCII bytes.
//! The proxy uses [`check_setting`] for startup-packet options too.

use sqlparser::ast::{Expr, Reset, Set, UnaryOperator, Value};

use crate::error::AnalyseError;
use crate::ident::{fold, fold_object_name};

/// Settings drivers and ORMs change, which cannot weaken pgward's pinned session state.
/// Reviewed: each is session-local, affects formatting or timeouts only, and needs no
/// privilege in PostgreSQL.
pub const HARMLESS_SETTINGS: &[&str] = &[
    "application_name",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "default_transaction_deferrable",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "extra_float_digits",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "intervalstyle",
    // Planner/executor strategy only (asyncpg turns it off around its introspection).
    "jit",
    "lock_timeout",
    "statement_timeout",
    "timezone",
    "transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
    "xmloption",
];

/// Client encodings in which every byte below 0x80 is an ASCII character (so a quote or
/// backslash can never hide inside a multibyte character). Names as PostgreSQL's
/// `clean_encoding_name` leaves them: lower case, alphanumerics only.
const ASCII_SAFE_ENCODINGS: &[&str] = &[
    "default",
    "utf8",
    "unicode",
    "sqlascii",
    "latin1",
    "latin2",
    "latin3",
    "latin4",
    "latin5",
    "latin6",
    "latin7",
    "latin8",
    "latin9",
    "latin10",
    "iso88591",
    "iso88592",
    "iso88595",
    "iso88596",
    "iso88597",
    "iso88598",
    "iso885915",
    "win866",
    "win874",
    "win1250",
    "win1251",
    "win1252",
    "win1253",
    "win1254",
    "win1255",
    "win1256",
    "win1257",
    "win1258",
    "koi8r",
    "koi8u",
    "euccn",
    "eucjp",
    "euckr",
    "euctw",
    "eucjis2004",
    "muleinternal",
];

/// Whether `name = value` may be set (value as the client wrote it, unquoted).
pub fn check_setting(name: &str, value: &str) -> Result<(), AnalyseError> {
    let name = name.to_ascii_lowercase();
    if !HARMLESS_SETTINGS.contains(&name.as_str()) {
        return Err(AnalyseError::not_allowed(format!(
            "SET {name} is not allowed"
        )));
    }
    if name == "client_encoding" {
        let clean: String = value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if !ASCII_SAFE_ENCODINGS.contains(&clean.as_str()) {
            return Err(AnalyseError::not_allowed(format!(
                "client_encoding {value} is not allowed (not ASCII-safe)"
            )));
        }
    }
    Ok(())
}

/// The text of a SET value: a literal, a bare word or a signed number. Anything else
/// (an expression, a function call) is refused.
fn value_text(e: &Expr) -> Result<String, AnalyseError> {
    match e {
        Expr::Identifier(i) => Ok(fold(i)),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::Number(s, _) => Ok(s.clone()),
            Value::Boolean(b) => Ok(b.to_string()),
            _ => Err(AnalyseError::unsupported("this SET value is not supported")),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } if matches!(**expr, Expr::Value(_)) => value_text(expr).map(|v| format!("-{v}")),
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } if matches!(**expr, Expr::Value(_)) => value_text(expr),
        _ => Err(AnalyseError::unsupported(format!(
            "SET value {e} is not supported"
        ))),
    }
}

fn check_assignment(
    variable: &sqlparser::ast::ObjectName,
    values: &[Expr],
) -> Result<(), AnalyseError> {
    let name = fold_object_name(variable)?.join(".");
    let mut texts = Vec::new();
    for v in values {
        texts.push(value_text(v)?);
    }
    if texts.is_empty() {
        return Err(AnalyseError::unsupported(
            "SET without a value is not supported",
        ));
    }
    for text in &texts {
        check_setting(&name, text)?;
    }
    Ok(())
}

pub(crate) fn check_set(set: &Set) -> Result<(), AnalyseError> {
    match set {
        Set::SingleAssignment {
            scope: _,
            hivevar,
            variable,
            values,
        } => {
            if *hivevar {
                return Err(AnalyseError::unsupported("SET HIVEVAR is not supported"));
            }
            check_assignment(variable, values)
        }
        Set::MultipleAssignments { assignments } => {
            for a in assignments {
                check_assignment(&a.name, std::slice::from_ref(&a.value))?;
            }
            Ok(())
        }
        Set::ParenthesizedAssignments { .. } | Set::SetSessionParam(_) => {
            Err(AnalyseError::unsupported("this SET form is not supported"))
        }
        Set::SetSessionAuthorization(_) => Err(AnalyseError::not_allowed(
            "SET SESSION AUTHORIZATION is not allowed",
        )),
        Set::SetRole { .. } => Err(AnalyseError::not_allowed("SET ROLE is not allowed")),
        Set::SetTimeZone { value, .. } => check_setting("timezone", &value_text(value)?),
        Set::SetNames { charset_name, .. } => check_setting("client_encoding", &charset_name.value),
        Set::SetNamesDefault {} => Ok(()),
        Set::SetTransaction { snapshot, .. } => match snapshot {
            None => Ok(()),
            Some(_) => Err(AnalyseError::not_allowed(
                "SET TRANSACTION SNAPSHOT is not allowed",
            )),
        },
    }
}

pub(crate) fn check_reset(reset: &Reset) -> Result<(), AnalyseError> {
    match reset {
        Reset::ALL => Err(AnalyseError::not_allowed(
            "RESET ALL is not allowed (it resets pinned settings)",
        )),
        Reset::SessionAuthorization => Err(AnalyseError::not_allowed(
            "RESET SESSION AUTHORIZATION is not allowed",
        )),
        Reset::ConfigurationParameter(name) => {
            let name = fold_object_name(name)?.join(".");
            if HARMLESS_SETTINGS.contains(&name.as_str()) {
                Ok(())
            } else {
                Err(AnalyseError::not_allowed(format!(
                    "RESET {name} is not allowed"
                )))
            }
        }
    }
}
