//! Identifier folding, in exactly one place: every name the analyser compares goes
//! through [`fold`] (or [`fold_str`] for text that is already split into value and quoting).
//!
//! PostgreSQL folds unquoted identifiers to lower case (ASCII letters only, as in UTF8
//! databases), keeps quoted ones exact, and truncates both to NAMEDATALEN-1 = 63 bytes.
//! `U&"..."` identifiers are decoded by [`decode_unicode_escapes`] before sqlparser sees
//! them (see `parse.rs`), so here they are ordinary quoted identifiers.

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use crate::error::AnalyseError;

/// PostgreSQL's NAMEDATALEN - 1.
const MAX_IDENT_BYTES: usize = 63;

/// The catalog name an identifier denotes.
pub fn fold(ident: &Ident) -> String {
    fold_str(&ident.value, ident.quote_style.is_some())
}

/// The catalog name of `value`, written quoted (`quoted`) or bare.
pub fn fold_str(value: &str, quoted: bool) -> String {
    let folded = if quoted {
        value.to_string()
    } else {
        value.to_ascii_lowercase()
    };
    truncate(folded)
}

/// Every part of a dotted name, folded. A part that is not a plain identifier is an error.
pub fn fold_object_name(name: &ObjectName) -> Result<Vec<String>, AnalyseError> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Ok(fold(ident)),
            ObjectNamePart::Function(_) => Err(AnalyseError::unsupported(format!(
                "name with a function part ({name})"
            ))),
        })
        .collect()
}

/// Truncates to 63 bytes on a character boundary, as PostgreSQL's `truncate_identifier`.
fn truncate(mut s: String) -> String {
    if s.len() > MAX_IDENT_BYTES {
        let mut end = MAX_IDENT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Decodes the body of a `U&'...'` string or `U&"..."` identifier (quotes already undoubled)
/// with escape character `esc`: `\XXXX`, `\+XXXXXX`, `\\`, surrogate pairs combined.
pub fn decode_unicode_escapes(body: &str, esc: char) -> Result<String, String> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::new();
    let mut pending_high: Option<u32> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != esc {
            if pending_high.is_some() {
                return Err("invalid Unicode surrogate pair".into());
            }
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&esc) {
            if pending_high.is_some() {
                return Err("invalid Unicode surrogate pair".into());
            }
            out.push(esc);
            i += 2;
            continue;
        }
        let (digits, skip) = if chars.get(i + 1) == Some(&'+') {
            (6, 2)
        } else {
            (4, 1)
        };
        let hex: String = chars.iter().skip(i + skip).take(digits).collect();
        if hex.chars().count() != digits || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
            return Err("invalid Unicode escape".into());
        }
        let code = u32::from_str_radix(&hex, 16).map_err(|_| "invalid Unicode escape")?;
        i += skip + digits;
        match (pending_high.take(), code) {
            (None, 0xD800..=0xDBFF) => pending_high = Some(code),
            (Some(high), 0xDC00..=0xDFFF) => {
                let combined = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00);
                out.push(char::from_u32(combined).ok_or("invalid Unicode escape value")?);
            }
            (Some(_), _) | (None, 0xDC00..=0xDFFF) => {
                return Err("invalid Unicode surrogate pair".into())
            }
            (None, 0) => return Err("invalid Unicode escape value".into()),
            (None, code) => out.push(char::from_u32(code).ok_or("invalid Unicode escape value")?),
        }
    }
    if pending_high.is_some() {
        return Err("invalid Unicode surrogate pair".into());
    }
    Ok(out)
}

/// Whether `c` may be a UESCAPE character (PostgreSQL's `check_uescapechar`).
pub fn valid_uescape(c: char) -> bool {
    !(c.is_ascii_hexdigit() || c == '+' || c == '\'' || c == '"' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold_str("Customers", false), "customers");
        assert_eq!(fold_str("Customers", true), "Customers");
        assert_eq!(fold_str("ÉMAIL", false), "Émail");
        assert_eq!(fold_str(&"a".repeat(70), false).len(), 63);
        assert_eq!(fold_str(&"é".repeat(40), true).len(), 62);
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(
            decode_unicode_escapes(r"p\0061ssword", '\\').unwrap(),
            "password"
        );
        assert_eq!(
            decode_unicode_escapes(r"d!0061t!+000061", '!').unwrap(),
            "data"
        );
        assert_eq!(decode_unicode_escapes(r"a\\b", '\\').unwrap(), r"a\b");
        assert_eq!(decode_unicode_escapes(r"\D83D\DE00", '\\').unwrap(), "😀");
        assert!(decode_unicode_escapes(r"\00", '\\').is_err());
        assert!(decode_unicode_escapes(r"\0000", '\\').is_err());
        assert!(decode_unicode_escapes(r"\D83Dx", '\\').is_err());
    }
}
