//! The decision shape of a statement: its text with every numeric literal replaced by
//! `0`. What a statement needs never depends on the value of a number (columns, tables,
//! functions and settings are named by identifiers and strings, never by numbers), so a
//! decision cached for one shape holds for every statement of that shape — which is what
//! lets the proxy cache `... WHERE id = 42` and `... WHERE id = 43` once.
//!
//! The corpus test in `tests/analyser/shape.rs` checks that invariant: analysing a statement and
//! analysing its shape give the same needs. Anything the lexer finds doubtful (a number
//! glued to an identifier, `1_000`, `0x1F`, a lexing error) has no shape: it is decided on
//! its own text.

use std::borrow::Cow;

use crate::lex::{lex, Kind};

/// The statement's shape, or `None` when it must be decided on its exact text.
pub fn decision_shape(sql: &str) -> Option<Cow<'_, str>> {
    if only_parameter_digits(sql.as_bytes()) {
        return Some(Cow::Borrowed(sql));
    }
    let tokens = lex(sql).ok()?;
    if !tokens.iter().any(|t| t.kind == Kind::Number) {
        return Some(Cow::Borrowed(sql));
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.kind != Kind::Number {
            continue;
        }
        let text = sql.get(t.start..t.end)?;
        let plain = text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        let glued = tokens
            .get(i + 1)
            .is_some_and(|n| n.start == t.end && matches!(n.kind, Kind::Ident | Kind::Number));
        if !plain || glued {
            return None;
        }
        out.push_str(sql.get(at..t.start)?);
        out.push('0');
        at = t.end;
    }
    out.push_str(sql.get(at..)?);
    Some(Cow::Owned(out))
}

/// True when no digit can start a numeric literal, so the shape is the text itself
/// without lexing it: every run of digits follows a `$` that itself follows neither an
/// identifier character nor another `$` (so it is a parameter `$1`, or text inside a
/// string, comment or quoted identifier). Statements of the extended protocol, whose only
/// digits are their parameter numbers, then cost no lexing on each Parse. A `$` after an
/// identifier character or a `$` may end an identifier (`a$`) or a dollar quote (`$q$`),
/// after which a digit may start a number: those are lexed.
fn only_parameter_digits(sql: &[u8]) -> bool {
    for (i, &b) in sql.iter().enumerate() {
        if !b.is_ascii_digit() || (i > 0 && sql[i - 1].is_ascii_digit()) {
            continue;
        }
        // The first digit of a run: `$` before it, and before that no identifier character.
        let dollar = i >= 1 && sql[i - 1] == b'$';
        let after_identifier = i >= 2 && {
            let c = sql[i - 2];
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$') || !c.is_ascii()
        };
        if !dollar || after_identifier {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_go_everything_else_stays() {
        assert_eq!(
            decision_shape("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;").as_deref(),
            Some("SELECT abalance FROM pgbench_accounts WHERE aid = 0;")
        );
        assert_eq!(
            decision_shape("SELECT 'a1', \"c2\", t3.x, $1 /* 4 */ FROM t3 LIMIT 10 OFFSET 2.5e3")
                .as_deref(),
            Some("SELECT 'a1', \"c2\", t3.x, $1 /* 4 */ FROM t3 LIMIT 0 OFFSET 0")
        );
        assert_eq!(decision_shape("SELECT 1").as_deref(), Some("SELECT 0"));
        assert_eq!(decision_shape("SELECT x").as_deref(), Some("SELECT x"));
    }

    #[test]
    fn parameter_digits_are_not_lexed() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
            "UPDATE t SET a = $12, b = ($3) WHERE c = '$4'",
            "SELECT $1 -- $2",
        ] {
            assert!(only_parameter_digits(sql.as_bytes()), "{sql}");
            assert!(matches!(decision_shape(sql), Some(Cow::Borrowed(s)) if s == sql));
        }
        // A `$` that may end an identifier or a dollar quote: the digit may be a number.
        for sql in [
            "SELECT $$x$$1",
            "SELECT $q$x$q$1",
            "SELECT a$1",
            "SELECT \u{e9}$1",
            "SELECT 1",
            "SELECT .5",
            "SELECT $1, 2",
            "1",
        ] {
            assert!(!only_parameter_digits(sql.as_bytes()), "{sql}");
        }
        assert_eq!(
            decision_shape("SELECT $$x$$1").as_deref(),
            Some("SELECT $$x$$0")
        );
        assert_eq!(
            decision_shape("SELECT $1, 2").as_deref(),
            Some("SELECT $1, 0")
        );
    }

    #[test]
    fn doubtful_numbers_have_no_shape() {
        assert_eq!(decision_shape("SELECT 123abc"), None);
        assert_eq!(decision_shape("SELECT 0x1F"), None);
        assert_eq!(decision_shape("SELECT 1_000"), None);
        assert_eq!(decision_shape("SELECT 1, 'unterminated"), None);
    }
}
