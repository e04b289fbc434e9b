//! Bytes a client sends before authentication (the first packet body) and ErrorResponse
//! bodies from upstream, through pgward-proxy's public decoders: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgward_proxy::startup::parse_first_packet(data);
    let _ = pgward_proxy::frame::error_fields(data);
});
