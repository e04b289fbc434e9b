//! SQL text -> one parsed statement per `;`, with PostgreSQL's lexing as the authority.
//!
//! 1. `lex.rs` splits the text the way PostgreSQL does (so a `;` inside a string, comment
//!    or dollar quote never splits).
//! 2. `U&"..."` and `U&'...'` (with UESCAPE) are decoded here and rewritten to plain
//!    quoted forms, because sqlparser reads `U&"x"` as the expression `U & "x"`.
//! 3. sqlparser tokenizes each statement; every comment, string literal and quoted
//!    identifier must start and end where PostgreSQL's lexer says. Any disagreement is an
//!    error, never a guess. Then sqlparser parses the checked tokens.
//!
//! Never hands on a statement whose inert stretches sqlparser read differently.

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::error::AnalyseError;
use crate::ident::{decode_unicode_escapes, valid_uescape};
use crate::lex::{lex, line_col, Kind, Tok};
use crate::normalize::normalize;

/// sqlparser's recursion limit: deep enough for ORM queries, shallow enough for our stack.
const RECURSION_LIMIT: usize = 64;

/// One statement of the input.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub normalized: String,
    pub body: Body,
}

#[derive(Debug)]
pub(crate) enum Body {
    Sql(Box<Statement>),
    /// PREPARE TRANSACTION / COMMIT PREPARED / ROLLBACK PREPARED 'gid' (sqlparser lacks them).
    TwoPhase,
    /// MOVE [direction] [FROM | IN] cursor (sqlparser lacks it).
    Move,
}

/// Splits, checks and parses every statement of `sql`. Empty statements are skipped.
pub(crate) fn parse(sql: &str) -> Result<Vec<Parsed>, AnalyseError> {
    let toks = lex(sql)?;
    let mut out = Vec::new();
    for piece in toks.split(|t| t.kind == Kind::Semicolon) {
        if piece.iter().all(|t| t.kind.is_trivia()) {
            continue;
        }
        let Some(first) = piece.first() else {
            continue;
        };
        let normalized = normalize(sql, piece);
        let text = rewrite_unicode(sql, piece)?;
        let origin = line_col(sql, first.start);
        let body = parse_one(&text, origin)?;
        out.push(Parsed { normalized, body });
    }
    Ok(out)
}

/// Moves a position inside a statement to the position in the whole text.
fn shift(origin: (u64, u64), line: u64, column: u64) -> (u64, u64) {
    if line <= 1 {
        (origin.0, origin.1 + column.saturating_sub(1))
    } else {
        (origin.0 + line - 1, column)
    }
}

fn parse_one(text: &str, origin: (u64, u64)) -> Result<Body, AnalyseError> {
    let toks = lex(text)?;
    if let Some(body) = special(text, &toks, origin)? {
        return Ok(body);
    }
    // `TABLE t` is `SELECT * FROM t` in PostgreSQL's grammar; sqlparser only knows it
    // inside set operations.
    if let Some(first) = toks.iter().find(|t| !t.kind.is_trivia()) {
        if first.kind == Kind::Ident && text[first.start..first.end].eq_ignore_ascii_case("table") {
            let rewritten = format!("SELECT * FROM {}", &text[first.end..]);
            return parse_one(&rewritten, origin);
        }
    }
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| {
            let (line, column) = shift(origin, e.location.line, e.location.column);
            AnalyseError::Parse {
                line,
                column,
                message: e.message.clone(),
            }
        })?;
    check_agreement(text, &toks, &tokens, origin)?;
    let mut statements = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| parser_error(e, origin))?;
    if statements.len() != 1 {
        return Err(AnalyseError::Parse {
            line: origin.0,
            column: origin.1,
            message: "sqlparser split this statement differently from PostgreSQL".into(),
        });
    }
    match statements.pop() {
        Some(statement) => Ok(Body::Sql(Box::new(statement))),
        None => Err(AnalyseError::unsupported("empty statement")),
    }
}

fn parser_error(e: ParserError, origin: (u64, u64)) -> AnalyseError {
    let message = match e {
        ParserError::RecursionLimitExceeded => return AnalyseError::TooDeep,
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
    };
    // sqlparser appends " at Line: L, Column: C".
    let (message, line, column) = match message.rsplit_once(" at Line: ") {
        Some((head, tail)) => {
            let mut nums = tail
                .split(", Column: ")
                .map(|n| n.trim().parse::<u64>().unwrap_or(1));
            let line = nums.next().unwrap_or(1);
            let column = nums.next().unwrap_or(1);
            (head.to_string(), line, column)
        }
        None => (message, 1, 1),
    };
    let (line, column) = shift(origin, line, column);
    AnalyseError::Parse {
        line,
        column,
        message: message.trim_start_matches("sql parser error: ").to_string(),
    }
}

