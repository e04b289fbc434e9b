//! A raw protocol client for hostile-input tests: bytes exactly as a test wants them,
//! over plain TCP or TLS, with none of a driver's politeness.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::{client_tls_config, cluster, CertPair};

pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
pub const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// A StartupMessage (protocol 3.0) with these parameters.
pub fn startup_message(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// A tagged message.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![tag];
    msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(body);
    msg
}

/// Reads one tagged message; `None` at end of stream.
pub async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.checked_sub(4)?];
    s.read_exact(&mut body).await.ok()?;
    Some((head[0], body))
}

/// Reads messages until ReadyForQuery ('Z') or an ErrorResponse ('E'); returns the tags
/// seen and the last message.
pub async fn read_until_ready<S: AsyncRead + Unpin>(s: &mut S) -> (Vec<u8>, Option<(u8, Vec<u8>)>) {
    let mut tags = Vec::new();
    while let Some((tag, body)) = read_message(s).await {
        tags.push(tag);
        if tag == b'Z' || tag == b'E' {
            return (tags, Some((tag, body)));
        }
    }
    (tags, None)
}

/// The SQLSTATE of an ErrorResponse body.
pub fn sqlstate(body: &[u8]) -> Option<String> {
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let code = body[i];
        let end = body[i + 1..].iter().position(|b| *b == 0)? + i + 1;
        if code == b'C' {
            return Some(String::from_utf8_lossy(&body[i + 1..end]).into_owned());
        }
        i = end + 1;
    }
    None
}

pub async fn tcp(addr: SocketAddr) -> TcpStream {
    match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect {addr}: {e}"),
    }
}

/// TLS (after an SSLRequest, or direct with ALPN) to pgward, presenting `cert`.
pub async fn tls(
    addr: SocketAddr,
    cert: Option<&CertPair>,
    direct: bool,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = client_tls_config(cluster().ca_path(), cert);
    if direct {
        config.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    let mut tcp = tcp(addr).await;
    if !direct {
        write(&mut tcp, &SSL_REQUEST).await;
        let mut answer = [0u8; 1];
        if let Err(e) = tcp.read_exact(&mut answer).await {
            panic!("reading SSL answer: {e}");
        }
        assert_eq!(answer[0], b'S', "pgward must accept SSLRequest");
    }
    let connector = TlsConnector::from(Arc::new(config));
    let name = match ServerName::try_from("localhost") {
        Ok(n) => n,
        Err(e) => panic!("server name: {e}"),
    };
    match connector.connect(name, tcp).await {
        Ok(s) => s,
        Err(e) => panic!("TLS to pgward: {e}"),
    }
}

pub async fn write<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) {
    if let Err(e) = s.write_all(bytes).await {
        panic!("write: {e}");
    }
    let _ = s.flush().await;
}
