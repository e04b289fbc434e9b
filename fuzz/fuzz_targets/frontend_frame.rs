//! Bytes a client sends after authentication, through the relay's decoder: the framer
//! (`FrameReader`: length checks, the size cap, frames split off the buffer, a stream
//! that ends mid-message), then each frame as `relay::client_to_upstream` reads it:
//! `Frame::frontend()`, and the fields it decodes with `BodyReader` (Query and Parse
//! text, decoded in the client encoding; the Parse, Bind and Execute names; the
//! FunctionCall OID). The same frames also go through the upstream-side decoders
//! (`Frame::backend()`, `error_fields`, ParameterStatus and the pinned-setting watch),
//! which read bodies the same way. Must never panic.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use pgward_proxy::encoding::ClientEncoding;
use pgward_proxy::frame::{error_fields, Backend, BodyReader, Frame, FrameReader, Frontend};
use pgward_proxy::pinning::check_parameter_status;

/// A small cap so that both sides of `max_message_bytes` are reachable with small inputs.
const MAX_MESSAGE: usize = 2048;
/// Frames per input: inputs are bounded by libFuzzer's -max_len anyway.
const MAX_FRAMES: usize = 1024;

/// Polls a future over an in-memory reader to completion. Reading a `&[u8]` never
/// waits, so `Pending` would be a bug in the framer, not in the input.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("read_frame waited on an in-memory reader"),
    }
}

/// The statement text of a Query (`query\0`) or Parse (`name\0query\0...`), as the
/// relay's `statement_text` reads it.
fn statement_text(kind: Frontend, body: &[u8]) -> &[u8] {
    let mut r = BodyReader::new(body);
    if kind == Frontend::Parse {
        let _ = r.cstr();
    }
    r.cstr().unwrap_or_default()
}

fn decode_sql(sql: &[u8], encodings: &[ClientEncoding]) {
    for e in encodings {
        let _ = e.decode(sql);
    }
}

fn frontend(frame: &Frame, encodings: &[ClientEncoding]) {
    let kind = frame.frontend();
    let body = frame.body();
    match kind {
        Frontend::Query => decode_sql(statement_text(kind, body), encodings),
        Frontend::Parse => {
            decode_sql(statement_text(kind, body), encodings);
            let _ = BodyReader::new(body)
                .cstr()
                .filter(|n| !n.is_empty())
                .map(|n| String::from_utf8_lossy(n).into_owned());
        }
        Frontend::Bind => {
            let mut b = BodyReader::new(body);
            if let (Some(portal), Some(stmt)) = (b.cstr(), b.cstr()) {
                let _ = (
                    String::from_utf8_lossy(portal),
                    String::from_utf8_lossy(stmt),
                );
            }
        }
        Frontend::Execute => {
            if let Some(portal) = BodyReader::new(body).cstr() {
                let _ = String::from_utf8_lossy(portal);
            }
        }
        Frontend::FunctionCall => {
            let _ = BodyReader::new(body)
                .i32()
                .map(|v| u32::from_be_bytes(v.to_be_bytes()));
        }
        Frontend::Describe
        | Frontend::Close
        | Frontend::Sync
        | Frontend::Flush
        | Frontend::CopyData
        | Frontend::CopyDone
        | Frontend::CopyFail
        | Frontend::Terminate
        | Frontend::Password
        | Frontend::Unknown(_) => {}
    }
}

fn backend(frame: &Frame) {
    match frame.backend() {
        Backend::ErrorResponse | Backend::NoticeResponse => {
            let _ = error_fields(frame.body());
        }
        Backend::ParameterStatus => {
            let mut b = BodyReader::new(frame.body());
            if let (Some(name), Some(value)) = (b.cstr(), b.cstr()) {
                let name = String::from_utf8_lossy(name);
                let value = String::from_utf8_lossy(value);
                let _ = ClientEncoding::from_pg_name(&value);
                let _ = check_parameter_status(&name, &value);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // UTF-8 (the default), a single-byte and a multi-byte client encoding.
    let encodings: Vec<ClientEncoding> = ["UTF8", "LATIN1", "EUC_JP"]
        .iter()
        .filter_map(|n| ClientEncoding::from_pg_name(n))
        .collect();
    let mut reader = FrameReader::new(data, MAX_MESSAGE);
    for _ in 0..MAX_FRAMES {
        match run(reader.read_frame()) {
            Ok(Some(frame)) => {
                assert!(frame.body().len() + 4 <= MAX_MESSAGE, "frame over the cap");
                frontend(&frame, &encodings);
                backend(&frame);
                // The relay stops at Terminate and ends the session on an unknown type.
                if matches!(frame.frontend(), Frontend::Terminate | Frontend::Unknown(_)) {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
