//! Tests of the https key source against a real TLS server on loopback that answers
//! what each test tells it to and counts the requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::jwt::MAX_JWKS_LEN;

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://idp.example.com";
const AUD: &str = "pgward";

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
    fn sign(&self) -> String {
        self.sign_as(&self.kid, ISS)
    }
    fn sign_as(&self, kid: &str, iss: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let claims = json!({
            "iss": iss, "aud": AUD, "sub": "alice", "pgward_role": "analyst", "exp": NOW + 300,
        });
        encode(&header, &claims, &self.key).unwrap()
    }
}

fn jwks(keys: &[&Key]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

/// What the test server answers.
#[derive(Clone)]
enum Reply {
    Json(u16, String),
    Chunked(String),
    /// A Content-Length header of this many bytes, and no body.
    Declared(u64),
    Redirect(&'static str),
    Hang,
}

fn test_ca() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "jwks test CA");
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn server_tls(issuer: &Issuer<'static, KeyPair>) -> Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A JWKS server on 127.0.0.1 with a CA of its own (written to `ca_path`).
struct Idp {
    url: String,
    ca_pem: String,
    ca_path: PathBuf,
    hits: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
    last_request: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    async fn start(reply: Reply) -> Idp {
        let (ca_pem, issuer) = test_ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("idp-ca.pem");
        std::fs::write(&ca_path, &ca_pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TlsAcceptor::from(server_tls(&issuer));
        let hits = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new(reply));
        let last_request = Arc::new(Mutex::new(String::new()));
        let (h, r, l) = (hits.clone(), reply.clone(), last_request.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, h, r, l) = (acceptor.clone(), h.clone(), r.clone(), l.clone());
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    *l.lock().unwrap() = String::from_utf8_lossy(&head).into_owned();
                    let reply = r.lock().unwrap().clone();
                    let response = match reply {
                        Reply::Json(status, body) => format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        Reply::Chunked(body) => format!(
                            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                            body.len()
                        ),
                        Reply::Declared(len) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
                        ),
                        Reply::Redirect(to) => format!(
                            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        ),
                        Reply::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Idp {
            url: format!("https://127.0.0.1:{port}/.well-known/jwks.json"),
            ca_pem,
            ca_path,
            hits,
            reply,
            last_request,
            task,
            dir,
        }
    }

    fn serve(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn settings(&self, refresh: Duration) -> JwtSettings {
        JwtSettings {
            config: JwtConfig::new(ISS, AUD, "pgward_role", "sub"),
            keys: KeySource::Https(HttpsSource {
                url: JwksUrl::parse(&self.url).unwrap(),
                ca: Some(self.ca_path.clone()),
                refresh,
            }),
            upstream_user: None,
        }
    }

    fn fetcher(&self, ca_pem: &str, timeout: Duration) -> Fetcher {
        let url = JwksUrl::parse(&self.url).unwrap();
        let roots = roots(Some((Path::new("ca.pem"), ca_pem.as_bytes())), &url).unwrap();
        Fetcher {
            url,
            tls: TlsConnector::from(client_tls(roots).unwrap()),
            timeout,
        }
    }
}

fn tuning(unknown_kid_interval: Duration, retry_after_failure: Duration) -> Tuning {
    Tuning {
        fetch_timeout: Duration::from_secs(2),
        unknown_kid_interval,
        retry_after_failure,
    }
}

const LONG: Duration = Duration::from_secs(3600);

async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn url_rules() {
    let url = JwksUrl::parse("https://idp.example.com/.well-known/jwks.json").unwrap();
    assert_eq!((url.0.host.as_str(), url.0.port), ("idp.example.com", 443));
    assert_eq!(url.0.target, "/.well-known/jwks.json");
    assert_eq!(url.0.host_header, "idp.example.com");
    let url = JwksUrl::parse("HTTPS://[::1]:8443/keys?api_key=s3cret").unwrap();
    assert_eq!((url.0.host.as_str(), url.0.port), ("::1", 8443));
    assert_eq!(url.0.target, "/keys?api_key=s3cret");
    assert_eq!(url.to_string(), "https://[::1]:8443/keys?…");
    assert!(!format!("{url:?}").contains("s3cret"));
    assert_eq!(JwksUrl::parse("https://idp").unwrap().0.target, "/");
    for (bad, why) in [
        ("http://idp.example.com/jwks", "https"),
        ("ftp://idp.example.com/jwks", "https"),
        ("https://user:pw@idp.example.com/jwks", "credentials"),
        ("https://idp.example.com:0/jwks", "port"),
        ("https:///jwks", ""),
        ("not a url", ""),
    ] {
        let err = JwksUrl::parse(bad).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn key_source_rules() {
    let https = "https://idp.example.com/jwks";
    let KeySource::Https(source) = KeySource::from_config(https, None, None).unwrap() else {
        panic!("not https");
    };
    assert_eq!(source.refresh, Duration::from_secs(DEFAULT_REFRESH_SECS));
    assert_eq!(source.ca, None);
    let mut with_ca =
        KeySource::from_config(https, Some("certs/idp-ca.pem".into()), Some(60)).unwrap();
    with_ca.resolve_relative(Path::new("/etc/pgward"));
    assert_eq!(
        with_ca,
        KeySource::Https(HttpsSource {
            url: JwksUrl::parse(https).unwrap(),
            ca: Some("/etc/pgward/certs/idp-ca.pem".into()),
            refresh: Duration::from_secs(60),
        })
    );
    let mut file = KeySource::from_config("jwks.json", None, None).unwrap();
    file.resolve_relative(Path::new("/etc/pgward"));
    assert_eq!(file, KeySource::File("/etc/pgward/jwks.json".into()));

    let refused = |jwks: &str, ca: Option<&str>, secs: Option<u64>| {
        KeySource::from_config(jwks, ca.map(PathBuf::from), secs)
            .unwrap_err()
            .to_string()
    };
    let err = refused("http://idp.example.com/jwks", None, None);
    assert!(
        err.starts_with("jwt.jwks: ") && err.contains("https"),
        "{err}"
    );
    let err = refused("jwks.json", Some("ca.pem"), None);
    assert!(
        err.contains("jwt.jwks_ca applies to an https jwks only"),
        "{err}"
    );
    let err = refused("jwks.json", None, Some(60));
    assert!(err.contains("jwt.jwks_refresh_secs applies"), "{err}");
    for secs in [0, MAX_REFRESH_SECS + 1] {
        let err = refused(https, None, Some(secs));
        assert!(err.contains("jwt.jwks_refresh_secs must be"), "{err}");
    }
    assert!(refused("", None, None).contains("empty"));
}

#[tokio::test]
async fn fetch_is_a_bounded_https_get_of_a_200() {
    let key = Key::new("k1");
    let idp = Idp::start(Reply::Json(200, jwks(&[&key]))).await;
    let fetcher = idp.fetcher(&idp.ca_pem, Duration::from_secs(2));
    assert_eq!(fetcher.fetch().await.unwrap(), jwks(&[&key]));
    let request = idp.last_request.lock().unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with("get /.well-known/jwks.json http/1.1\r\n"),
        "{request}"
    );
    let port = idp
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    assert!(
        request.contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{request}"
    );

    let big = "a".repeat(MAX_JWKS_LEN + 1);
    for (reply, expect) in [
        (Reply::Redirect("http://127.0.0.1/jwks"), "HTTP status 302"),
        (Reply::Json(404, "{}".into()), "HTTP status 404"),
        (Reply::Json(500, "{}".into()), "HTTP status 500"),
        (Reply::Declared(MAX_JWKS_LEN as u64 + 1), "larger than"),
        (Reply::Chunked(big.clone()), "larger than"),
    ] {
        idp.serve(reply);
        let err = fetcher.fetch().await.unwrap_err().to_string();
        assert!(err.contains(expect), "{expect}: {err}");
    }
    idp.serve(Reply::Chunked(jwks(&[&key])));
    assert_eq!(fetcher.fetch().await.unwrap(), jwks(&[&key]));

    idp.serve(Reply::Hang);
    let slow = idp.fetcher(&idp.ca_pem, Duration::from_millis(300));
    let started = Instant::now();
    assert!(matches!(slow.fetch().await, Err(FetchError::Timeout(_))));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_server_the_ca_does_not_vouch_for_is_refused() {
    let key = Key::new("k1");
    let idp = Idp::start(Reply::Json(200, jwks(&[&key]))).await;
    let (other_ca, _) = test_ca();
    let err = idp
        .fetcher(&other_ca, Duration::from_secs(2))
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Tls(_)), "{err}");
    assert_eq!(idp.hits(), 0);

    // The same through a verifier: the CA file decides; the token is refused.
    std::fs::write(&idp.ca_path, other_ca).unwrap();
    let v = JwksVerifier::start_tuned(&idp.settings(LONG), None, tuning(LONG, LONG)).unwrap();
    assert!(v.verify(&key.sign(), NOW).await.is_err());
}

#[tokio::test]
async fn logins_wait_for_the_first_fetch_and_unknown_kids_refetch_rate_limited() {
    let (k1, k2) = (Key::new("k1"), Key::new("k2"));
    let idp = Idp::start(Reply::Json(200, jwks(&[&k1]))).await;
    let v = JwksVerifier::start_tuned(&idp.settings(LONG), None, tuning(LONG, LONG)).unwrap();
    // Before the refresher ran at all: the login waits for the startup fetch.
    assert_eq!(v.verify(&k1.sign(), NOW).await.unwrap().user, "alice");
    assert_eq!(idp.hits(), 1);

    // Rotation: many logins with the new kid at once share one fetch and all succeed.
    idp.serve(Reply::Json(200, jwks(&[&k1, &k2])));
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (v, token) = (v.clone(), k2.sign());
        logins.spawn(async move { v.verify(&token, NOW).await });
    }
    while let Some(result) = logins.join_next().await {
        assert_eq!(result.unwrap().unwrap().user, "alice");
    }
    assert_eq!(idp.hits(), 2);

    // Random kids within the rate-limit interval fetch nothing more.
    for i in 0..50 {
        let (v, token) = (v.clone(), k1.sign_as(&format!("random-{i}"), ISS));
        logins.spawn(async move { v.verify(&token, NOW).await });
    }
    while let Some(result) = logins.join_next().await {
        assert!(matches!(result.unwrap(), Err(JwtError::UnknownKid { .. })));
    }
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn no_key_until_a_fetch_succeeds() {
    let key = Key::new("k1");
    let idp = Idp::start(Reply::Json(503, "{}".into())).await;
    let interval = Duration::from_millis(300);
    let v = JwksVerifier::start_tuned(&idp.settings(LONG), None, tuning(interval, LONG)).unwrap();
    // The startup fetch fails: refused, with the error the log shows.
    assert!(matches!(
        v.verify(&key.sign(), NOW).await,
        Err(JwtError::UnknownKid { .. })
    ));
    assert_eq!(idp.hits(), 1);
    // A login may ask for a refetch, once per interval.
    let no_kid = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = None;
        let claims = json!({"iss": ISS, "aud": AUD, "sub": "alice", "pgward_role": "analyst", "exp": NOW + 300});
        encode(&header, &claims, &key.key).unwrap()
    };
    assert!(matches!(
        v.verify(&no_kid, NOW).await,
        Err(JwtError::MissingKid { keys: 0 })
    ));
    assert_eq!(idp.hits(), 2);
    idp.serve(Reply::Json(200, jwks(&[&key])));
    assert!(v.verify(&key.sign(), NOW).await.is_err());
    assert_eq!(idp.hits(), 2, "rate limited");
    tokio::time::sleep(interval).await;
    assert!(v.verify(&key.sign(), NOW).await.is_ok());
    assert_eq!(idp.hits(), 3);
}

#[tokio::test]
async fn failed_or_unusable_refreshes_keep_the_keys() {
    let (k1, k2) = (Key::new("k1"), Key::new("k2"));
    let idp = Idp::start(Reply::Json(200, jwks(&[&k1]))).await;
    let refresh = Duration::from_millis(50);
    let v = JwksVerifier::start_tuned(&idp.settings(refresh), None, tuning(LONG, refresh)).unwrap();
    assert!(v.verify(&k1.sign(), NOW).await.is_ok());
    for bad in [
        Reply::Json(500, "{}".into()),
        Reply::Json(200, r#"{"keys": []}"#.into()),
        Reply::Json(200, "not json".into()),
        Reply::Redirect("https://elsewhere.example.com/jwks"),
        Reply::Hang,
    ] {
        idp.serve(bad);
        let seen = idp.hits();
        eventually("two refresh attempts", || idp.hits() >= seen + 2).await;
        assert!(v.verify(&k1.sign(), NOW).await.is_ok());
    }
    // A good set replaces the keys: the rotated-out kid is refused.
    idp.serve(Reply::Json(200, jwks(&[&k2])));
    let seen = idp.hits();
    eventually("a refresh", || idp.hits() >= seen + 2).await;
    assert!(v.verify(&k2.sign(), NOW).await.is_ok());
    assert!(v.verify(&k1.sign(), NOW).await.is_err());
}

#[tokio::test]
async fn stopping_or_dropping_ends_the_refresher() {
    let key = Key::new("k1");
    let idp = Idp::start(Reply::Json(200, jwks(&[&key]))).await;
    let refresh = Duration::from_millis(30);
    for stop in [true, false] {
        let v =
            JwksVerifier::start_tuned(&idp.settings(refresh), None, tuning(LONG, LONG)).unwrap();
        let seen = idp.hits();
        eventually("refreshes", || idp.hits() >= seen + 3).await;
        if stop {
            v.stop();
            // A stopped verifier still verifies against its last keys.
            assert!(v.verify(&key.sign(), NOW).await.is_ok());
        } else {
            drop(v);
        }
        tokio::time::sleep(refresh * 2).await;
        let after = idp.hits();
        tokio::time::sleep(refresh * 8).await;
        assert_eq!(idp.hits(), after, "stop={stop}");
    }
}

#[tokio::test]
async fn reload_keeps_an_unchanged_source_and_replaces_a_changed_one() {
    let key = Key::new("k1");
    let idp = Idp::start(Reply::Json(200, jwks(&[&key]))).await;
    let t = tuning(LONG, LONG);
    let settings = idp.settings(LONG);
    let a = JwksVerifier::start_tuned(&settings, None, t).unwrap();
    assert!(a.verify(&key.sign(), NOW).await.is_ok());

    // Unchanged: the same verifier, no fetch.
    let same = JwksVerifier::start_tuned(&settings, Some(&a), t).unwrap();
    assert!(Arc::ptr_eq(&a, &same));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(idp.hits(), 1);

    // Claims settings changed: a new verifier that has the keys from the start.
    let mut reissued = settings.clone();
    reissued.config.issuer = "https://idp2.example.com".into();
    let b = JwksVerifier::start_tuned(&reissued, Some(&a), t).unwrap();
    assert!(!Arc::ptr_eq(&a, &b));
    idp.serve(Reply::Json(503, "{}".into()));
    let token = key.sign_as("k1", "https://idp2.example.com");
    assert!(b.verify(&token, NOW).await.is_ok());

    // The CA file changed: a new verifier, trusting only the new CA.
    idp.serve(Reply::Json(200, jwks(&[&key])));
    let (other_ca, _) = test_ca();
    std::fs::write(&idp.ca_path, other_ca).unwrap();
    let c = JwksVerifier::start_tuned(&settings, Some(&a), t).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert!(c.verify(&key.sign(), NOW).await.is_err());
    std::fs::write(&idp.ca_path, &idp.ca_pem).unwrap();

    // Another URL: a new verifier that starts with no key.
    let mut moved = settings.clone();
    moved.keys = KeySource::Https(HttpsSource {
        url: JwksUrl::parse(&idp.url.replace("jwks.json", "other.json")).unwrap(),
        ca: Some(idp.ca_path.clone()),
        refresh: LONG,
    });
    idp.serve(Reply::Json(503, "{}".into()));
    let d = JwksVerifier::start_tuned(&moved, Some(&a), t).unwrap();
    assert!(d.verify(&key.sign(), NOW).await.is_err());
    assert!(idp
        .last_request
        .lock()
        .unwrap()
        .contains("/.well-known/other.json"));

    // A missing CA file is a configuration error.
    let mut missing = settings.clone();
    if let KeySource::Https(s) = &mut missing.keys {
        s.ca = Some(idp.dir.path().join("nope.pem"));
    }
    let err = JwksVerifier::start_tuned(&missing, Some(&a), t).unwrap_err();
    assert!(err.to_string().contains("jwt.jwks_ca"), "{err}");
}