/// The class of an inert stretch of text: what must agree between the two lexers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inert {
    Comment,
    Literal,
    QuotedIdent,
}

fn pg_inert(kind: Kind) -> Option<Inert> {
    match kind {
        Kind::LineComment | Kind::BlockComment => Some(Inert::Comment),
        Kind::QuotedIdent | Kind::UnicodeIdent => Some(Inert::QuotedIdent),
        k if k.is_literal() && k != Kind::Number => Some(Inert::Literal),
        _ => None,
    }
}

fn sqlparser_inert(token: &Token) -> Option<Inert> {
    match token {
        Token::Whitespace(Whitespace::SingleLineComment { .. })
        | Token::Whitespace(Whitespace::MultiLineComment(_)) => Some(Inert::Comment),
        Token::Word(w) if w.quote_style.is_some() => Some(Inert::QuotedIdent),
        Token::Word(_)
        | Token::Number(..)
        | Token::Whitespace(_)
        | Token::Placeholder(_)
        | Token::EOF => None,
        Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::QuoteDelimitedStringLiteral(_)
        | Token::NationalQuoteDelimitedStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::CopyData { .. } => Some(Inert::Literal),
        // Operators and punctuation are never inert.
        _ => None,
    }
}

/// Byte offset of a sqlparser location (1-based line, 1-based column in characters).
fn offset_of(line_starts: &[usize], text: &str, loc: Location) -> Option<usize> {
    let start = *line_starts.get(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
    let col = usize::try_from(loc.column).ok()?.checked_sub(1)?;
    let mut chars = text[start..].char_indices();
    match chars.nth(col) {
        Some((i, _)) => Some(start + i),
        None => {
            let rest = text.len() - start;
            (text[start..].chars().count() == col).then_some(start + rest)
        }
    }
}

/// Every comment, literal and quoted identifier must be the same stretch of text for
/// PostgreSQL's lexer and sqlparser's tokenizer.
fn check_agreement(
    text: &str,
    toks: &[Tok],
    tokens: &[TokenWithSpan],
    origin: (u64, u64),
) -> Result<(), AnalyseError> {
    let mut line_starts = vec![0];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    let ours: Vec<(usize, usize, Inert)> = toks
        .iter()
        .filter_map(|t| pg_inert(t.kind).map(|c| (t.start, t.end, c)))
        .collect();
    let mut theirs = Vec::new();
    for t in tokens {
        let Some(class) = sqlparser_inert(&t.token) else {
            continue;
        };
        let start = offset_of(&line_starts, text, t.span.start);
        let end = offset_of(&line_starts, text, t.span.end);
        match (start, end) {
            (Some(s), Some(e)) => theirs.push((s, e, class)),
            _ => return Err(disagreement(text, 0, origin)),
        }
    }
    for i in 0..ours.len().max(theirs.len()) {
        if ours.get(i) != theirs.get(i) {
            let at = match (ours.get(i), theirs.get(i)) {
                (Some(a), Some(b)) => a.0.min(b.0),
                (Some(a), None) | (None, Some(a)) => a.0,
                (None, None) => 0,
            };
            return Err(disagreement(text, at, origin));
        }
    }
    Ok(())
}

fn disagreement(text: &str, at: usize, origin: (u64, u64)) -> AnalyseError {
    let (l, c) = line_col(text, at);
    let (line, column) = shift(origin, l, c);
    AnalyseError::Lex {
        line,
        column,
        message: "sqlparser would read a comment, string or quoted identifier here \
                  differently from PostgreSQL"
            .into(),
    }
}

/// The text of `piece` with every `U&` identifier and string decoded into a plain quoted
/// form that sqlparser reads correctly.
fn rewrite_unicode(sql: &str, piece: &[Tok]) -> Result<String, AnalyseError> {
    let (Some(first), Some(last)) = (piece.first(), piece.last()) else {
        return Ok(String::new());
    };
    let mut out = String::with_capacity(last.end - first.start);
    let mut copied_to = first.start;
    let mut i = 0;
    while i < piece.len() {
        let tok = piece[i];
        if !matches!(tok.kind, Kind::UnicodeIdent | Kind::UnicodeString) {
            i += 1;
            continue;
        }
        let quote = if tok.kind == Kind::UnicodeIdent {
            '"'
        } else {
            '\''
        };
        let doubled: String = [quote, quote].iter().collect();
        let body = sql[tok.start + 3..tok.end - 1].replace(&doubled, &quote.to_string());
        let (esc, clause_end, next_i) = uescape_clause(sql, piece, i)?;
        let decoded = decode_unicode_escapes(&body, esc).map_err(|m| {
            let (line, column) = line_col(sql, tok.start);
            AnalyseError::Parse {
                line,
                column,
                message: m,
            }
        })?;
        if decoded.is_empty() && quote == '"' {
            let (line, column) = line_col(sql, tok.start);
            return Err(AnalyseError::Parse {
                line,
                column,
                message: "zero-length delimited identifier".into(),
            });
        }
        out.push_str(&sql[copied_to..tok.start]);
        out.push(quote);
        out.push_str(&decoded.replace(quote, &doubled));
        out.push(quote);
        copied_to = clause_end;
        i = next_i;
    }
    out.push_str(&sql[copied_to..last.end]);
    Ok(out)
}

/// The escape character of the `U&` token at `i`, where its text ends, and the next token.
fn uescape_clause(
    sql: &str,
    piece: &[Tok],
    i: usize,
) -> Result<(char, usize, usize), AnalyseError> {
    let tok = piece[i];
    let significant: Vec<usize> = (i + 1..piece.len())
        .filter(|&j| !piece[j].kind.is_trivia())
        .take(2)
        .collect();
    let is_uescape = significant.first().is_some_and(|&j| {
        piece[j].kind == Kind::Ident
            && sql[piece[j].start..piece[j].end].eq_ignore_ascii_case("uescape")
    });
    if !is_uescape {
        return Ok(('\\', tok.end, i + 1));
    }
    let bad = || {
        let (line, column) = line_col(sql, tok.start);
        AnalyseError::Parse {
            line,
            column,
            message: "invalid Unicode escape character".into(),
        }
    };
    let j = *significant.get(1).ok_or_else(bad)?;
    let lit = piece[j];
    if lit.kind != Kind::String {
        return Err(bad());
    }
    let body = sql[lit.start + 1..lit.end - 1].replace("''", "'");
    let mut chars = body.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if valid_uescape(c) => Ok((c, lit.end, j + 1)),
        _ => Err(bad()),
    }
}

