//! Phase 3: the upstream session, always over mutual TLS.
//!
//! Connects, sends SSLRequest, verifies the server against `upstream.tls.ca` while
//! presenting pgward's client certificate, then logs in as the user's upstream user
//! with the client's startup parameters, answering whatever authentication the server
//! asks (trust/cert, cleartext, md5, SCRAM-SHA-256) with `upstream.password`.

use std::sync::Arc;

use bytes::Bytes;
use pgwire::messages::response::SslResponse;
use pgwire::messages::startup::{Password, SASLInitialResponse, SASLResponse};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::auth::Authenticated;
use crate::conn::ClientConn;
use crate::deps::Deps;
use crate::error::SessionError;
use crate::frame::{
    error_fields, split, Backend, BodyReader, Frame, FrameReader, FrameWriter, ReadHalf, WriteHalf,
};
use crate::pool::PoolKey;
use crate::startup::{cancel_body, ssl_request_body, StartupPacket};

pub type UpstreamIo = tokio_rustls::client::TlsStream<TcpStream>;

/// Upstream messages are capped far above any real row (PostgreSQL's own limit is 1 GiB).
const MAX_BACKEND_MESSAGE: usize = 1 << 30;

/// The framed halves of an upstream connection.
pub struct UpstreamConn {
    pub r: FrameReader<ReadHalf<UpstreamIo>>,
    pub w: FrameWriter<WriteHalf<UpstreamIo>>,
}

/// A logged-in upstream session, and what it said during startup.
pub struct Upstream {
    pub conn: UpstreamConn,
    pub pid: i32,
    pub secret: i32,
    /// ParameterStatus and NoticeResponse frames, to relay to the client as sent.
    pub startup_frames: Vec<Frame>,
    /// The final ReadyForQuery.
    pub ready: Frame,
}

/// TCP + SSLRequest + TLS to the upstream, with this TLS client config. Not cancel-safe.
async fn connect_tls(deps: &Deps, tls: Arc<ClientConfig>) -> Result<UpstreamIo, SessionError> {
    let cfg = &deps.config.upstream;
    let connect = TcpStream::connect((cfg.host.as_str(), cfg.port));
    let mut tcp = tokio::time::timeout(cfg.connect_timeout, connect)
        .await
        .map_err(|_| SessionError::Upstream("connect timed out".into()))?
        .map_err(|e| {
            SessionError::Upstream(format!("connect to {}:{}: {e}", cfg.host, cfg.port))
        })?;
    tcp.set_nodelay(true)?;
    let mut req = Vec::with_capacity(8);
    req.extend_from_slice(&8i32.to_be_bytes());
    req.extend_from_slice(&ssl_request_body());
    tcp.write_all(&req).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    if answer[0] != SslResponse::BYTE_ACCEPT {
        return Err(SessionError::Upstream(
            "upstream refused TLS; pgward never connects without it".into(),
        ));
    }
    let connector = TlsConnector::from(tls);
    connector
        .connect(deps.upstream_name.clone(), tcp)
        .await
        .map_err(|e| SessionError::Upstream(format!("TLS handshake: {e}")))
}

/// The pool key of a login: the startup packet sent upstream (`StartupPacket::upstream_body`:
/// the user's upstream user, the database, the client's parameters minus refused ones and
/// the role's pinned search_path) and the upstream TLS config now in use.
pub fn pool_key(
    deps: &Deps,
    startup: &StartupPacket,
    auth: &Authenticated,
    pinned: &[(String, String)],
) -> PoolKey {
    PoolKey::new(
        startup.upstream_body(&auth.upstream_user, &auth.database, pinned),
        deps.upstream_tls.load_full(),
    )
}

/// Opens and logs in an upstream session for an authenticated client, with the startup
/// packet and over the TLS config of `key`. Upstream errors during startup are relayed to
/// the client unchanged. Not cancel-safe.
#[tracing::instrument(name = "pgward.upstream.connect", skip_all, fields(upstream_user = %auth.upstream_user))]
pub async fn connect_upstream(
    deps: &Arc<Deps>,
    key: &PoolKey,
    auth: &Authenticated,
    client: &mut ClientConn,
) -> Result<Upstream, SessionError> {
    let io = tokio::time::timeout(
        deps.config.upstream.connect_timeout,
        connect_tls(deps, key.tls()),
    )
    .await
    .map_err(|_| SessionError::Upstream("connect timed out".into()))??;
    let (r, w) = split(io);
    let mut r = FrameReader::new(r, MAX_BACKEND_MESSAGE);
    let mut w = FrameWriter::new(w);
    w.push_untagged(key.startup());
    w.flush().await?;

    let mut scram: Option<ScramSha256> = None;
    let mut key: Option<(i32, i32)> = None;
    let mut startup_frames = Vec::new();
    loop {
        let frame = r
            .read_frame()
            .await?
            .ok_or_else(|| SessionError::Upstream("upstream closed during startup".into()))?;
        match frame.backend() {
            Backend::Authentication => {
                answer_auth(deps, auth, &frame, &mut scram, &mut w).await?;
            }
            Backend::ErrorResponse => {
                let message = error_fields(frame.body())
                    .into_iter()
                    .find(|(c, _)| *c == b'M')
                    .map(|(_, m)| m)
                    .unwrap_or_default();
                client.w.push(frame);
                let _ = client.w.flush().await;
                return Err(SessionError::UpstreamRefused(message));
            }
            Backend::BackendKeyData => {
                let mut b = BodyReader::new(frame.body());
                key =
                    Some(b.i32().zip(b.i32()).ok_or_else(|| {
                        SessionError::Upstream("malformed BackendKeyData".into())
                    })?);
            }
            Backend::ParameterStatus | Backend::NoticeResponse => startup_frames.push(frame),
            Backend::NegotiateProtocolVersion => {}
            Backend::ReadyForQuery => {
                let (pid, secret) = key.ok_or_else(|| {
                    SessionError::Upstream("upstream sent no BackendKeyData".into())
                })?;
                return Ok(Upstream {
                    conn: UpstreamConn { r, w },
                    pid,
                    secret,
                    startup_frames,
                    ready: frame,
                });
            }
            other => {
                return Err(SessionError::Upstream(format!(
                    "unexpected {other:?} during startup"
                )))
            }
        }
    }
}

