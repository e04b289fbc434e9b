//! JWT keys over https: the JWKS comes from an in-test IdP (tokio-rustls + hyper, a
//! certificate from a test CA that pgward trusts through `jwt.jwks_ca`). Keys rotate
//! without a restart, random kids cannot make pgward hammer the IdP, an IdP outage keeps
//! the keys pgward has, a reload moves to another IdP and stops the old refresher, and a
//! plain http JWKS is refused at load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use pgward_integration::{cluster, connect_tls, start_proxy, Proxy, ProxyOptions};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Key {
    kid: String,
    key: EncodingKey,
}

impl Key {
    fn new(kid: &str) -> Key {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Key {
            kid: kid.to_owned(),
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
        }
    }
    fn jwk(&self) -> Value {
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&self.key, Algorithm::ES256).unwrap())
                .unwrap();
        jwk["kid"] = json!(self.kid);
        jwk
    }
    /// A token for carol, signed by this key, naming `kid` (normally its own).
    fn token_as(&self, kid: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let claims = json!({
            "iss": "https://idp.example.com",
            "aud": "pgward",
            "sub": "carol",
            "pgward_role": "analyst",
            "exp": now() + 300,
            "iat": now(),
        });
        encode(&header, &claims, &self.key).unwrap()
    }
    fn token(&self) -> String {
        self.token_as(&self.kid)
    }
}

