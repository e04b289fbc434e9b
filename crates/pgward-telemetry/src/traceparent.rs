//! Trace context from the application: a sqlcommenter comment
//! (`/*traceparent='00-<trace>-<span>-01',tracestate='...'*/`, as SQLAlchemy, Django,
//! Rails and Hibernate integrations append it) makes the query span a child of the
//! application's span.
//!
//! The comment is untrusted client input: it only ever chooses a parent span, values are
//! validated by the W3C propagator, and the text is scanned once (no backtracking).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The key/value pairs of one sqlcommenter comment, keys and values URL-decoded.
pub type SqlComment = HashMap<String, String>;

/// Finds the last `/*...*/` comment in `sql` that is a sqlcommenter comment carrying a
/// `traceparent` key and returns its pairs. sqlcommenter appends its comment at the end,
/// so the last one wins when there are several.
pub fn parse_sqlcommenter(sql: &str) -> Option<SqlComment> {
    let mut found = None;
    let mut rest = sql;
    while let Some(start) = rest.find("/*") {
        let body_and_more = &rest[start + 2..];
        let Some(end) = body_and_more.find("*/") else {
            break;
        };
        if let Some(pairs) = parse_pairs(&body_and_more[..end]) {
            if pairs.contains_key("traceparent") {
                found = Some(pairs);
            }
        }
        rest = &body_and_more[end + 2..];
    }
    found
}

/// `key='value',key2='value2'`; `None` if the comment is not in that form.
fn parse_pairs(body: &str) -> Option<SqlComment> {
    let mut pairs = HashMap::new();
    let mut chars = body.trim().chars().peekable();
    loop {
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        if chars.next() != Some('\'') {
            return None;
        }
        let mut value = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                // sqlcommenter escapes a quote in a value as \'.
                '\\' => value.push(chars.next()?),
                '\'' => {
                    closed = true;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return None;
        }
        pairs.insert(url_decode(key)?, url_decode(&value)?);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(pairs),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

/// The W3C form `vv-<32 hex>-<16 hex>-ff`, lowercase hex (the SDK's propagator accepts
/// shorter ids, which no tracer emits). All-zero ids are refused by the propagator.
fn well_formed(traceparent: &str) -> bool {
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = traceparent.split('-');
    let (Some(version), Some(trace), Some(span), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // Version 00 has exactly four parts; later versions may append more.
    (version != "00" || parts.next().is_none())
        && version != "ff"
        && hex(version, 2)
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
}

/// Percent-decoding; `None` on a malformed escape or invalid UTF-8.
fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The application's span named by a sqlcommenter `traceparent` in `sql`, as a remote
/// parent context; `None` when there is no such comment or the value is invalid (the W3C
/// propagator validates it).
pub(crate) fn application_context(sql: &str) -> Option<Context> {
    // Cheap pre-check: most statements carry no comment at all.
    if !sql.contains("traceparent") {
        return None;
    }
    let carrier = parse_sqlcommenter(sql)?;
    if !well_formed(carrier.get("traceparent")?) {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn traceparent(sql: &str) -> Option<String> {
        parse_sqlcommenter(sql).and_then(|p| p.get("traceparent").cloned())
    }

    #[test]
    fn finds_a_plain_traceparent() {
        let sql = format!("SELECT 1 /*traceparent='{TP}'*/");
        assert_eq!(traceparent(&sql).as_deref(), Some(TP));
    }

    #[test]
    fn finds_it_among_other_pairs_and_decodes_values() {
        let sql = format!(
            "SELECT * FROM orders /*action='index',controller='orders',\
             framework='django%3A4.2',traceparent='{TP}',tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/"
        );
        let pairs = parse_sqlcommenter(&sql).unwrap();
        assert_eq!(pairs["traceparent"], TP);
        assert_eq!(pairs["framework"], "django:4.2");
        assert_eq!(
            pairs["tracestate"],
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        );
    }

    #[test]
    fn the_last_comment_wins_and_other_comments_are_skipped() {
        let other = "00-11111111111111111111111111111111-2222222222222222-01";
        let sql = format!(
            "/* leading note */ SELECT 1 /*traceparent='{other}'*/ /* x */ /*traceparent='{TP}'*/"
        );
        assert_eq!(traceparent(&sql).as_deref(), Some(TP));
    }

    #[test]
    fn escaped_quotes_in_values() {
        let sql = format!(r"SELECT 1 /*route='it\'s',traceparent='{TP}'*/");
        let pairs = parse_sqlcommenter(&sql).unwrap();
        assert_eq!(pairs["route"], "it's");
    }

    #[test]
    fn rejects_what_is_not_sqlcommenter() {
        for sql in [
            "SELECT 1",
            "SELECT 1 /* traceparent is mentioned in prose */",
            "SELECT 1 /*traceparent=00-abc*/",
            "SELECT 1 /*traceparent='00-abc",
            "SELECT 1 /*traceparent='%zz'*/",
            "SELECT 1 /*traceparent='a' junk*/",
            "SELECT 1 /*=''*/",
        ] {
            assert_eq!(traceparent(sql), None, "{sql}");
        }
    }

    #[test]
    fn the_propagator_validates_the_value() {
        for bad in [
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00--b7ad6b7169203331-01",
        ] {
            let sql = format!("SELECT 1 /*traceparent='{bad}'*/");
            assert!(application_context(&sql).is_none(), "{bad}");
        }
        assert!(application_context("SELECT 1").is_none());
        let good = format!("SELECT 1 /*traceparent='{TP}'*/");
        let cx = application_context(&good).unwrap();
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
        assert!(sc.is_remote());
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for sql in [
            "/*",
            "*/",
            "/**/",
            "/*'*/",
            "/*a='\\",
            "/*a='%e2%82'*/",
            "/*é='ü'*/",
        ] {
            let _ = parse_sqlcommenter(sql);
        }
    }
}
