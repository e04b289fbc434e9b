//! Phase 1 of a session: TLS negotiation and the startup packet.
//!
//! Owns the socket until TLS is up: it reads exactly the bytes of each startup-phase
//! packet, so nothing a client sends before the TLS handshake can be mistaken for data
//! received over TLS (the CVE-2021-23214 pattern); a client that sends anything between
//! its SSLRequest and the handshake is refused.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pgwire::messages::response::{GssEncResponse, SslResponse};
use pgwire::messages::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

use crate::conn::fatal;
use crate::deps::Deps;
use crate::error::SessionError;
use crate::startup::{read_first_packet, FirstPacket, StartupPacket};
use crate::tls::{certificate_common_name, ALPN_POSTGRESQL};

/// The first byte of a TLS handshake record: a PostgreSQL 17+ client using
/// `sslnegotiation=direct` starts TLS without an SSLRequest.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

pub type ClientIo = Either<tokio_rustls::server::TlsStream<TcpStream>, TcpStream>;

/// What a TLS client presented.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    pub protocol: Option<String>,
    /// The subject CN of a verified client certificate.
    pub peer_cn: Option<String>,
    pub encrypted: bool,
}

/// How the connection opened.
pub enum Handshake {
    Startup {
        stream: Box<ClientIo>,
        startup: StartupPacket,
        tls: TlsInfo,
    },
    Cancel {
        pid: i32,
        secret: i32,
    },
    /// The client went away before sending a startup packet.
    Closed,
}

/// Negotiates TLS and reads the startup packet. Not cancel-safe (runs under the
/// authentication timeout as a whole).
#[tracing::instrument(name = "pgward.handshake", level = "debug", skip_all)]
pub async fn handshake(mut tcp: TcpStream, deps: &Arc<Deps>) -> Result<Handshake, SessionError> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Ok(Handshake::Closed);
    }
    if first[0] == TLS_HANDSHAKE_RECORD {
        return after_tls(accept_tls(tcp, deps, true).await?).await;
    }
    let mut gss_refused = false;
    loop {
        let Some(packet) = read_first_packet(&mut tcp).await? else {
            return Ok(Handshake::Closed);
        };
        match packet {
            FirstPacket::SslRequest => {
                if has_pending_bytes(&tcp).await {
                    return Err(SessionError::Protocol(
                        "received unencrypted data after SSL request".into(),
                    ));
                }
                write_message(&mut tcp, &SslResponse::Accept).await?;
                return after_tls(accept_tls(tcp, deps, false).await?).await;
            }
            FirstPacket::GssEncRequest if !gss_refused => {
                gss_refused = true;
                write_message(&mut tcp, &GssEncResponse::Refuse).await?;
            }
            FirstPacket::GssEncRequest => {
                return Err(SessionError::Protocol("repeated GSSENCRequest".into()));
            }
            FirstPacket::Cancel { pid, secret } => return Ok(Handshake::Cancel { pid, secret }),
            FirstPacket::Startup(startup) => {
                if deps.config.tls.required {
                    const REFUSAL: &str =
                        "connection requires TLS: connect with sslmode=require or stricter";
                    // Said in plaintext: the client gets PostgreSQL's own kind of error.
                    write_message(&mut tcp, &fatal("28000", REFUSAL)).await?;
                    return Err(SessionError::Auth {
                        sqlstate: "28000",
                        client: REFUSAL.into(),
                        reason: "plaintext client refused (tls.required)".into(),
                    });
                }
                return Ok(Handshake::Startup {
                    stream: Box::new(Either::Right(tcp)),
                    startup,
                    tls: TlsInfo::default(),
                });
            }
        }
    }
}

/// After TLS: one more startup-phase packet, a StartupMessage or a CancelRequest.
async fn after_tls(
    (mut stream, tls): (tokio_rustls::server::TlsStream<TcpStream>, TlsInfo),
) -> Result<Handshake, SessionError> {
    match read_first_packet(&mut stream).await? {
        None => Ok(Handshake::Closed),
        Some(FirstPacket::Startup(startup)) => Ok(Handshake::Startup {
            stream: Box::new(Either::Left(stream)),
            startup,
            tls,
        }),
        Some(FirstPacket::Cancel { pid, secret }) => Ok(Handshake::Cancel { pid, secret }),
        Some(FirstPacket::SslRequest | FirstPacket::GssEncRequest) => Err(SessionError::Protocol(
            "encryption requested inside an encrypted connection".into(),
        )),
    }
}

async fn accept_tls(
    tcp: TcpStream,
    deps: &Arc<Deps>,
    direct: bool,
) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, TlsInfo), SessionError> {
    let acceptor = TlsAcceptor::from(deps.server_tls.load_full());
    let stream = acceptor
        .accept(tcp)
        .await
        .map_err(|e| SessionError::Tls(format!("handshake failed: {e}")))?;
    let (_, conn) = stream.get_ref();
    if direct && conn.alpn_protocol() != Some(ALPN_POSTGRESQL) {
        return Err(SessionError::Tls(
            "direct TLS connection without ALPN \"postgresql\"".into(),
        ));
    }
    let info = TlsInfo {
        protocol: conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        peer_cn: conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(certificate_common_name),
        encrypted: true,
    };
    Ok((stream, info))
}

/// True if the client already sent bytes after its SSLRequest, before our answer.
async fn has_pending_bytes(tcp: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    // A zero timeout polls the peek once: data already queued is seen, nothing waits.
    matches!(
        tokio::time::timeout(Duration::ZERO, tcp.peek(&mut b)).await,
        Ok(Ok(n)) if n > 0
    )
}

async fn write_message<M: Message>(tcp: &mut TcpStream, m: &M) -> Result<(), SessionError> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf)
        .map_err(|e| SessionError::Protocol(format!("cannot encode: {e}")))?;
    tcp.write_all(&buf).await?;
    Ok(())
}