/// Statements sqlparser cannot parse but PostgreSQL allows and pgward always permits.
fn special(text: &str, toks: &[Tok], origin: (u64, u64)) -> Result<Option<Body>, AnalyseError> {
    let sig: Vec<&Tok> = toks.iter().filter(|t| !t.kind.is_trivia()).collect();
    let word = |k: usize| -> Option<String> {
        sig.get(k)
            .filter(|t| t.kind == Kind::Ident)
            .map(|t| text[t.start..t.end].to_ascii_lowercase())
    };
    let first = word(0);
    let second = word(1);
    let refused = match (first.as_deref(), second.as_deref()) {
        (Some("do"), _) => Some("DO"),
        (Some("cluster"), _) => Some("CLUSTER"),
        (Some("reindex"), _) => Some("REINDEX"),
        (Some("checkpoint"), _) => Some("CHECKPOINT"),
        (Some("alter"), Some("system")) => Some("ALTER SYSTEM"),
        (Some("security"), Some("label")) => Some("SECURITY LABEL"),
        (Some("import"), Some("foreign")) => Some("IMPORT FOREIGN SCHEMA"),
        _ => None,
    };
    if let Some(what) = refused {
        return Err(AnalyseError::not_allowed(format!("{what} is not allowed")));
    }
    let two_phase = matches!(
        (first.as_deref(), second.as_deref()),
        (Some("prepare"), Some("transaction"))
            | (Some("commit"), Some("prepared"))
            | (Some("rollback"), Some("prepared"))
    );
    if two_phase {
        if sig.len() == 3 && sig[2].kind == Kind::String {
            return Ok(Some(Body::TwoPhase));
        }
        return Err(AnalyseError::Parse {
            line: origin.0,
            column: origin.1,
            message: "expected a transaction identifier string".into(),
        });
    }
    if first.as_deref() == Some("move") {
        let simple = sig[1..].iter().all(|t| {
            matches!(t.kind, Kind::Ident | Kind::QuotedIdent | Kind::Number)
                || (t.kind == Kind::Other && matches!(&text[t.start..t.end], "-" | "+"))
        });
        let named = sig
            .last()
            .is_some_and(|t| matches!(t.kind, Kind::Ident | Kind::QuotedIdent));
        if sig.len() >= 2 && simple && named {
            return Ok(Some(Body::Move));
        }
        return Err(AnalyseError::Parse {
            line: origin.0,
            column: origin.1,
            message: "MOVE takes a direction and a cursor name only".into(),
        });
    }
    Ok(None)
}
