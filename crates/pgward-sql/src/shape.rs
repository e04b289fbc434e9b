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
    let mut buf = String::new();
    match decision_shape_into(sql, &mut buf)? {
        false => Some(Cow::Borrowed(sql)),
        true => Some(Cow::Owned(buf)),
    }
}

/// [`decision_shape`] for a caller that shapes statement after statement, into a buffer
/// it keeps (no allocation per statement): `Some(true)` when the shape differs from `sql`
/// and is now in `buf`, `Some(false)` when `sql` is its own shape, `None` when it has none
/// (`buf` then holds nothing meaningful).
pub fn decision_shape_into(sql: &str, buf: &mut String) -> Option<bool> {
    match scanned_shape(sql, buf) {
        Scan::Same => Some(false),
        Scan::Replaced => Some(true),
        Scan::Doubtful => None,
        Scan::AskTheLexer if only_parameter_digits(sql.as_bytes()) => Some(false),
        Scan::AskTheLexer => match lexed_shape(sql)? {
            Cow::Borrowed(_) => Some(false),
            Cow::Owned(shape) => {
                *buf = shape;
                Some(true)
            }
        },
    }
}

/// The shape as the lexer finds it: what [`decision_shape`] answers for every text the
/// byte scanner leaves to the lexer. Public for the fuzz target that checks that both
/// agree; the proxy calls [`decision_shape`].
#[doc(hidden)]
pub fn lexed_shape(sql: &str) -> Option<Cow<'_, str>> {
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

/// What one pass over the bytes found.
enum Scan {
    /// The text is its own shape.
    Same,
    /// The shape, numbers replaced, is in the output buffer.
    Replaced,
    /// The lexer would refuse the text or find a doubtful number: no shape.
    Doubtful,
    /// Something only the lexer reads exactly (see [`scanned_shape`]).
    AskTheLexer,
}

