//! Short-lived credentials: a JWT sent as the password, verified against a JWKS file,
//! mapped to a user and a policy role; every bad token gets the generic auth error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use pgward_integration::{cluster, connect_plaintext, connect_tls, start_proxy, ProxyOptions};
use serde_json::{json, Value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Key {
    kid: &'static str,
    key: EncodingKey,
}

impl Key {
    fn new(kid: &'static str) -> Key {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Key {
            kid,
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
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.to_owned());
        encode(&header, claims, &self.key).unwrap()
    }
}

fn claims(sub: &str, exp: u64, aud: &str) -> Value {
    json!({
        "iss": "https://idp.example.com",
        "aud": aud,
        "sub": sub,
        "pgward_role": "analyst",
        "exp": exp,
        "iat": now(),
    })
}

#[tokio::test]
async fn tokens_log_in_and_bad_tokens_do_not() {
    let key = Key::new("k1");
    let other = Key::new("k2");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [key.jwk()] }).to_string()).unwrap();
    let proxy = start_proxy(ProxyOptions {
        users_extra: vec![format!(
            "jwt:\n  jwks: {}\n  issuer: https://idp.example.com\n  audience: pgward\n  role_claim: pgward_role\n  user_claim: sub\n  upstream_user: app_readonly",
            jwks.display()
        )],
        ..ProxyOptions::default()
    })
    .await;
    let port = proxy.addr.port();
    let ca = cluster().ca_path();
    let login = |user: &'static str, token: String| async move {
        connect_tls("localhost", port, user, "shop", Some(&token), None, ca).await
    };

    // A valid token: the analyst policy applies.
    let client = login("carol", key.sign(&claims("carol", now() + 300, "pgward")))
        .await
        .unwrap();
    let who: String = client
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "app_readonly");
    let e = client
        .simple_query("SELECT email FROM customers")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "42501");

    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims("carol", now() + 300, "pgward").to_string())
        )
    };
    for (why, user, token) in [
        (
            "expired",
            "carol",
            key.sign(&claims("carol", now() - 600, "pgward")),
        ),
        (
            "wrong audience",
            "carol",
            key.sign(&claims("carol", now() + 300, "other")),
        ),
        (
            "unknown key",
            "carol",
            other.sign(&claims("carol", now() + 300, "pgward")),
        ),
        ("alg none", "carol", unsigned),
        (
            "someone else's token",
            "dave",
            key.sign(&claims("carol", now() + 300, "pgward")),
        ),
        ("garbage", "carol", "not.a.jwt".to_owned()),
    ] {
        let e = login(user, token).await.map(|_| ()).expect_err(why);
        let db = e.as_db_error().unwrap_or_else(|| panic!("{why}: {e:?}"));
        assert_eq!(db.code().code(), "28P01", "{why}");
        assert_eq!(
            db.message(),
            format!("password authentication failed for user \"{user}\""),
            "{why}"
        );
    }

    // Tokens are never accepted in plaintext.
    let plain = start_proxy(ProxyOptions {
        tls_required: false,
        users_extra: vec![format!(
            "jwt:\n  jwks: {}\n  issuer: https://idp.example.com\n  audience: pgward",
            jwks.display()
        )],
        ..ProxyOptions::default()
    })
    .await;
    let token = key.sign(&claims("carol", now() + 300, "pgward"));
    let e = connect_plaintext(
        "127.0.0.1",
        plain.addr.port(),
        "carol",
        "shop",
        Some(&token),
    )
    .await
    .map(|_| ())
    .expect_err("plaintext token login");
    assert_eq!(e.as_db_error().unwrap().code().code(), "28000");
}
