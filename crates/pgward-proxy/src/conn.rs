//! The client connection after the startup packet: a framed reader and writer over
//! the (TLS) stream, and the messages pgward itself sends to clients.

use pgwire::messages::response::ErrorResponse;

use crate::error::SessionError;
use crate::frame::{FrameReader, FrameWriter, ReadHalf, WriteHalf};
use crate::handshake::ClientIo;

pub struct ClientConn {
    pub r: FrameReader<ReadHalf<ClientIo>>,
    pub w: FrameWriter<WriteHalf<ClientIo>>,
}

impl ClientConn {
    pub fn new(stream: ClientIo, max_message: usize) -> Self {
        let (r, w) = crate::frame::split(stream);
        Self {
            r: FrameReader::new(r, max_message),
            w: FrameWriter::new(w),
        }
    }

    /// Sends a FATAL error and flushes; errors on the way out are ignored (the
    /// session is ending anyway).
    pub async fn send_fatal(&mut self, sqlstate: &str, message: &str) {
        if self.w.push_message(&fatal(sqlstate, message)).is_ok() {
            let _ = self.w.flush().await;
        }
    }

    /// Reads the next message during authentication, which must be a password-family
    /// message ('p'); anything else is a protocol violation.
    pub async fn read_password_message(&mut self) -> Result<Vec<u8>, SessionError> {
        let frame = self.r.read_frame().await?.ok_or_else(|| {
            SessionError::Protocol("connection closed during authentication".into())
        })?;
        match frame.frontend() {
            crate::frame::Frontend::Password => Ok(frame.body().to_vec()),
            other => Err(SessionError::Protocol(format!(
                "expected a password response, got {other:?}"
            ))),
        }
    }
}

/// An ErrorResponse with severity FATAL.
pub fn fatal(sqlstate: &str, message: &str) -> ErrorResponse {
    ErrorResponse::new(vec![
        (b'S', "FATAL".to_owned()),
        (b'V', "FATAL".to_owned()),
        (b'C', sqlstate.to_owned()),
        (b'M', message.to_owned()),
    ])
}
