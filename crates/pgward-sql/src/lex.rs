//! A lexer that reads SQL text exactly as PostgreSQL's `scan.l` does with
//! standard_conforming_strings=on and UTF8 (the settings pgward pins upstream).
//!
//! It only needs to know where tokens start and end, and which stretches of text are
//! inert (comments, string literals, quoted identifiers, dollar quotes): `parse.rs` uses it
//! to split statements, decode `U&` forms, replace literals and check that sqlparser's
//! tokenizer saw the same inert stretches. It never interprets the SQL.

use crate::error::AnalyseError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Space,
    LineComment,
    BlockComment,
    Ident,
    /// `"..."`
    QuotedIdent,
    /// `U&"..."` (without a following UESCAPE clause)
    UnicodeIdent,
    /// `'...'` with standard_conforming_strings=on: backslash is an ordinary character.
    String,
    /// `E'...'`
    EString,
    /// `U&'...'`
    UnicodeString,
    /// `B'...'`, `X'...'`
    BitString,
    /// `N'...'`
    NationalString,
    /// `$tag$...$tag$`
    Dollar,
    Number,
    /// `$1`
    Param,
    Semicolon,
    /// Operators and punctuation, one character each.
    Other,
}

impl Kind {
    /// Literal constants: what normalization replaces by `?`.
    pub(crate) fn is_literal(self) -> bool {
        matches!(
            self,
            Kind::String
                | Kind::EString
                | Kind::UnicodeString
                | Kind::BitString
                | Kind::NationalString
                | Kind::Dollar
                | Kind::Number
        )
    }

    pub(crate) fn is_trivia(self) -> bool {
        matches!(self, Kind::Space | Kind::LineComment | Kind::BlockComment)
    }
}

/// One token: its kind and byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Line and column (1-based, in characters) of byte offset `at`, as sqlparser counts them.
pub(crate) fn line_col(text: &str, at: usize) -> (u64, u64) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0) as u64
        + 1;
    (line, col)
}

