//! The bytes a client sends on a fresh connection, before TLS and authentication,
//! through the startup-phase decoder the handshake uses (`startup::read_first_packet`:
//! length gate, then `parse_first_packet`), packet after packet as `handshake` reads
//! them, and each StartupMessage through the startup-settings check. Must never panic,
//! never read past the packet it announced, and a parsed StartupMessage must survive
//! the upstream re-encoding unchanged.
//!
//! The whole input is also parsed as one packet body (`parse_first_packet`), so seeds
//! without the length prefix reach the body parser directly.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use pgward_proxy::pinning::{check_startup, parse_options};
use pgward_proxy::startup::{
    parse_first_packet, read_first_packet, FirstPacket, StartupPacket, MAX_STARTUP_PACKET,
};

/// At most this many packets per connection: the handshake reads at most a
/// GSSENCRequest, an SSLRequest and a StartupMessage; a few more cost nothing.
const MAX_PACKETS: usize = 4;

/// Polls a future over an in-memory reader to completion. Reading a `&[u8]` never
/// waits, so `Pending` would be a bug in the decoder, not in the input.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("read_first_packet waited on an in-memory reader"),
    }
}

fn check_startup_packet(p: &StartupPacket) {
    let _ = check_startup(p);
    if let Some(options) = p.param("options") {
        let _ = parse_options(options);
    }
    // What pgward sends upstream must decode to exactly the client's parameters, in
    // order, with user and database replaced and `_pq_.*` dropped, then the pins.
    let pinned = [("search_path".to_owned(), "public".to_owned())];
    let body = p.upstream_body("upstream_user", "db", &pinned);
    let Ok(FirstPacket::Startup(q)) = parse_first_packet(&body) else {
        panic!("upstream startup packet does not parse: {body:?}");
    };
    let mut expected = vec![
        ("user".to_owned(), "upstream_user".to_owned()),
        ("database".to_owned(), "db".to_owned()),
    ];
    expected.extend(
        p.params
            .iter()
            .filter(|(k, _)| k != "user" && k != "database" && !k.starts_with("_pq_."))
            .cloned(),
    );
    expected.extend(pinned);
    assert_eq!((q.major, q.minor), (3, 0));
    assert_eq!(q.params, expected);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(FirstPacket::Startup(p)) = parse_first_packet(data) {
        check_startup_packet(&p);
    }

    let mut stream = data;
    for _ in 0..MAX_PACKETS {
        let announced = stream
            .get(..4)
            .map(|l| i32::from_be_bytes([l[0], l[1], l[2], l[3]]));
        let before = stream.len();
        let packet = run(read_first_packet(&mut stream));
        let consumed = before - stream.len();
        assert!(consumed <= MAX_STARTUP_PACKET, "read {consumed} bytes");
        if let Ok(Some(_)) = &packet {
            // Exactly the packet it announced: nothing after an SSLRequest may be
            // buffered in plaintext.
            assert_eq!(
                Some(consumed),
                announced.and_then(|l| usize::try_from(l).ok())
            );
        }
        match packet {
            Ok(Some(FirstPacket::GssEncRequest)) => continue,
            Ok(Some(FirstPacket::Startup(p))) => {
                check_startup_packet(&p);
                break;
            }
            Ok(Some(FirstPacket::SslRequest | FirstPacket::Cancel { .. })) | Ok(None) | Err(_) => {
                break
            }
        }
    }
});
