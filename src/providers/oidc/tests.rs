//! The verifier's checks against tokens signed with test keys: the RSA key of the integration
//! tests' fake Google and a P-256 key made for these tests. Test-only keys; never trust them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use sha2::Digest;

use super::*;

const RSA_KEY: &str = include_str!("../../../tests/it/fixtures/google_test_key.pem");
const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvAHQq/+InI1pR8zeYxVx\n8pU6M2l59v43z1cldlZfvNuitPYeukXf6bTGHyv2WxdXxL8Z+wiQk2aBMHnsoMmK\nj1b4X/gHyHOPvpA+ol57UL900HRdMFzM23OFyJWyOWCADwHixdsoQt9moDj22Q4s\nQH/DQY4zakJaMlyZ7VFWZW0q0x7iSbKXL8SMzGJ1E0fAbN/8CnnLkHv+xoFkVZ23\niTYYkvjf0fS8X12gB2q72dQ41AFTQzOf9oiGdDtNIwiKkhLtbyCB4Nsz6ovnKaUd\neEup0vtlCeVD0NIFKmXWyGZKroRfqIwFrArb+o9YcKf4Hg0i5nnhG116AHQXIlsk\nbQIDAQAB\n-----END PUBLIC KEY-----";
const EC_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgh5z3Fzz+0BWRVuna\niXalh00bHOlrwqMmnt87GY/tMiehRANCAAQYl34TlxkQQQexi/rGdhUw8JPRr5i7\n5IvLytj97wNS/N3wGqIo/t2p2L9QAGzMgzEh8aggmlYpblgYvHA3NOvy\n-----END PRIVATE KEY-----";
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGJd+E5cZEEEHsYv6xnYVMPCT0a+Y\nu+SLy8rY/e8DUvzd8BqiKP7dqdi/UABszIMxIfGoIJpWKW5YGLxwNzTr8g==\n-----END PUBLIC KEY-----";

const ISSUER: &str = "https://issuer.example.com";
const CLIENT_ID: &str = "our-client-id";

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_KEY.as_bytes()).unwrap()
}

/// The provider's published keys: the RSA key as `rsa-1`, the EC key as `ec-1`.
fn published() -> JwkSet {
    let jwk = |key: &EncodingKey, alg: Algorithm, kid: &str| {
        let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    };
    JwkSet {
        keys: vec![
            jwk(&rsa(), Algorithm::RS256, "rsa-1"),
            jwk(&ec(), Algorithm::ES256, "ec-1"),
        ],
    }
}

fn oidc() -> Oidc {
    let http = Http::new().unwrap();
    Oidc::new(Arc::new(IdTokenVerifier::new(http)), ISSUER, vec![CLIENT_ID.to_owned()])
}

fn claims() -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER, "aud": CLIENT_ID, "sub": "1234", "email": "ada@example.com",
        "email_verified": true, "iat": now, "exp": now + 600,
    })
}

fn with(changes: Value) -> Value {
    let mut claims = claims();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rsa-1"), &rsa(), claims)
}

fn check(token: &str, nonce: ExpectedNonce<'_>) -> Result<Value, IdTokenError> {
    oidc().check(token, &published(), &checks(nonce))
}