/// The shape in one pass over the bytes, for the text of everyday statements: ASCII
/// identifiers and keywords, numbers, operators, `'...'` strings, `"..."` identifiers,
/// `$n` parameters and `--` comments (any bytes inside those three). Everything else is
/// left to the lexer: a non-ASCII character outside them, a block comment, a dollar quote,
/// a prefixed literal (`E'`, `B'`, `X'`, `N'`, `U&`). Where it answers, it reads tokens
/// exactly as [`lex`] does (the same `number` rules, the same errors), so it answers what
/// [`lexed_shape`] would: unit tests over the corpus and generated texts, and the
/// `analyse_check` fuzz target, check that. A pgbench statement costs a few hundred
/// instructions here instead of a few thousand in the lexer.
fn scanned_shape(sql: &str, out: &mut String) -> Scan {
    use Class::*;
    let b = sql.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let class = |i: usize| b.get(i).map_or(End, |&c| CLASS[usize::from(c)]);
    // Whether a number was replaced yet (and `out` holds the shape so far).
    let mut replaced = false;
    let mut copied = 0;
    let mut i = 0;
    loop {
        match class(i) {
            End => break,
            Space | Other => i += 1,
            Letter => {
                let prefixed = match at(i + 1) {
                    Some(b'\'') => {
                        matches!(b[i], b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N')
                    }
                    Some(b'&') => matches!(b[i], b'u' | b'U'),
                    _ => false,
                };
                if prefixed {
                    return Scan::AskTheLexer;
                }
                let rest = b.get(i + 1..).unwrap_or_default();
                i += 1 + rest
                    .iter()
                    .position(|&c| !IDENT_CONT[usize::from(c)])
                    .unwrap_or(rest.len());
                if class(i) == High {
                    return Scan::AskTheLexer;
                }
            }
            Dot if class(i + 1) != Digit => i += 1,
            Digit | Dot => {
                // `Lexer::number`, byte for byte.
                let start = i;
                while class(i) == Digit {
                    i += 1;
                }
                if at(i) == Some(b'.') && at(i + 1) != Some(b'.') {
                    i += 1;
                    while class(i) == Digit {
                        i += 1;
                    }
                }
                if matches!(at(i), Some(b'e' | b'E')) {
                    let digit_at = if matches!(at(i + 1), Some(b'+' | b'-')) {
                        i + 2
                    } else {
                        i + 1
                    };
                    if class(digit_at) == Digit {
                        i = digit_at;
                        while class(i) == Digit {
                            i += 1;
                        }
                    }
                }
                // Trailing junk (a lexing error), or another number glued on (`1.2.3`).
                let junk = matches!(class(i), Letter | Digit | Dollar | High);
                let glued = at(i) == Some(b'.') && class(i + 1) == Digit;
                if junk || glued {
                    return Scan::Doubtful;
                }
                let Some(before) = sql.get(copied..start) else {
                    return Scan::AskTheLexer;
                };
                if !replaced {
                    out.clear();
                    out.reserve(sql.len());
                    replaced = true;
                }
                out.push_str(before);
                out.push('0');
                copied = i;
            }
            Quote => {
                let (start, quote) = (i, b[i]);
                i += 1;
                loop {
                    match b.get(i..).and_then(|rest| memchr::memchr(quote, rest)) {
                        None => return Scan::Doubtful,
                        Some(q) if at(i + q + 1) == Some(quote) => i += q + 2,
                        Some(q) => {
                            i += q + 1;
                            break;
                        }
                    }
                }
                if quote == b'"' && i - start == 2 {
                    return Scan::Doubtful;
                }
            }
            Dash if at(i + 1) == Some(b'-') => {
                i = match b
                    .get(i..)
                    .and_then(|rest| memchr::memchr2(b'\n', b'\r', rest))
                {
                    Some(eol) => i + eol,
                    None => b.len(),
                };
            }
            Dash => i += 1,
            Slash if at(i + 1) == Some(b'*') => return Scan::AskTheLexer,
            Slash => i += 1,
            Dollar => match class(i + 1) {
                Digit => {
                    i += 1;
                    while class(i) == Digit {
                        i += 1;
                    }
                    if matches!(class(i), Letter | Digit | Dollar | High) {
                        return Scan::Doubtful;
                    }
                }
                // A dollar quote, maybe.
                Letter | Dollar | High => return Scan::AskTheLexer,
                _ => i += 1,
            },
            Nul => return Scan::Doubtful,
            High => return Scan::AskTheLexer,
        }
    }
    if !replaced {
        return Scan::Same;
    }
    match sql.get(copied..) {
        Some(rest) => {
            out.push_str(rest);
            Scan::Replaced
        }
        None => Scan::AskTheLexer,
    }
}

/// What the scanner sees in a byte. `Letter` is `[A-Za-z_]` (an identifier's start);
/// identifiers go on with `Letter`, `Digit` and `Dollar`, as in the lexer (`High`, any byte of
/// a non-ASCII character, would too, but the scanner leaves those to the lexer).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    Letter,
    Digit,
    Dot,
    /// `'` or `"`
    Quote,
    Dash,
    Slash,
    Dollar,
    Nul,
    High,
    Other,
    /// Past the last byte.
    End,
}

/// `Letter`, `Digit` or `Dollar`: what goes on an identifier the scanner reads.
static IDENT_CONT: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = matches!(CLASS[i], Class::Letter | Class::Digit | Class::Dollar);
        i += 1;
    }
    table
};

