//! Session state that could change what a statement means is pinned: the upstream
//! session starts with the role's search_path and standard_conforming_strings=on, the
//! startup packet may not set them (or anything outside the harmless table), and a
//! ParameterStatus from upstream that reports a pinned value changing ends the session.

use pgward_sql::settings::check_setting;

use crate::error::SessionError;
use crate::startup::StartupPacket;

/// Startup parameters that are part of the protocol, not settings.
const PROTOCOL_PARAMS: &[&str] = &["user", "database", "options", "replication"];

fn refused(what: String) -> SessionError {
    SessionError::Auth {
        sqlstate: "42501",
        client: format!("permission denied: {what}"),
        reason: format!("startup packet: {what}"),
    }
}

/// Checks every setting in the startup packet, parameters and `options` alike, against
/// the same table SET is checked against.
pub fn check_startup(startup: &StartupPacket) -> Result<(), SessionError> {
    for (name, value) in &startup.params {
        if PROTOCOL_PARAMS.contains(&name.as_str()) || name.starts_with("_pq_.") {
            continue;
        }
        check_setting(name, value)
            .map_err(|_| refused(format!("setting {name} at startup is not allowed")))?;
    }
    if let Some(options) = startup.param("options") {
        for (name, value) in parse_options(options)? {
            check_setting(&name, &value).map_err(|_| {
                refused(format!("setting {name} in startup options is not allowed"))
            })?;
        }
    }
    Ok(())
}

/// Splits `options` as PostgreSQL does (whitespace separates, backslash escapes) and
/// returns the `-c name=value` / `--name=value` settings. Any other switch is refused:
/// they are server switches, not session settings.
pub fn parse_options(options: &str) -> Result<Vec<(String, String)>, SessionError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_ascii_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let assignment = if word == "-c" {
            words
                .next()
                .ok_or_else(|| refused("startup options end after -c".into()))?
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_owned()
        } else if let Some(rest) = word.strip_prefix("--") {
            rest.to_owned()
        } else {
            return Err(refused(format!("startup option {word} is not allowed")));
        };
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| refused(format!("startup option {assignment} has no value")))?;
        settings.push((
            name.replace('-', "_").to_ascii_lowercase(),
            value.to_owned(),
        ));
    }
    Ok(settings)
}

/// The parameters pgward adds to the upstream startup packet.
pub fn pinned_params(search_path: &[String]) -> Vec<(String, String)> {
    let path = search_path
        .iter()
        .map(|s| format!("\"{}\"", s.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        ("search_path".to_owned(), path),
        ("standard_conforming_strings".to_owned(), "on".to_owned()),
    ]
}

/// Whether a ParameterStatus the upstream reports breaks a pinned value; the reason if so.
pub fn check_parameter_status(name: &str, value: &str) -> Option<String> {
    match name {
        "standard_conforming_strings" if value != "on" => {
            Some("standard_conforming_strings changed to off".to_owned())
        }
        "client_encoding" if check_setting("client_encoding", value).is_err() => {
            Some(format!("client_encoding changed to {value}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn startup(params: &[(&str, &str)]) -> StartupPacket {
        StartupPacket {
            major: 3,
            minor: 0,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn harmless_startup_settings_pass() {
        let s = startup(&[
            ("user", "a"),
            ("database", "d"),
            ("application_name", "x"),
            ("DateStyle", "ISO"),
            ("client_encoding", "UTF8"),
            (
                "options",
                "-c statement_timeout=5s --lock-timeout=1s -cextra_float_digits=3",
            ),
        ]);
        check_startup(&s).unwrap();
    }

    #[test]
    fn pinned_and_unknown_settings_are_refused() {
        for bad in [
            vec![("search_path", "secret")],
            vec![("options", "-c search_path=secret")],
            vec![("options", "--search_path=secret")],
            vec![("options", "-c standard_conforming_strings=off")],
            vec![("options", "-c role=postgres")],
            vec![("options", "-c session_authorization=postgres")],
            vec![("client_encoding", "SJIS")],
            vec![("options", "-c client_encoding=BIG5")],
            vec![("options", "-B 1000")],
            vec![("options", "-c")],
            vec![("options", "-c search\\ path=x")],
        ] {
            let s = startup(&bad);
            assert!(check_startup(&s).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn options_split_like_postgres() {
        assert_eq!(
            parse_options("-c application_name=a\\ b  -c x=1").unwrap(),
            vec![
                ("application_name".into(), "a b".into()),
                ("x".into(), "1".into())
            ]
        );
    }

    #[test]
    fn parameter_status_watch() {
        assert!(check_parameter_status("standard_conforming_strings", "off").is_some());
        assert!(check_parameter_status("standard_conforming_strings", "on").is_none());
        assert!(check_parameter_status("client_encoding", "SJIS").is_some());
        assert!(check_parameter_status("client_encoding", "LATIN1").is_none());
        assert_eq!(
            pinned_params(&["public".into()])[0],
            ("search_path".into(), "\"public\"".into())
        );
    }
}