fn checks(nonce: ExpectedNonce<'_>) -> TokenChecks<'_> {
    TokenChecks {
        nonce,
        access_token: None,
    }
}

#[test]
fn tokens_signed_with_a_published_key_pass() {
    let passed = check(&rs256(&claims()), ExpectedNonce::Unchecked).unwrap();
    assert_eq!(passed["sub"], "1234");
    let es256 = sign(Algorithm::ES256, Some("ec-1"), &ec(), &claims());
    assert_eq!(
        check(&es256, ExpectedNonce::Unchecked).unwrap()["email"],
        "ada@example.com"
    );
    // Without a `kid`, the published key that verifies it.
    let no_kid = sign(Algorithm::ES256, None, &ec(), &claims());
    assert!(check(&no_kid, ExpectedNonce::Unchecked).is_ok());
}

#[test]
fn claims_that_are_not_ours_are_refused() {
    let cases = [
        (with(json!({"iss": "https://evil.example.com"})), IdTokenError::Issuer),
        (with(json!({"iss": null})), IdTokenError::MissingClaim("iss".into())),
        (
            with(json!({"aud": "another-client"})),
            IdTokenError::Audience("another-client".into()),
        ),
        (
            with(json!({"aud": ["another-client", "a-third"]})),
            IdTokenError::Audience("another-client a-third".into()),
        ),
        (with(json!({"aud": ""})), IdTokenError::Audience("".into())),
        (with(json!({"aud": null})), IdTokenError::MissingClaim("aud".into())),
        (with(json!({"sub": null})), IdTokenError::MissingClaim("sub".into())),
        (with(json!({"exp": null})), IdTokenError::MissingClaim("exp".into())),
        // Past the minute of leeway for clock skew.
        (
            with(json!({"exp": chrono::Utc::now().timestamp() - 120})),
            IdTokenError::Expired,
        ),
    ];
    for (claims, refusal) in cases {
        assert_eq!(
            check(&rs256(&claims), ExpectedNonce::Unchecked),
            Err(refusal.clone()),
            "{claims}"
        );
        let es256 = sign(Algorithm::ES256, Some("ec-1"), &ec(), &claims);
        assert_eq!(check(&es256, ExpectedNonce::Unchecked), Err(refusal), "{claims}");
    }
    // One of several audiences is enough (OIDC allows a list).
    let shared = with(json!({"aud": ["another-client", CLIENT_ID]}));
    assert!(check(&rs256(&shared), ExpectedNonce::Unchecked).is_ok());
}

#[test]
fn the_nonce_is_checked_when_asked_for() {
    let with_nonce = rs256(&with(json!({"nonce": "n-1"})));
    let without = rs256(&claims());
    assert!(check(&with_nonce, ExpectedNonce::Exactly("n-1")).is_ok());
    assert!(check(&with_nonce, ExpectedNonce::Unchecked).is_ok());
    assert!(check(&without, ExpectedNonce::Absent).is_ok());
    assert!(check(&without, ExpectedNonce::Unchecked).is_ok());
    for (token, nonce, refusal) in [
        (&with_nonce, ExpectedNonce::Exactly("n-2"), IdTokenError::Nonce),
        (&with_nonce, ExpectedNonce::Exactly(""), IdTokenError::Nonce),
        (&with_nonce, ExpectedNonce::Absent, IdTokenError::NoncePresence),
        (&without, ExpectedNonce::Exactly("n-1"), IdTokenError::NoncePresence),
    ] {
        assert_eq!(check(token, nonce), Err(refusal), "{nonce:?}");
    }
    // supabase-js sends the raw nonce; the token carries its SHA-256 in hex.
    assert_eq!(
        hashed_nonce("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn keys_the_provider_does_not_publish_are_refused() {
    let unknown_kid = sign(Algorithm::RS256, Some("rsa-2"), &rsa(), &claims());
    assert_eq!(
        check(&unknown_kid, ExpectedNonce::Unchecked),
        Err(IdTokenError::UnknownKey)
    );
    // A key the provider no longer publishes.
    let mut set = published();
    set.keys.retain(|k| k.common.key_id.as_deref() == Some("ec-1"));
    assert_eq!(
        oidc().check(&rs256(&claims()), &set, &checks(ExpectedNonce::Unchecked)),
        Err(IdTokenError::UnknownKey)
    );
    // An RSA signature presented under the name of the EC key.
    let confused = sign(Algorithm::RS256, Some("ec-1"), &rsa(), &claims());
    assert_eq!(
        check(&confused, ExpectedNonce::Unchecked),
        Err(IdTokenError::UnknownKey)
    );
    // The EC key's signature over other claims.
    let token = sign(Algorithm::ES256, Some("ec-1"), &ec(), &claims());
    let forged_claims = URL_SAFE_NO_PAD.encode(with(json!({"sub": "someone-else"})).to_string());
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    assert_eq!(check(&tampered, ExpectedNonce::Unchecked), Err(IdTokenError::Signature));
}

/// A token with a hand-made header and no (or any) signature.
fn unsigned(header: Value, signature: &str) -> String {
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{signature}", encode(&header), encode(&claims()))
}

#[test]
fn unsigned_and_symmetric_tokens_are_refused() {
    for header in [
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "none"}),
        json!({"alg": "None", "typ": "JWT"}),
    ] {
        for signature in ["", "e30"] {
            let refused = check(&unsigned(header.clone(), signature), ExpectedNonce::Unchecked);
            assert!(
                matches!(refused, Err(IdTokenError::Malformed(_))),
                "{header}: {refused:?}"
            );
        }
    }
    // HS256 "signed" with what anyone has: the public key's PEM, or the modulus of its JWK.
    let modulus = match &published().keys[0].algorithm {
        AlgorithmParameters::RSA(rsa) => URL_SAFE_NO_PAD.decode(&rsa.n).unwrap(),
        _ => unreachable!(),
    };
    for secret in [RSA_PUBLIC.as_bytes(), EC_PUBLIC.as_bytes(), &modulus] {
        for kid in [Some("rsa-1"), Some("ec-1"), None] {
            let token = sign(Algorithm::HS256, kid, &EncodingKey::from_secret(secret), &claims());
            assert_eq!(
                check(&token, ExpectedNonce::Unchecked),
                Err(IdTokenError::Algorithm("HS256".into()))
            );
        }
    }
}

#[test]
fn other_spellings_of_the_issuer_pass_only_when_accepted() {
    let bare = rs256(&with(json!({"iss": "issuer.example.com"})));
    assert_eq!(check(&bare, ExpectedNonce::Unchecked), Err(IdTokenError::Issuer));
    let oidc = oidc().also_accepting_issuer("issuer.example.com");
    assert!(
        oidc.check(&bare, &published(), &checks(ExpectedNonce::Unchecked))
            .is_ok()
    );
}

#[test]
fn the_access_token_hash_is_checked_when_both_are_there() {
    // OIDC Core's example: the left half of SHA-256 of the access token, base64url.
    let access_token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    let at_hash = URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access_token)[..16]);
    let token = rs256(&with(json!({ "at_hash": at_hash })));
    let with_access_token = |access_token| TokenChecks {
        nonce: ExpectedNonce::Unchecked,
        access_token,
    };
    let check = |access_token| oidc().check(&token, &published(), &with_access_token(access_token));
    assert!(check(Some(access_token)).is_ok());
    assert!(check(None).is_ok(), "no access token sent: nothing to compare");
    assert_eq!(check(Some("another-token")), Err(IdTokenError::AccessTokenHash));
    // No at_hash in the token: any access token goes.
    let plain = rs256(&claims());
    assert!(
        oidc()
            .check(&plain, &published(), &with_access_token(Some("x")))
            .is_ok()
    );
}

#[test]
fn the_issuer_of_a_token_can_be_read_before_it_is_verified() {
    assert_eq!(unverified_issuer(&rs256(&claims())).as_deref(), Some(ISSUER));
    assert_eq!(unverified_issuer("not.a.token"), None);
    assert_eq!(unverified_issuer(""), None);
}
