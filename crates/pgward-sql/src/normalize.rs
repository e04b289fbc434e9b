//! The statement text with every literal replaced by `?`, for spans and audit lines.
//!
//! Works on PostgreSQL's own token boundaries (`lex.rs`), so a quote inside a comment or a
//! dollar quote cannot make a literal leak into the output. Comments are dropped (they may
//! hold values too) and whitespace runs collapse to one space. Never outputs a literal.

use crate::lex::{Kind, Tok};

/// Type names that form a typed literal with a following string (`DATE '2024-01-01'`).
const TYPED_LITERAL_PREFIXES: &[&str] = &[
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
    "json",
    "jsonb",
    "uuid",
    "numeric",
    "int",
    "integer",
    "bigint",
    "text",
    "bool",
    "boolean",
];

pub(crate) fn normalize(text: &str, toks: &[Tok]) -> String {
    let mut out = String::new();
    // Where in `out` the last significant token started, if it was a typed-literal prefix.
    let mut typed_prefix_at: Option<usize> = None;
    let mut pending_space = false;
    for tok in toks {
        if tok.kind.is_trivia() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        let raw = &text[tok.start..tok.end];
        if tok.kind.is_literal() {
            match typed_prefix_at.take() {
                Some(at) if tok.kind != Kind::Number => out.truncate(at),
                _ => {}
            }
            out.push('?');
            continue;
        }
        typed_prefix_at = None;
        if tok.kind == Kind::Ident
            && TYPED_LITERAL_PREFIXES.contains(&raw.to_ascii_lowercase().as_str())
        {
            typed_prefix_at = Some(out.len());
        }
        out.push_str(raw);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::lex::lex;

    fn norm(sql: &str) -> String {
        normalize(sql, &lex(sql).unwrap())
    }

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            norm("SELECT id FROM t WHERE a = 'x''y' AND b = 42 -- 'secret'\n AND c = $$z$$"),
            "SELECT id FROM t WHERE a = ? AND b = ? AND c = ?"
        );
        assert_eq!(
            norm("SELECT DATE '2024-01-01', E'\\n', 1.5e3"),
            "SELECT ?, ?, ?"
        );
        assert_eq!(norm("SELECT $1, /* 'x' */ x'1F'"), "SELECT $1, ?");
        assert_eq!(norm("SELECT interval '1 day'"), "SELECT ?");
    }
}