static CLASS: [Class; 256] = {
    let mut table = [Class::Other; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match i as u8 {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => Class::Space,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => Class::Letter,
            b'0'..=b'9' => Class::Digit,
            b'.' => Class::Dot,
            b'\'' | b'"' => Class::Quote,
            b'-' => Class::Dash,
            b'/' => Class::Slash,
            b'$' => Class::Dollar,
            0 => Class::Nul,
            0x80..=0xff => Class::High,
            _ => Class::Other,
        };
        i += 1;
    }
    table
};

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

    fn scanned(sql: &str) -> Option<Option<String>> {
        let mut out = String::from("left over");
        match scanned_shape(sql, &mut out) {
            Scan::Same => Some(Some(sql.to_owned())),
            Scan::Replaced => Some(Some(out)),
            Scan::Doubtful => Some(None),
            Scan::AskTheLexer => None,
        }
    }

    /// One buffer kept across statements (as the proxy keeps one per session) shapes each
    /// as a fresh one would, whatever the statement before it left there.
    #[test]
    fn a_kept_buffer_shapes_as_a_fresh_one() {
        let texts = [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
            "SELECT 1",
            "SELECT a FROM t WHERE a = $1",
            "SELECT /* 1 */ 2",
            "SELECT 1abc",
            "SELECT $$x$$1",
            "UPDATE t SET a = 3 WHERE id IN (1, 2)",
            "SELECT 'caf\u{e9}', 7",
            "",
        ];
        let mut buf = String::new();
        for sql in texts.iter().chain(texts.iter().rev()) {
            let kept = decision_shape_into(sql, &mut buf).map(|replaced| match replaced {
                true => buf.clone(),
                false => (*sql).to_owned(),
            });
            let fresh = decision_shape(sql).map(Cow::into_owned);
            assert_eq!(kept, fresh, "{sql}");
            assert_eq!(
                matches!(decision_shape(sql), Some(Cow::Owned(_))),
                kept.is_some() && decision_shape_into(sql, &mut buf) == Some(true),
                "{sql}"
            );
        }
    }

    #[test]
    fn everyday_statements_are_scanned_without_the_lexer() {
        for (sql, shape) in [
            (
                "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
                "SELECT abalance FROM pgbench_accounts WHERE aid = 0;",
            ),
            (
                "UPDATE t SET a = a + -1.5e-3, b = 'x''1', \"c\"\"2\" = $1 -- 7\nWHERE id IN (1,2)",
                "UPDATE t SET a = a + -0, b = 'x''1', \"c\"\"2\" = $1 -- 7\nWHERE id IN (0,0)",
            ),
            (
                "SELECT 1..2, .5, 1., a1, a$1, t.x",
                "SELECT 0.0, 0, 0, a1, a$1, t.x",
            ),
            ("SELECT 'caf\u{e9} 1' FROM t", "SELECT 'caf\u{e9} 1' FROM t"),
        ] {
            assert_eq!(scanned(sql), Some(Some(shape.to_owned())), "{sql}");
            assert_eq!(lexed_shape(sql).as_deref(), Some(shape), "{sql}");
        }
        // Doubtful the way the lexer finds it: no shape.
        for sql in [
            "SELECT 1abc",
            "SELECT 1.2.3",
            "SELECT 'x",
            "SELECT \"\"",
            "SELECT $1a",
        ] {
            assert_eq!(scanned(sql), Some(None), "{sql}");
            assert_eq!(lexed_shape(sql), None, "{sql}");
        }
        // Only the lexer reads these exactly.
        for sql in [
            "SELECT E'\\'1'",
            "SELECT x'1F'",
            "SELECT U&'a' || 1",
            "SELECT /* 1 */ 2",
            "SELECT $q$1$q$",
            "SELECT caf\u{e9}1",
        ] {
            assert_eq!(scanned(sql), None, "{sql}");
        }
    }

    /// Generated texts from fragments that exercise every rule of the lexer: wherever the
    /// scanner answers, the lexer answers the same.
    #[test]
    fn the_scanner_answers_what_the_lexer_answers() {
        const FRAGMENTS: [&str; 41] = [
            "SELECT", " ", "\n", "1", "42", ".", "..", "e", "E", "+", "-", "--", "'", "''", "\"",
            "$", "$1", "$$", "a", "_", "x", "b", "n", "u", "U", "&", "/*", "*/", "*", "/", ";",
            "(", ")", ",", "\u{e9}", "\r", "0x", "\\", "=", "\t", "\0",
        ];
        // Half the picks from these, so numbers meet dots, exponents and each other often.
        const NUMERIC: [&str; 8] = ["1", "42", ".", "e", "E", "+", "-", " "];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut shapes, mut doubtful, mut asked) = (0, 0, 0);
        for _ in 0..200_000 {
            let len = (next() % 12) as usize;
            let sql: String = (0..len)
                .map(|_| match next() % 2 {
                    0 => NUMERIC[(next() % NUMERIC.len() as u64) as usize],
                    _ => FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize],
                })
                .collect();
            match scanned(&sql) {
                Some(shape) => {
                    assert_eq!(lexed_shape(&sql).map(Cow::into_owned), shape, "{sql:?}");
                    if shape.is_some() {
                        shapes += 1;
                    } else {
                        doubtful += 1;
                    }
                }
                None => asked += 1,
            }
        }
        assert!(
            shapes > 20_000 && doubtful > 20_000 && asked > 20_000,
            "{shapes} {doubtful} {asked}"
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
