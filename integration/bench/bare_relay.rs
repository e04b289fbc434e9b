//! The bare relay: the benchmark's yardstick for "any proxy with TLS on both legs", never
//! shipped. It answers SSLRequest, does server TLS, reads the startup packet, connects
//! upstream with SSLRequest and mutual TLS, forwards the startup packet and then only copies
//! bytes both ways. It parses nothing else and authenticates nobody (trust at the relay;
//! upstream accepts its client certificate), so it must never listen anywhere but loopback
//! in a benchmark.
//!
//! Usage: bare-relay --listen 127.0.0.1:0 --upstream HOST:PORT --cert C --key K
//!        --client-cert C --client-key K --ca CA [--server-name localhost] [--threads N]
//! Prints `listening ADDR` on stdout once bound; exits when stdin closes.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Length 8, code 80877103: the SSLRequest packet, in both directions.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// Startup packets are small; anything bigger is not a client we benchmark.
const MAX_STARTUP: usize = 10_000;

struct Args {
    listen: String,
    upstream: String,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    ca: PathBuf,
    server_name: String,
    /// 0: tokio's multi-threaded runtime; N: N threads, each with its own current-thread
    /// runtime accepting from the same socket (no work stealing, no cross-thread wakes).
    threads: usize,
}

fn parse_args() -> BoxResult<Args> {
    let mut map = std::collections::HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        map.insert(flag, value);
    }
    let mut take = |flag: &str| map.remove(flag).ok_or_else(|| format!("missing {flag}"));
    Ok(Args {
        listen: take("--listen")?,
        upstream: take("--upstream")?,
        cert: take("--cert")?.into(),
        key: take("--key")?.into(),
        client_cert: take("--client-cert")?.into(),
        client_key: take("--client-key")?.into(),
        ca: take("--ca")?.into(),
        server_name: take("--server-name").unwrap_or_else(|_| "localhost".to_owned()),
        threads: match take("--threads") {
            Ok(n) => n.parse()?,
            Err(_) => 0,
        },
    })
}

fn certs(path: &PathBuf) -> BoxResult<Vec<CertificateDer<'static>>> {
    Ok(CertificateDer::pem_file_iter(path)?.collect::<Result<Vec<_>, _>>()?)
}

struct Shared {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    name: ServerName<'static>,
    upstream: Arc<str>,
}

fn main() -> BoxResult<()> {
    let args = parse_args()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs(&args.cert)?, PrivateKeyDer::from_pem_file(&args.key)?)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(&args.ca)? {
        roots.add(cert)?;
    }
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            certs(&args.client_cert)?,
            PrivateKeyDer::from_pem_file(&args.client_key)?,
        )?;
    let shared = Arc::new(Shared {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        connector: TlsConnector::from(Arc::new(client)),
        name: ServerName::try_from(args.server_name)?,
        upstream: args.upstream.into(),
    });
    let listener = std::net::TcpListener::bind(&args.listen)?;
    listener.set_nonblocking(true)?;
    println!("listening {}", listener.local_addr()?);
    // Whoever started us holds our stdin: when it goes away, so do we.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    if args.threads == 0 {
        let runtime = tokio::runtime::Runtime::new()?;
        return runtime.block_on(accept_loop(listener, shared));
    }
    // One current-thread runtime per thread, each accepting from the same socket.
    let mut handles = Vec::new();
    for _ in 0..args.threads {
        let (listener, shared) = (listener.try_clone()?, shared.clone());
        handles.push(std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(accept_loop(listener, shared))
                .map_err(|e| e.to_string())
        }));
    }
    for handle in handles {
        handle.join().map_err(|_| "relay thread panicked")??;
    }
    Ok(())
}

async fn accept_loop(listener: std::net::TcpListener, shared: Arc<Shared>) -> BoxResult<()> {
    let listener = TcpListener::from_std(listener)?;
    loop {
        let (socket, _) = listener.accept().await?;
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(err) = session(socket, &shared).await {
                eprintln!("bare-relay session: {err}");
            }
        });
    }
}

async fn session(mut socket: TcpStream, shared: &Shared) -> BoxResult<()> {
    socket.set_nodelay(true)?;
    let mut first = [0u8; 8];
    socket.read_exact(&mut first).await?;
    if first != SSL_REQUEST {
        return Err("client did not start with SSLRequest".into());
    }
    socket.write_all(b"S").await?;
    let mut client = shared.acceptor.accept(socket).await?;
    let mut len = [0u8; 4];
    client.read_exact(&mut len).await?;
    let total = usize::try_from(u32::from_be_bytes(len))?;
    if !(8..=MAX_STARTUP).contains(&total) {
        return Err(format!("startup packet of {total} bytes").into());
    }
    let mut startup = vec![0u8; total];
    startup[..4].copy_from_slice(&len);
    client.read_exact(&mut startup[4..]).await?;

    let mut up = TcpStream::connect(&*shared.upstream).await?;
    up.set_nodelay(true)?;
    up.write_all(&SSL_REQUEST).await?;
    let mut answer = [0u8; 1];
    up.read_exact(&mut answer).await?;
    if answer != *b"S" {
        return Err("upstream refused TLS".into());
    }
    let mut server = shared.connector.connect(shared.name.clone(), up).await?;
    server.write_all(&startup).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
