//! Folding of the SQL identifiers written in policy files (table keys, column names,
//! schemas, function names) into catalog names.
//!
//! The folding itself is the analyser's (`pgward_sql::ident`, STYLE rule 10: one
//! function): unquoted -> ASCII lower case, `"quoted"` exact (`""` is one `"`), `U&"..."`
//! decoded, truncated to 63 bytes. This file only splits a policy key into its parts. Keys
//! are small and written by DBAs, so it refuses anything it does not fully understand
//! (UESCAPE, whitespace, empty parts) instead of guessing.

use pgward_sql::ident::{decode_unicode_escapes, fold_str};

/// Splits `text` at the dots outside quotes and folds every part.
pub(crate) fn parse_qualified(text: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    loop {
        let (part, next) = parse_part(&chars, i, text)?;
        parts.push(part);
        i = next;
        match chars.get(i) {
            None => return Ok(parts),
            Some('.') => i += 1,
            Some(c) => return Err(format!("unexpected character {c:?} in {text:?}")),
        }
    }
}

/// One identifier, e.g. a column or schema name.
pub(crate) fn parse_single(text: &str) -> Result<String, String> {
    let mut parts = parse_qualified(text)?;
    match (parts.pop(), parts.is_empty()) {
        (Some(only), true) => Ok(only),
        _ => Err(format!(
            "{text:?} is a qualified name; expected a single identifier"
        )),
    }
}

fn parse_part(chars: &[char], start: usize, text: &str) -> Result<(String, usize), String> {
    match (chars.get(start), chars.get(start + 1), chars.get(start + 2)) {
        (Some('U' | 'u'), Some('&'), Some('"')) => {
            let (body, next) = quoted(chars, start + 2, text)?;
            let decoded = decode_unicode_escapes(&body, '\\')
                .map_err(|e| format!("invalid Unicode escape in U&\"{body}\": {e}"))?;
            Ok((fold_str(&decoded, true), next))
        }
        (Some('"'), _, _) => {
            let (body, next) = quoted(chars, start, text)?;
            Ok((fold_str(&body, true), next))
        }
        (Some(&c), _, _) if c == '_' || c.is_alphabetic() => {
            let mut end = start;
            while chars
                .get(end)
                .is_some_and(|&c| c == '_' || c == '$' || c.is_alphanumeric())
            {
                end += 1;
            }
            let word: String = chars[start..end].iter().collect();
            Ok((fold_str(&word, false), end))
        }
        (None, _, _) => Err(format!("empty name part in {text:?}")),
        (Some(c), _, _) => Err(format!("unexpected character {c:?} in {text:?}")),
    }
}

/// A `"..."` identifier starting at `start` (the opening quote).
fn quoted(chars: &[char], start: usize, text: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        match (chars.get(i), chars.get(i + 1)) {
            (Some('"'), Some('"')) => {
                out.push('"');
                i += 2;
            }
            (Some('"'), _) if out.is_empty() => {
                return Err(format!("zero-length quoted identifier in {text:?}"))
            }
            (Some('"'), _) => return Ok((out, i + 1)),
            (Some(&c), _) => {
                out.push(c);
                i += 1;
            }
            (None, _) => return Err(format!("unterminated quoted identifier in {text:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn folds_like_postgresql() {
        let cases: &[(&str, &[&str])] = &[
            ("orders", &["orders"]),
            ("Orders", &["orders"]),
            ("public.Orders", &["public", "orders"]),
            ("public.\"Weird\"", &["public", "Weird"]),
            ("\"My Schema\".\"a.b\"", &["My Schema", "a.b"]),
            ("\"say \"\"hi\"\"\"", &["say \"hi\""]),
            ("U&\"d\\0061ta\"", &["data"]),
            ("u&\"\\+000061\\\\\"", &["a\\"]),
            ("ÉMAIL", &["Émail"]),
            ("col$1", &["col$1"]),
        ];
        for (text, want) in cases {
            assert_eq!(parse_qualified(text).unwrap(), *want, "{text}");
        }
        assert_eq!(parse_single(&"A".repeat(70)).unwrap().len(), 63);
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for text in [
            "",
            ".",
            "a.",
            ".a",
            "a b",
            "\"\"",
            "\"open",
            "1abc",
            "a-b",
            "*",
            "a.*",
            "U&\"\\00\"",
            "U&\"\\0000\"",
            "U&\"\\zzzz\"",
            "a..b",
        ] {
            assert!(parse_qualified(text).is_err(), "{text:?} should be refused");
        }
        assert!(parse_single("a.b").is_err());
    }
}
