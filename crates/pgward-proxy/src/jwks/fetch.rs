//! One bounded GET of a JWKS over HTTPS: hyper's HTTP/1.1 client over tokio-rustls
//! (ring), the IdP verified against the system's roots or only `jwt.jwks_ca`.
//!
//! Never speaks plain http, never follows a redirect (only a 200 is a key set), never
//! reads more than `MAX_JWKS_LEN` bytes nor takes longer than the fetcher's timeout.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONNECTION, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::warn;

use crate::error::ConfigError;
use crate::jwt::{JwtError, MAX_JWKS_LEN};

const MAX_URL_LEN: usize = 2048;

/// A checked `https://` JWKS URL: host, port and the request line prepared, no user
/// info (credentials in a URL end up in logs). Shown without its query.
#[derive(Clone)]
pub struct JwksUrl(pub(super) Arc<ParsedUrl>);

pub(super) struct ParsedUrl {
    pub(super) uri: Uri,
    /// The host to connect to, without IPv6 brackets.
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) server_name: ServerName<'static>,
    pub(super) host_header: HeaderValue,
    pub(super) target: Uri,
}

impl JwksUrl {
    pub fn parse(text: &str) -> Result<JwksUrl, &'static str> {
        if text.len() > MAX_URL_LEN {
            return Err("URL is too long");
        }
        let uri: Uri = text.parse().map_err(|_| "not a valid URL")?;
        if !uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        {
            return Err("URL must use https");
        }
        let authority = uri.authority().ok_or("URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("URL must not carry credentials");
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err("URL has no host");
        }
        let server_name =
            ServerName::try_from(host.clone()).map_err(|_| "URL host is not a DNS name or IP")?;
        let port = match authority.port_u16() {
            Some(0) => return Err("URL port must not be 0"),
            Some(port) => port,
            None => 443,
        };
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| "URL host is not valid")?;
        let target = uri
            .path_and_query()
            .cloned()
            .map_or_else(|| Uri::from_static("/"), Uri::from);
        Ok(JwksUrl(Arc::new(ParsedUrl {
            uri,
            host,
            port,
            server_name,
            host_header,
            target,
        })))
    }
}

impl PartialEq for JwksUrl {
    fn eq(&self, other: &JwksUrl) -> bool {
        self.0.uri == other.0.uri
    }
}

impl Eq for JwksUrl {}

impl fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = &self.0.uri;
        let authority = uri.authority().map_or("", |a| a.as_str());
        write!(f, "https://{authority}{}", uri.path())?;
        if uri.query().is_some() {
            f.write_str("?…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for JwksUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwksUrl({self})")
    }
}

/// Why one fetch failed. For the log only; never shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP: {0}")]
    Http(hyper::Error),
    #[error("HTTP status {0} (only 200 is accepted; redirects are not followed)")]
    Status(u16),
    #[error("response is larger than {MAX_JWKS_LEN} bytes")]
    TooLarge,
    #[error("response is not UTF-8")]
    NotUtf8,
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
    #[error("the served key set is refused: {0}")]
    Keys(JwtError),
}

/// One GET of the JWKS over HTTP/1.1 and TLS, bounded in time and size.
pub(super) struct Fetcher {
    pub(super) url: JwksUrl,
    pub(super) tls: TlsConnector,
    pub(super) timeout: Duration,
}

impl Fetcher {
    /// Cancel-safe: dropping it drops the connection.
    pub(super) async fn fetch(&self) -> Result<String, FetchError> {
        tokio::time::timeout(self.timeout, self.fetch_unbounded())
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn fetch_unbounded(&self) -> Result<String, FetchError> {
        let url = &*self.url.0;
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(FetchError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(url.server_name.clone(), tcp)
            .await
            .map_err(FetchError::Tls)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(FetchError::Http)?;
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.uri_mut() = url.target.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, url.host_header.clone());
        headers.insert(USER_AGENT, HeaderValue::from_static("pgward"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/jwk-set+json, application/json"),
        );
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(FetchError::Http)?;
            read_body(response).await
        };
        // The connection future must be polled for the exchange to progress; when it ends
        // first (the server closed), the exchange still yields the buffered body or an error.
        let mut conn = std::pin::pin!(conn);
        let mut exchange = std::pin::pin!(exchange);
        let mut conn_done = false;
        loop {
            tokio::select! {
                result = &mut exchange => return result,
                _ = &mut conn, if !conn_done => conn_done = true,
            }
        }
    }
}

async fn read_body(response: Response<Incoming>) -> Result<String, FetchError> {
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_JWKS_LEN as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = response.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(FetchError::Http)?.into_data() {
            if buf.len() + data.len() > MAX_JWKS_LEN {
                return Err(FetchError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    String::from_utf8(buf).map_err(|_| FetchError::NotUtf8)
}

/// The roots the IdP's certificate must chain to: the CA bundle alone, or the system's.
pub(super) fn roots(
    ca: Option<(&Path, &[u8])>,
    url: &JwksUrl,
) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some((path, pem)) => {
            let tls_err = |reason: String| ConfigError::Tls {
                what: "jwt.jwks_ca",
                path: path.display().to_string(),
                reason,
            };
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| tls_err(e.to_string()))?;
                roots.add(cert).map_err(|e| tls_err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(tls_err("no certificate in file".into()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                warn!(error = %e, "reading the system CA certificates");
            }
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(ConfigError::Invalid {
                    path: url.to_string(),
                    message: "no system CA certificate found to verify the IdP (install \
                              ca-certificates, or set jwt.jwks_ca)"
                        .into(),
                });
            }
        }
    }
    Ok(roots)
}

pub(super) fn client_tls(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