fn jwks(keys: &[&Key]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

/// An IdP serving a JWKS over https on 127.0.0.1, with a CA of its own; counts requests.
struct Idp {
    url: String,
    ca_path: PathBuf,
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<String>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Idp {
    async fn start(dir: &Path, name: &str, body: String) -> Idp {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(Mutex::new(body));
        let (h, b) = (hits.clone(), body.clone());
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, h, b) = (acceptor.clone(), h.clone(), b.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |_: Request<Incoming>| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let body = b.lock().unwrap().clone();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Idp {
            url: format!("https://127.0.0.1:{port}/.well-known/jwks.json"),
            ca_path,
            hits,
            body,
            accept,
        }
    }

    fn serve(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Closes the listening socket: fetches are refused from now on.
    async fn stop(&self) {
        self.accept.abort();
        while !self.accept.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn jwt_section(idp: &Idp, refresh_secs: u64) -> String {
    format!(
        "jwt:\n  jwks: {}\n  jwks_ca: {}\n  jwks_refresh_secs: {refresh_secs}\n  issuer: https://idp.example.com\n  audience: pgward\n  upstream_user: app_readonly",
        idp.url,
        idp.ca_path.display()
    )
}

async fn proxy_for(idp: &Idp, refresh_secs: u64) -> Proxy {
    start_proxy(ProxyOptions {
        users_extra: vec![jwt_section(idp, refresh_secs)],
        // Many refused tokens from 127.0.0.1 on purpose: no lockout in this suite.
        limits: vec!["  login_lockout_after: 1000".to_owned()],
        ..ProxyOptions::default()
    })
    .await
}

async fn login(
    proxy: &Proxy,
    token: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect_tls(
        "localhost",
        proxy.addr.port(),
        "carol",
        "shop",
        Some(token),
        None,
        cluster().ca_path(),
    )
    .await
}

async fn logs_in(proxy: &Proxy, token: &str, why: &str) {
    let client = login(proxy, token)
        .await
        .unwrap_or_else(|e| panic!("{why}: {e:?}"));
    let who: String = client
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "app_readonly", "{why}");
}

async fn is_refused(proxy: &Proxy, token: &str, why: &str) {
    let e = login(proxy, token).await.map(|_| ()).expect_err(why);
    let db = e.as_db_error().unwrap_or_else(|| panic!("{why}: {e:?}"));
    assert_eq!(db.code().code(), "28P01", "{why}");
    assert_eq!(
        db.message(),
        "password authentication failed for user \"carol\"",
        "{why}"
    );
}

#[tokio::test]
async fn keys_rotate_without_restart_and_random_kids_do_not_hammer_the_idp() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (Key::new("2025-01"), Key::new("2025-02"));
    let idp = Idp::start(dir.path(), "idp", jwks(&[&k1])).await;
    let proxy = proxy_for(&idp, 300).await;

    logs_in(&proxy, &k1.token(), "a token signed by the served key").await;
    assert_eq!(idp.hits(), 1, "one fetch at startup");

    // The IdP rotates: a token with the new kid logs in at once (unknown-kid refetch).
    idp.serve(jwks(&[&k1, &k2]));
    logs_in(&proxy, &k2.token(), "a token with the rotated-in kid").await;
    assert_eq!(idp.hits(), 2, "one refetch for the new kid");

    // Random kids: every token refused, and at most one more fetch (rate limit: one per
    // 30 s; the rotation refetch just used it).
    let before = idp.hits();
    let started = Instant::now();
    for i in 0..40 {
        is_refused(&proxy, &k1.token_as(&format!("random-{i}")), "random kid").await;
    }
    let fetched = idp.hits() - before;
    assert!(fetched <= 1, "{fetched} fetches for 40 random kids");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused tokens were not answered promptly: {:?}",
        started.elapsed()
    );
    // Known keys still work.
    logs_in(&proxy, &k1.token(), "the old key after the storm").await;
}

#[tokio::test]
async fn an_idp_outage_keeps_the_keys_and_a_reload_moves_to_another_idp() {
    let dir = tempfile::tempdir().unwrap();
    let (a1, b1) = (Key::new("a1"), Key::new("b1"));
    let idp_a = Idp::start(dir.path(), "idp-a", jwks(&[&a1])).await;
    let idp_b = Idp::start(dir.path(), "idp-b", jwks(&[&b1])).await;
    let proxy = proxy_for(&idp_a, 1).await;
    logs_in(&proxy, &a1.token(), "IdP A's key").await;

    // Reload: users.yaml now names IdP B (URL and CA); the file watcher reloads it.
    let users_path = proxy.config_path.with_file_name("users.yaml");
    let users = std::fs::read_to_string(&users_path).unwrap();
    assert!(users.contains(&idp_a.url), "{users}");
    let moved = users.replace(&jwt_section(&idp_a, 1), &jwt_section(&idp_b, 1));
    std::fs::write(&users_path, &moved).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while login(&proxy, &b1.token()).await.is_err() {
        assert!(Instant::now() < deadline, "IdP B's key never accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    logs_in(&proxy, &b1.token(), "IdP B's key after the reload").await;
    is_refused(&proxy, &a1.token(), "IdP A's key after the move").await;

    // The old refresher stopped (it fetched every second); the new one runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a_before, b_before) = (idp_a.hits(), idp_b.hits());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        idp_a.hits(),
        a_before,
        "the replaced refresher still fetches"
    );
    assert!(idp_b.hits() > b_before, "the new refresher does not fetch");

    // Outage: IdP B goes away; refreshes fail, the keys stay.
    idp_b.stop().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    logs_in(&proxy, &b1.token(), "IdP B's key during its outage").await;
    let started = Instant::now();
    is_refused(
        &proxy,
        &a1.token_as("unknown"),
        "an unknown kid during the outage",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(11));

    // Plain http is refused at load, with a clear message; the running proxy keeps its keys.
    let plain = moved.replace(&idp_b.url, &idp_b.url.replace("https://", "http://"));
    std::fs::write(&users_path, plain).unwrap();
    let config = pgward_proxy::Config::load(&proxy.config_path).unwrap();
    let err = match pgward_proxy::Deps::from_config(config) {
        Ok(_) => panic!("an http:// JWKS was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("jwt.jwks") && err.contains("must use https"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    logs_in(&proxy, &b1.token(), "after a refused reload").await;
}
