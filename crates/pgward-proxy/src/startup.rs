//! The untagged packets of connection start: SSLRequest, GSSENCRequest,
//! CancelRequest and StartupMessage, parsed with bounds checks and in wire order.
//!
//! pgwire's `Startup` keeps parameters in a map (reordering them); pgward keeps the
//! client's order and builds the upstream startup packet itself.

use bytes::{BufMut, BytesMut};
use pgwire::messages::startup::{GssEncRequest, SslRequest, Startup};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::SessionError;
use crate::frame::BodyReader;

/// PostgreSQL's own cap on a startup packet.
pub const MAX_STARTUP_PACKET: usize = 10_000;
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// What a connection opened with.
#[derive(Debug)]
pub enum FirstPacket {
    SslRequest,
    GssEncRequest,
    Cancel { pid: i32, secret: i32 },
    Startup(StartupPacket),
}

/// A StartupMessage: protocol version and parameters in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupPacket {
    pub major: u16,
    pub minor: u16,
    pub params: Vec<(String, String)>,
}

impl StartupPacket {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The upstream StartupMessage: protocol 3.0, `user` replaced by the upstream user,
    /// then every other parameter the client sent, in its order, except protocol
    /// extension options (`_pq_.*`) which pgward does not negotiate, then `pinned`.
    pub fn upstream_body(
        &self,
        upstream_user: &str,
        database: &str,
        pinned: &[(String, String)],
    ) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i32(Startup::PROTOCOL_VERSION_3_0);
        put_pair(&mut b, "user", upstream_user);
        put_pair(&mut b, "database", database);
        for (k, v) in &self.params {
            if k == "user" || k == "database" || k.starts_with("_pq_.") {
                continue;
            }
            put_pair(&mut b, k, v);
        }
        for (k, v) in pinned {
            put_pair(&mut b, k, v);
        }
        b.put_u8(0);
        b.to_vec()
    }
}

fn put_pair(b: &mut BytesMut, k: &str, v: &str) {
    b.put_slice(k.as_bytes());
    b.put_u8(0);
    b.put_slice(v.as_bytes());
    b.put_u8(0);
}

/// Reads exactly one startup-phase packet, never more bytes than it holds (so nothing
/// sent after an SSLRequest is buffered in plaintext). Not cancel-safe.
pub async fn read_first_packet<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<Option<FirstPacket>, SessionError> {
    let mut len_buf = [0u8; 4];
    match stream.read_exact(&mut len_buf).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = i32::from_be_bytes(len_buf);
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (8..=MAX_STARTUP_PACKET).contains(l))
        .ok_or_else(|| SessionError::Protocol("invalid length of startup packet".into()))?;
    let mut body = vec![0u8; len - 4];
    stream.read_exact(&mut body).await?;
    parse_first_packet(&body).map(Some)
}

/// Parses a startup-phase packet body (after the length).
pub fn parse_first_packet(body: &[u8]) -> Result<FirstPacket, SessionError> {
    let mut r = BodyReader::new(body);
    let code = r
        .i32()
        .ok_or_else(|| SessionError::Protocol("startup packet too short".into()))?;
    if code == SslRequest::BODY_MAGIC_NUMBER {
        return Ok(FirstPacket::SslRequest);
    }
    if code == GssEncRequest::BODY_MAGIC_NUMBER {
        return Ok(FirstPacket::GssEncRequest);
    }
    if code == CANCEL_REQUEST_CODE {
        let (pid, secret) = r
            .i32()
            .zip(r.i32())
            .ok_or_else(|| SessionError::Protocol("invalid cancel request".into()))?;
        return Ok(FirstPacket::Cancel { pid, secret });
    }
    // Protocol version: major in the high 16 bits.
    let major = u16::try_from((code >> 16) & 0xffff).unwrap_or(0);
    let minor = u16::try_from(code & 0xffff).unwrap_or(0);
    if major != 3 {
        return Err(SessionError::Protocol(format!(
            "unsupported frontend protocol {major}.{minor}: server supports 3.0"
        )));
    }
    let mut params = Vec::new();
    loop {
        let key = r
            .cstr()
            .ok_or_else(|| SessionError::Protocol("invalid startup packet layout".into()))?;
        if key.is_empty() {
            break;
        }
        let value = r
            .cstr()
            .ok_or_else(|| SessionError::Protocol("invalid startup packet layout".into()))?;
        let key = std::str::from_utf8(key)
            .map_err(|_| SessionError::Protocol("startup parameter is not UTF-8".into()))?;
        let value = std::str::from_utf8(value)
            .map_err(|_| SessionError::Protocol("startup parameter is not UTF-8".into()))?;
        params.push((key.to_owned(), value.to_owned()));
    }
    Ok(FirstPacket::Startup(StartupPacket {
        major,
        minor,
        params,
    }))
}

/// The CancelRequest packet body pgward sends upstream.
pub fn cancel_body(pid: i32, secret: i32) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(12);
    b.put_i32(CANCEL_REQUEST_CODE);
    b.put_i32(pid);
    b.put_i32(secret);
    b.to_vec()
}

/// The SSLRequest packet body.
pub fn ssl_request_body() -> Vec<u8> {
    SslRequest::BODY_MAGIC_NUMBER.to_be_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i32(Startup::PROTOCOL_VERSION_3_0);
        for (k, v) in params {
            put_pair(&mut b, k, v);
        }
        b.put_u8(0);
        b.to_vec()
    }

    #[test]
    fn keeps_parameter_order_and_rewrites_user() {
        let body = startup(&[
            ("user", "alice"),
            ("options", "-c geqo=off"),
            ("application_name", "x"),
            ("database", "shop"),
            ("_pq_.foo", "1"),
        ]);
        let FirstPacket::Startup(p) = parse_first_packet(&body).unwrap() else {
            panic!("not a startup packet")
        };
        assert_eq!(p.param("user"), Some("alice"));
        let up = p.upstream_body("app_ro", "shop", &[("search_path".into(), "public".into())]);
        let FirstPacket::Startup(q) = parse_first_packet(&up).unwrap() else {
            panic!("not a startup packet")
        };
        assert_eq!(
            q.params,
            vec![
                ("user".to_owned(), "app_ro".to_owned()),
                ("database".to_owned(), "shop".to_owned()),
                ("options".to_owned(), "-c geqo=off".to_owned()),
                ("application_name".to_owned(), "x".to_owned()),
                ("search_path".to_owned(), "public".to_owned()),
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"\x00\x03",
            b"\x00\x03\x00\x00user",
            b"\x00\x02\x00\x00",
        ] {
            assert!(parse_first_packet(body).is_err(), "{body:?}");
        }
        let cancel = cancel_body(42, 7);
        assert!(matches!(
            parse_first_packet(&cancel).unwrap(),
            FirstPacket::Cancel { pid: 42, secret: 7 }
        ));
    }
}
