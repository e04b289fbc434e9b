//! Rotation without downtime (issue 7): new TLS files on disk plus a reload (SIGHUP, or a
//! change to the users file, which the file watcher turns into the same reload) are used by
//! new sessions, while sessions already open go on over what they started with; a broken
//! file keeps the previous certificates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgward_integration::{
    client_tls_config, cluster, start_proxy, Proxy, ProxyOptions, OWN_SERVER_CERT, OWN_SERVER_KEY,
    OWN_UPSTREAM_CERT, OWN_UPSTREAM_KEY,
};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The DER certificate pgward presents to a client that asks for TLS.
async fn presented_cert(addr: SocketAddr) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // SSLRequest: length 8, code 80877103.
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"S");
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_tls_config(cluster().ca_path(), None)));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// The serial of the client certificate PostgreSQL saw from pgward for this session.
async fn upstream_serial(client: &tokio_postgres::Client) -> String {
    client
        .query_one(
            "SELECT client_serial::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// What the file watcher sees as a change (as an operator's SIGHUP would be).
fn trigger_reload(proxy: &Proxy) {
    let users = proxy.dir().join("users.yaml");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("{text}\n# reload {:?}\n", Instant::now())).unwrap();
}

fn replace(dir: &Path, name: &str, from: &Path) {
    // Write-then-rename, as deployment tools do: a reload never reads half a file.
    let tmp = dir.join(format!("{name}.new"));
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

async fn until_presented_changes(addr: SocketAddr, old: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = presented_cert(addr).await;
        if now != old {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never presented"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn tls_files_rotate_for_new_sessions_while_live_ones_continue() {
    let proxy = start_proxy(ProxyOptions {
        own_tls_files: true,
        ..ProxyOptions::permissive()
    })
    .await;
    let dir = proxy.dir().to_path_buf();
    let first_cert = presented_cert(proxy.addr).await;
    let live = proxy.connect("alice").await;
    let first_serial = upstream_serial(&live).await;

    // New certificates from the same CA, for both legs, under names nobody else uses.
    let ca = cluster().ca();
    let tag = std::process::id();
    let server = ca
        .issue_server(
            &format!("rotated-server-{tag}"),
            &["localhost", "127.0.0.1"],
        )
        .unwrap();
    let upstream = ca
        .issue_client_as(
            &format!("rotated-pgward-{tag}"),
            pgward_integration::PROXY_CN,
        )
        .unwrap();
    replace(&dir, OWN_SERVER_KEY, &server.key_path);
    replace(&dir, OWN_SERVER_CERT, &server.cert_path);
    replace(&dir, OWN_UPSTREAM_KEY, &upstream.key_path);
    replace(&dir, OWN_UPSTREAM_CERT, &upstream.cert_path);
    trigger_reload(&proxy);

    let second_cert = until_presented_changes(proxy.addr, &first_cert).await;
    assert_eq!(
        second_cert,
        rustls_pki_types::CertificateDer::from_pem_file(&server.cert_path)
            .unwrap()
            .to_vec()
    );
    // A new session runs over the new upstream certificate too; the live one was never
    // interrupted and still runs over the one it started with.
    let fresh = proxy.connect("alice").await;
    let second_serial = upstream_serial(&fresh).await;
    assert_ne!(second_serial, first_serial);
    assert_eq!(upstream_serial(&live).await, first_serial);

    // A broken certificate file is refused by the reload: the previous ones stay in use.
    std::fs::write(dir.join(OWN_SERVER_CERT), "not a certificate").unwrap();
    trigger_reload(&proxy);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(presented_cert(proxy.addr).await, second_cert);
    let after_broken = proxy.connect("alice").await;
    assert_eq!(upstream_serial(&after_broken).await, second_serial);
    live.batch_execute("SELECT 1").await.unwrap();
}
