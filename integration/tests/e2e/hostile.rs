//! Hostile input at the wire level: malformed, oversized and out-of-order bytes end that
//! session with an error, never the process and never another session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pgward_integration::raw::{
    message, read_message, read_until_ready, sqlstate, startup_message, tcp, tls, write,
    GSSENC_REQUEST, SSL_REQUEST,
};
use pgward_integration::{client_cert, start_proxy, ProxyOptions};
use tokio::io::AsyncReadExt;

/// Reads until EOF (or a 10 s cap); true if the peer closed the connection.
async fn closed<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn garbage_and_oversized_messages_do_not_affect_other_sessions() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec!["  max_message_bytes: 65536".into()],
        ..ProxyOptions::permissive()
    })
    .await;
    let good = proxy.connect("app").await;

    // Garbage instead of a startup packet.
    let mut g = tcp(proxy.addr).await;
    write(&mut g, b"\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n").await;
    assert!(closed(&mut g).await);

    // A startup packet whose length lies.
    let mut g = tcp(proxy.addr).await;
    write(&mut g, &[0, 0, 0, 3, 0, 3, 0, 0]).await;
    assert!(closed(&mut g).await);

    // An authenticated session sends a message over the cap, then a negative length.
    for bad in [
        {
            let mut m = vec![b'Q'];
            m.extend_from_slice(&(1_000_000u32).to_be_bytes());
            m
        },
        vec![b'Q', 0xff, 0xff, 0xff, 0xf0],
        message(b'!', b"unknown type"),
    ] {
        let cert = client_cert("bob");
        let mut s = tls(proxy.addr, Some(&cert), false).await;
        write(
            &mut s,
            &startup_message(&[("user", "bob"), ("database", "shop")]),
        )
        .await;
        let (_, last) = read_until_ready(&mut s).await;
        assert_eq!(last.map(|(t, _)| t), Some(b'Z'));
        write(&mut s, &bad).await;
        let (tag, body) = read_message(&mut s).await.expect("an error before close");
        assert_eq!(tag, b'E');
        assert_eq!(sqlstate(&body).as_deref(), Some("08P01"));
        assert!(closed(&mut s).await);
    }

    // The good session never noticed.
    let n: i64 = good
        .query_one("SELECT count(*) FROM products", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
}

#[tokio::test]
async fn authentication_must_finish_in_time() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec!["  auth_timeout_ms: 300".into()],
        ..ProxyOptions::permissive()
    })
    .await;
    // Connects, then says nothing.
    let mut s = tcp(proxy.addr).await;
    assert!(closed(&mut s).await, "a silent client is disconnected");
    // Starts TLS and a startup packet, then stalls in SCRAM.
    let mut s = tls(proxy.addr, None, false).await;
    write(
        &mut s,
        &startup_message(&[("user", "alice"), ("database", "shop")]),
    )
    .await;
    let (tag, _) = read_message(&mut s).await.expect("SASL request");
    assert_eq!(tag, b'R');
    assert!(closed(&mut s).await, "a stalled login is disconnected");
}

#[tokio::test]
async fn gssenc_is_refused_then_tls_works() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let mut s = tcp(proxy.addr).await;
    write(&mut s, &GSSENC_REQUEST).await;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[0], b'N');
    write(&mut s, &SSL_REQUEST).await;
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[0], b'S');
}

#[tokio::test]
async fn bytes_after_ssl_request_are_refused() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let mut s = tcp(proxy.addr).await;
    // SSLRequest and a plaintext startup packet in one write: the CVE-2021-23214
    // pattern. pgward must not treat the trailing bytes as if they came over TLS.
    let mut bytes = SSL_REQUEST.to_vec();
    bytes.extend_from_slice(&startup_message(&[("user", "bob"), ("database", "shop")]));
    write(&mut s, &bytes).await;
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut first))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(
        n == 0 || first[0] != b'S',
        "must not accept TLS after injected bytes"
    );
}

#[tokio::test]
async fn direct_tls_with_alpn_is_accepted() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let cert = client_cert("bob");
    let mut s = tls(proxy.addr, Some(&cert), true).await;
    write(
        &mut s,
        &startup_message(&[("user", "bob"), ("database", "shop")]),
    )
    .await;
    let (tags, last) = read_until_ready(&mut s).await;
    assert_eq!(last.map(|(t, _)| t), Some(b'Z'), "{tags:?}");
    // AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery.
    assert_eq!(tags.first(), Some(&b'R'));
    assert!(tags.contains(&b'K') && tags.contains(&b'S'));
}

#[tokio::test]
async fn replication_connections_are_refused() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let cert = client_cert("bob");
    let mut s = tls(proxy.addr, Some(&cert), false).await;
    write(
        &mut s,
        &startup_message(&[
            ("user", "bob"),
            ("database", "shop"),
            ("replication", "database"),
        ]),
    )
    .await;
    let (tag, body) = read_message(&mut s).await.expect("an error");
    assert_eq!(tag, b'E');
    assert_eq!(sqlstate(&body).as_deref(), Some("28000"));
}
