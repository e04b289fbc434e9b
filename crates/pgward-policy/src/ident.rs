//! Folding of the SQL identifiers written in policy files (table keys, column names,
//! schemas, function names) into catalog names.
//!
//! This must agree with the analyser's canonical folding (`pgward_sql`'s `ident::fold_str`):
//! unquoted -> ASCII lower case, `"quoted"` exact (`""` is one `"`), `U&"..."` decoded,
//! both truncated to 63 bytes. If one of them changes, change the other. Keys are small
//! and written by DBAs, so this parser refuses anything it does not fully understand
//! (UESCAPE, whitespace, empty parts) instead of guessing.

/// PostgreSQL's NAMEDATALEN - 1.
const MAX_IDENT_BYTES: usize = 63;

/// Splits `text` at the dots outside quotes and folds every part.
pub(crate) fn parse_qualified(text: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    loop {
        let (part, next) = parse_part(&chars, i, text)?;
        parts.push(truncate(part));
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
            Ok((decode_unicode(&body)?, next))
        }
        (Some('"'), _, _) => quoted(chars, start, text),
        (Some(&c), _, _) if c == '_' || c.is_alphabetic() => {
            let mut end = start;
            while chars
                .get(end)
                .is_some_and(|&c| c == '_' || c == '$' || c.is_alphanumeric())
            {
                end += 1;
            }
            let word: String = chars[start..end].iter().collect();
            Ok((word.to_ascii_lowercase(), end))
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

/// `\XXXX`, `\+XXXXXX` and `\\` with the default escape character. Surrogates and NUL
/// are refused (PostgreSQL refuses NUL too; surrogate pairs are not worth the code here).
fn decode_unicode(body: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = body;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (digits, skip) = if let Some(tail) = after.strip_prefix('\\') {
            out.push('\\');
            rest = tail;
            continue;
        } else if let Some(six) = after.strip_prefix('+') {
            (six.get(..6), 7)
        } else {
            (after.get(..4), 4)
        };
        let code = digits
            .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .filter(|&c| c != 0)
            .and_then(char::from_u32)
            .ok_or_else(|| format!("invalid Unicode escape in U&\"{body}\""))?;
        out.push(code);
        rest = &after[skip..];
    }
    out.push_str(rest);
    Ok(out)
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