const AUTH_OK: i32 = 0;
const AUTH_CLEARTEXT: i32 = 3;
const AUTH_MD5: i32 = 5;
const AUTH_SASL: i32 = 10;
const AUTH_SASL_CONTINUE: i32 = 11;
const AUTH_SASL_FINAL: i32 = 12;

async fn answer_auth(
    deps: &Deps,
    auth: &Authenticated,
    frame: &Frame,
    scram: &mut Option<ScramSha256>,
    w: &mut FrameWriter<WriteHalf<UpstreamIo>>,
) -> Result<(), SessionError> {
    let mut b = BodyReader::new(frame.body());
    let code = b
        .i32()
        .ok_or_else(|| SessionError::Upstream("malformed authentication request".into()))?;
    let password = || {
        deps.config.upstream.password.as_ref().ok_or_else(|| {
            SessionError::Upstream(
                "upstream asks for a password but upstream.password is not configured".into(),
            )
        })
    };
    match code {
        AUTH_OK => return Ok(()),
        AUTH_CLEARTEXT => {
            w.push_message(&Password::new(password()?.expose().to_owned()))?;
        }
        AUTH_MD5 => {
            let salt: [u8; 4] = b
                .bytes(4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| SessionError::Upstream("malformed md5 request".into()))?;
            let hash = md5_hash(
                auth.upstream_user.as_bytes(),
                password()?.expose().as_bytes(),
                salt,
            );
            w.push_message(&Password::new(hash))?;
        }
        AUTH_SASL => {
            let mut offered = false;
            while let Some(m) = b.cstr() {
                if m.is_empty() {
                    break;
                }
                offered |= m == b"SCRAM-SHA-256";
            }
            if !offered {
                return Err(SessionError::Upstream(
                    "upstream offers no SASL mechanism pgward supports".into(),
                ));
            }
            let client = ScramSha256::new(
                password()?.expose().as_bytes(),
                ChannelBinding::unsupported(),
            );
            w.push_message(&SASLInitialResponse::new(
                "SCRAM-SHA-256".to_owned(),
                Some(Bytes::from(client.message().to_vec())),
            ))?;
            *scram = Some(client);
        }
        AUTH_SASL_CONTINUE => {
            let client = scram
                .as_mut()
                .ok_or_else(|| SessionError::Upstream("SASL continue without SASL".into()))?;
            client
                .update(b.rest())
                .map_err(|e| SessionError::Upstream(format!("SCRAM: {e}")))?;
            w.push_message(&SASLResponse::new(Bytes::from(client.message().to_vec())))?;
        }
        AUTH_SASL_FINAL => {
            let client = scram
                .as_mut()
                .ok_or_else(|| SessionError::Upstream("SASL final without SASL".into()))?;
            client
                .finish(b.rest())
                .map_err(|e| SessionError::Upstream(format!("SCRAM server signature: {e}")))?;
            return Ok(());
        }
        other => {
            return Err(SessionError::Upstream(format!(
                "upstream asks for unsupported authentication method {other}"
            )))
        }
    }
    w.flush().await
}

/// Sends a CancelRequest for `pid` to the upstream over a fresh mTLS connection.
pub async fn send_cancel(deps: &Deps, pid: i32, secret: i32) -> Result<(), SessionError> {
    let tls = deps.upstream_tls.load_full();
    let io = tokio::time::timeout(deps.config.upstream.connect_timeout, connect_tls(deps, tls))
        .await
        .map_err(|_| SessionError::Upstream("connect timed out".into()))??;
    let mut w = FrameWriter::new(io);
    w.push_untagged(&cancel_body(pid, secret));
    w.flush().await?;
    // PostgreSQL answers a cancel by closing; wait briefly so the request is read.
    let mut io = w.into_inner();
    let mut sink = [0u8; 1];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), io.read(&mut sink)).await;
    Ok(())
}