fn lex_error(text: &str, at: usize, message: &str) -> AnalyseError {
    let (line, column) = line_col(text, at);
    AnalyseError::Parse {
        line,
        column,
        message: message.to_string(),
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

fn is_dollar_tag_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    /// The `n`th character from here. ASCII (all of most SQL) is read as bytes: the same
    /// characters, without decoding UTF-8 at every look.
    #[inline]
    fn peek(&self, n: usize) -> Option<char> {
        let bytes = self.text.as_bytes();
        match bytes.get(self.pos..=self.pos + n) {
            Some(ahead) if ahead.is_ascii() => ahead.last().map(|b| char::from(*b)),
            _ => self.peek_decoded(n),
        }
    }

    #[cold]
    #[inline(never)]
    fn peek_decoded(&self, n: usize) -> Option<char> {
        self.text[self.pos..].chars().nth(n)
    }

    #[inline]
    fn bump(&mut self) -> Option<char> {
        match self.text.as_bytes().get(self.pos) {
            Some(&b) if b.is_ascii() => {
                self.pos += 1;
                Some(char::from(b))
            }
            _ => self.bump_decoded(),
        }
    }

    #[cold]
    #[inline(never)]
    fn bump_decoded(&mut self) -> Option<char> {
        let c = self.text[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// A quoted body ending at `quote` (doubled quote = one quote). `backslash` escapes.
    fn quoted(&mut self, quote: char, backslash: bool) -> Result<(), AnalyseError> {
        let start = self.pos;
        loop {
            match self.bump() {
                None => return Err(lex_error(self.text, start, "unterminated quoted text")),
                Some('\\') if backslash => {
                    if self.bump().is_none() {
                        return Err(lex_error(self.text, start, "unterminated quoted string"));
                    }
                }
                Some(c) if c == quote => {
                    if self.peek(0) == Some(quote) {
                        self.bump();
                    } else {
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
        }
    }

    fn block_comment(&mut self) -> Result<(), AnalyseError> {
        let start = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while depth > 0 {
            match self.bump() {
                None => return Err(lex_error(self.text, start, "unterminated /* comment")),
                Some('/') if self.peek(0) == Some('*') => {
                    self.bump();
                    depth += 1;
                }
                Some('*') if self.peek(0) == Some('/') => {
                    self.bump();
                    depth -= 1;
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// At `$`: a dollar quote, a parameter, or a lone `$`.
    fn dollar(&mut self) -> Result<Kind, AnalyseError> {
        let start = self.pos;
        if self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            if self.peek(0).is_some_and(is_ident_cont) {
                return Err(lex_error(self.text, start, "trailing junk after parameter"));
            }
            return Ok(Kind::Param);
        }
        let rest = &self.text[start + 1..];
        for (i, c) in rest.char_indices() {
            if c == '$' {
                let delim = &self.text[start..start + i + 2];
                let body_start = start + delim.len();
                return match self.text[body_start..].find(delim) {
                    Some(end) => {
                        self.pos = body_start + end + delim.len();
                        Ok(Kind::Dollar)
                    }
                    None => Err(lex_error(
                        self.text,
                        start,
                        "unterminated dollar-quoted string",
                    )),
                };
            }
            let ok = if i == 0 {
                is_ident_start(c)
            } else {
                is_dollar_tag_cont(c)
            };
            if !ok {
                break;
            }
        }
        self.bump();
        Ok(Kind::Other)
    }

    fn number(&mut self) -> Result<(), AnalyseError> {
        let start = self.pos;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        // `1..2` is the integer 1 followed by `..` in PostgreSQL.
        if self.peek(0) == Some('.') && self.peek(1) != Some('.') {
            self.bump();
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let signed = matches!(self.peek(1), Some('+' | '-'));
            let digit_at = if signed { 2 } else { 1 };
            if self.peek(digit_at).is_some_and(|c| c.is_ascii_digit()) {
                for _ in 0..digit_at {
                    self.bump();
                }
                while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        // PostgreSQL 15+ rejects `123abc`, `0x1F` (before 16), `1_000` (before 16); older
        // servers read `123abc` as `123 AS abc`. Deny all of them rather than pick one.
        if self.peek(0).is_some_and(is_ident_cont) {
            return Err(lex_error(
                self.text,
                start,
                "trailing junk after numeric literal",
            ));
        }
        Ok(())
    }

    fn next_token(&mut self) -> Result<Option<Tok>, AnalyseError> {
        let start = self.pos;
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let next = self.peek(1);
        let kind = match c {
            ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b' => {
                while self
                    .peek(0)
                    .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b'))
                {
                    self.bump();
                }
                Kind::Space
            }
            '-' if next == Some('-') => {
                while self.peek(0).is_some_and(|c| c != '\n' && c != '\r') {
                    self.bump();
                }
                Kind::LineComment
            }
            '/' if next == Some('*') => {
                self.block_comment()?;
                Kind::BlockComment
            }
            '\'' => {
                self.bump();
                self.quoted('\'', false)?;
                Kind::String
            }
            '"' => {
                self.bump();
                self.quoted('"', false)?;
                if self.pos - start == 2 {
                    return Err(lex_error(
                        self.text,
                        start,
                        "zero-length delimited identifier",
                    ));
                }
                Kind::QuotedIdent
            }
            'e' | 'E' if next == Some('\'') => {
                self.pos += 2;
                self.quoted('\'', true)?;
                Kind::EString
            }
            'b' | 'B' | 'x' | 'X' if next == Some('\'') => {
                self.pos += 2;
                self.quoted('\'', false)?;
                Kind::BitString
            }
            'n' | 'N' if next == Some('\'') => {
                self.pos += 2;
                self.quoted('\'', false)?;
                Kind::NationalString
            }
            'u' | 'U' if next == Some('&') && matches!(self.peek(2), Some('\'' | '"')) => {
                let quote = self.peek(2).unwrap_or('\'');
                self.pos += 3;
                self.quoted(quote, false)?;
                if quote == '"' {
                    Kind::UnicodeIdent
                } else {
                    Kind::UnicodeString
                }
            }
            '$' => self.dollar()?,
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                self.number()?;
                Kind::Number
            }
            c if is_ident_start(c) => {
                while self.peek(0).is_some_and(is_ident_cont) {
                    self.bump();
                }
                Kind::Ident
            }
            ';' => {
                self.bump();
                Kind::Semicolon
            }
            '\0' => return Err(lex_error(self.text, start, "NUL byte in statement text")),
            _ => {
                self.bump();
                Kind::Other
            }
        };
        Ok(Some(Tok {
            kind,
            start,
            end: self.pos,
        }))
    }
}

/// Every token of `text`, trivia included, as PostgreSQL would lex it.
pub(crate) fn lex(text: &str) -> Result<Vec<Tok>, AnalyseError> {
    let mut lexer = Lexer { text, pos: 0 };
    // About one token per four bytes of typical SQL, spaces included.
    let mut out = Vec::with_capacity(text.len() / 4 + 4);
    while let Some(tok) = lexer.next_token()? {
        out.push(tok);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, &str)> {
        lex(sql)
            .unwrap()
            .into_iter()
            .filter(|t| t.kind != Kind::Space)
            .map(|t| (t.kind, &sql[t.start..t.end]))
            .collect()
    }

    #[test]
    fn strings_and_comments() {
        assert_eq!(kinds(r"'a\'"), vec![(Kind::String, r"'a\'")]);
        assert_eq!(kinds(r"E'a\'b'"), vec![(Kind::EString, r"E'a\'b'")]);
        assert_eq!(kinds("/* /* */ */x")[1], (Kind::Ident, "x"));
        assert_eq!(kinds("$a$ $b$ $a$")[0], (Kind::Dollar, "$a$ $b$ $a$"));
        assert_eq!(kinds("$1")[0], (Kind::Param, "$1"));
        assert_eq!(kinds("a$b$")[0], (Kind::Ident, "a$b$"));
        assert_eq!(kinds("--x\ry")[1], (Kind::Ident, "y"));
        assert_eq!(kinds(r#"U&"a""b""#)[0], (Kind::UnicodeIdent, r#"U&"a""b""#));
        assert_eq!(kinds("u&x")[0], (Kind::Ident, "u"));
        assert!(lex("/* /* */").is_err());
        assert!(lex("'abc").is_err());
        assert!(lex("123abc").is_err());
        assert!(lex("\"\"").is_err());
        assert_eq!(kinds("1..2")[0], (Kind::Number, "1"));
    }
}
