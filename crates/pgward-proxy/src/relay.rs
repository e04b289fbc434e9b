//! Phase 4: the relay. Two directions run concurrently in one task; each reads what
//! is available, passes whole frames through without re-encoding, and writes them in
//! one batch, so a pipelined client costs one write per read. Backpressure is natural:
//! a direction does not read more until its last batch was written.
//!
//! Never forwards a Query, Parse or FunctionCall without a `Permit` from the gate.

use std::sync::Arc;

use pgwire::messages::terminate::Terminate;
use tokio::io::{ReadHalf, WriteHalf};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::conn::ClientConn;
use crate::deps::Deps;
use crate::error::SessionError;
use crate::frame::{Backend, BodyReader, FrameReader, FrameWriter, Frontend};
use crate::gate::Decide;
use crate::handshake::ClientIo;
use crate::upstream::{UpstreamConn, UpstreamIo};

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// The client sent Terminate or closed its connection.
    ClientClosed,
    /// The upstream closed (after a FATAL, or a server shutdown).
    UpstreamClosed,
    /// pgward is shutting down and the drain period is over.
    Shutdown,
}

/// Relays until one side ends. Cancel-safe with respect to `shutdown` only in the
/// sense that a cancelled relay drops both connections.
#[tracing::instrument(skip_all)]
pub async fn relay(
    client: &mut ClientConn,
    upstream: UpstreamConn,
    deps: &Arc<Deps>,
    shutdown: &CancellationToken,
) -> Result<RelayEnd, SessionError> {
    let UpstreamConn { mut r, mut w } = upstream;
    let ClientConn {
        r: client_r,
        w: client_w,
    } = client;
    let to_upstream = client_to_upstream(client_r, &mut w, deps);
    let to_client = upstream_to_client(&mut r, client_w);
    tokio::select! {
        end = to_upstream => end,
        end = to_client => end,
        _ = shutdown.cancelled() => Ok(RelayEnd::Shutdown),
    }
}

/// Client -> upstream. Statements go through the gate; everything else passes.
async fn client_to_upstream(
    client: &mut FrameReader<ReadHalf<ClientIo>>,
    upstream: &mut FrameWriter<WriteHalf<UpstreamIo>>,
    deps: &Deps,
) -> Result<RelayEnd, SessionError> {
    loop {
        if !client.fill().await? {
            // The client vanished without Terminate: end the upstream session politely.
            let _ = upstream.push_message(&Terminate::new());
            let _ = upstream.flush().await;
            return Ok(RelayEnd::ClientClosed);
        }
        let mut terminated = false;
        while let Some(frame) = client.next_frame()? {
            match frame.frontend() {
                Frontend::Query | Frontend::Parse => {
                    let sql = statement_text(frame.frontend(), frame.body());
                    match deps.gate.decide(Decide::Sql(sql)) {
                        Ok(permit) => upstream.push_statement(frame, &permit),
                        Err(denied) => {
                            // The stand-in never denies; enforcement replaces this.
                            return Err(SessionError::Protocol(denied.message));
                        }
                    }
                }
                Frontend::FunctionCall => {
                    let oid = BodyReader::new(frame.body())
                        .i32()
                        .map(|v| u32::from_be_bytes(v.to_be_bytes()))
                        .ok_or_else(|| SessionError::Protocol("malformed FunctionCall".into()))?;
                    match deps.gate.decide(Decide::FunctionCall { oid }) {
                        Ok(permit) => upstream.push_statement(frame, &permit),
                        Err(denied) => return Err(SessionError::Protocol(denied.message)),
                    }
                }
                Frontend::Terminate => {
                    upstream.push(frame);
                    terminated = true;
                    break;
                }
                Frontend::Unknown(tag) => {
                    return Err(SessionError::Protocol(format!(
                        "invalid frontend message type {tag}"
                    )));
                }
                Frontend::Bind
                | Frontend::Execute
                | Frontend::Describe
                | Frontend::Close
                | Frontend::Sync
                | Frontend::Flush
                | Frontend::CopyData
                | Frontend::CopyDone
                | Frontend::CopyFail
                | Frontend::Password => upstream.push(frame),
            }
        }
        upstream.flush().await?;
        if terminated {
            debug!("client sent Terminate");
            return Ok(RelayEnd::ClientClosed);
        }
    }
}

/// The SQL text of a Query (`query\0`) or Parse (`name\0query\0...`) body.
fn statement_text(kind: Frontend, body: &[u8]) -> &[u8] {
    let mut r = BodyReader::new(body);
    if kind == Frontend::Parse {
        let _ = r.cstr();
    }
    r.cstr().unwrap_or_default()
}

/// Upstream -> client. Decodes nothing but the kinds pgward watches.
async fn upstream_to_client(
    upstream: &mut FrameReader<ReadHalf<UpstreamIo>>,
    client: &mut FrameWriter<WriteHalf<ClientIo>>,
) -> Result<RelayEnd, SessionError> {
    loop {
        if !upstream.fill().await? {
            client.flush().await?;
            return Ok(RelayEnd::UpstreamClosed);
        }
        while let Some(frame) = upstream.next_frame()? {
            match frame.backend() {
                Backend::ReadyForQuery
                | Backend::ErrorResponse
                | Backend::CommandComplete
                | Backend::ParameterStatus
                | Backend::NoticeResponse
                | Backend::PassThrough => client.push(frame),
                Backend::BackendKeyData
                | Backend::Authentication
                | Backend::NegotiateProtocolVersion => {
                    // Only valid during startup; the upstream's secret must never
                    // reach the client.
                    return Err(SessionError::Upstream(format!(
                        "unexpected {:?} after startup",
                        frame.backend()
                    )));
                }
            }
        }
        client.flush().await?;
    }
}
