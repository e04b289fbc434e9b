//! Decoding statement text in the session's client_encoding, for analysis only: the
//! bytes are forwarded unchanged. Only ASCII-safe encodings are ever decoded (pgward
//! refuses the others); bytes that are not valid in the encoding make the statement
//! undecidable, and so denied.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// A client encoding pgward can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEncoding {
    /// UTF8 (and SQL_ASCII, which the server treats as UTF-8 text here).
    Utf8,
    Other(&'static Encoding),
}

impl ClientEncoding {
    /// The decoder for a PostgreSQL encoding name as ParameterStatus reports it
    /// (`UTF8`, `LATIN1`, `WIN1252`, ...). `None` for encodings pgward cannot decode.
    pub fn from_pg_name(name: &str) -> Option<ClientEncoding> {
        let clean: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        use encoding_rs as e;
        let enc: &'static Encoding = match clean.as_str() {
            "UTF8" | "UNICODE" | "SQLASCII" => return Some(ClientEncoding::Utf8),
            // WHATWG maps ISO-8859-1 to windows-1252; both are ASCII-compatible, and
            // every quote, backslash and keyword is ASCII, which is what analysis needs.
            "LATIN1" | "ISO88591" | "WIN1252" => e::WINDOWS_1252,
            "LATIN2" | "ISO88592" => e::ISO_8859_2,
            "LATIN3" | "ISO88593" => e::ISO_8859_3,
            "LATIN4" | "ISO88594" => e::ISO_8859_4,
            "LATIN5" | "ISO88599" | "WIN1254" => e::WINDOWS_1254,
            "LATIN6" | "ISO885910" => e::ISO_8859_10,
            "LATIN7" | "ISO885913" => e::ISO_8859_13,
            "LATIN8" | "ISO885914" => e::ISO_8859_14,
            "LATIN9" | "ISO885915" => e::ISO_8859_15,
            "LATIN10" | "ISO885916" => e::ISO_8859_16,
            "ISO88595" => e::ISO_8859_5,
            "ISO88596" => e::ISO_8859_6,
            "ISO88597" => e::ISO_8859_7,
            "ISO88598" => e::ISO_8859_8,
            "WIN866" => e::IBM866,
            "WIN874" => e::WINDOWS_874,
            "WIN1250" => e::WINDOWS_1250,
            "WIN1251" => e::WINDOWS_1251,
            "WIN1253" => e::WINDOWS_1253,
            "WIN1255" => e::WINDOWS_1255,
            "WIN1256" => e::WINDOWS_1256,
            "WIN1257" => e::WINDOWS_1257,
            "WIN1258" => e::WINDOWS_1258,
            "KOI8R" => e::KOI8_R,
            "KOI8U" => e::KOI8_U,
            "EUCJP" => e::EUC_JP,
            "EUCKR" => e::EUC_KR,
            "EUCCN" => e::GBK,
            _ => return None,
        };
        Some(ClientEncoding::Other(enc))
    }

    /// The text of `bytes`, or `None` if they are not valid in this encoding.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Option<Cow<'a, str>> {
        match self {
            ClientEncoding::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
            ClientEncoding::Other(enc) => {
                enc.decode_without_bom_handling_and_without_replacement(bytes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn latin1_text_decodes_and_utf8_rejects_invalid_bytes() {
        let latin1 = ClientEncoding::from_pg_name("LATIN1").unwrap();
        assert_eq!(latin1.decode(b"SELECT 'caf\xe9'").unwrap(), "SELECT 'café'");
        assert!(ClientEncoding::Utf8.decode(b"SELECT 'caf\xe9'").is_none());
        assert!(ClientEncoding::from_pg_name("SJIS").is_none());
        assert!(ClientEncoding::from_pg_name("BIG5").is_none());
        assert_eq!(
            ClientEncoding::from_pg_name("utf-8"),
            Some(ClientEncoding::Utf8)
        );
    }
}
