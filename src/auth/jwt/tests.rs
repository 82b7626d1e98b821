//! Signing and verification with every kind of key, rotation, and the tokens that must be
//! refused (issue #16's table), without a server.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "test-secret-that-is-long-enough-32chars";

fn secret() -> SecretString {
    SecretString::from(SECRET)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> Value {
    json!({"sub": "abc", "aud": "authenticated", "role": "authenticated", "exp": now() + 60})
}

/// A new private JWK of `alg`, as JSON to edit.
fn generated(alg: Algorithm) -> Value {
    serde_json::from_str(jwk::generate(alg).unwrap().expose_secret()).unwrap()
}

/// One RSA key for the whole run: generating one takes a while.
fn rsa() -> Value {
    static KEY: OnceLock<Value> = OnceLock::new();
    KEY.get_or_init(|| generated(Algorithm::RS256)).clone()
}

/// `jwk` made verify-only.
fn verify_only(mut jwk: Value) -> Value {
    jwk["key_ops"] = json!(["verify"]);
    jwk
}

fn keys_with(set: &[Value], valid_methods: Option<&[Algorithm]>) -> Result<JwtKeys, crate::config::ConfigError> {
    let json = SecretString::from(Value::Array(set.to_vec()).to_string());
    let secret = secret();
    JwtKeys::from_settings(&KeySettings {
        secret: &secret,
        secret_kid: None,
        private_keys: Some(&json),
        valid_methods,
        secret_still_verifies: false,
    })
}

fn keys(set: &[Value]) -> JwtKeys {
    keys_with(set, None).unwrap()
}

fn verify(keys: &JwtKeys, token: &str) -> Result<Value, JwtError> {
    keys.verify::<Value>(token)
}

fn header_of(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A token "signed" with HMAC-SHA256 over `key_bytes`, with the header members given.
fn hs256_token(kid: Option<&str>, key_bytes: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(key_bytes)).unwrap()
}

fn unsigned_token(header: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    format!("{header}.{payload}.")
}

#[test]
fn every_algorithm_signs_and_verifies_and_names_its_key() {
    let mut hs = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([7u8; 32]), "alg": "HS256", "kid": "oct-1"});
    hs["key_ops"] = json!(["sign"]);
    let mut ps256 = rsa();
    ps256["alg"] = json!("PS256");
    ps256["kid"] = json!("ps-1");
    for jwk in [
        generated(Algorithm::ES256),
        generated(Algorithm::EdDSA),
        rsa(),
        ps256,
        hs,
    ] {
        let keys = keys(std::slice::from_ref(&jwk));
        let token = keys.sign(&claims()).unwrap();
        let header = header_of(&token);
        assert_eq!(header["alg"], jwk["alg"], "{header}");
        assert_eq!(header["kid"], jwk["kid"]);
        assert_eq!(verify(&keys, &token).unwrap()["sub"], "abc");
    }
}

#[test]
fn the_secret_alone_signs_hs256_with_a_kid() {
    let derived = JwtKeys::new(&secret());
    let token = derived.sign(&claims()).unwrap();
    let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid.len(), 16);
    assert!(!kid.contains(SECRET));
    assert!(verify(&derived, &token).is_ok());

    let secret = secret();
    let named = JwtKeys::from_settings(&KeySettings {
        secret: &secret,
        secret_kid: Some("legacy-1"),
        private_keys: None,
        valid_methods: None,
        secret_still_verifies: false,
    })
    .unwrap();
    let token = named.sign(&claims()).unwrap();
    assert_eq!(header_of(&token)["kid"], "legacy-1");
    // Tokens from before keys had ids, and the derived kid's tokens, are the same secret's.
    assert!(verify(&named, &hs256_token(None, SECRET.as_bytes())).is_ok());
    assert!(verify(&named, &hs256_token(Some("legacy-1"), SECRET.as_bytes())).is_ok());
    assert!(verify(&named, &hs256_token(Some(&kid), SECRET.as_bytes())).is_err());
}

#[test]
fn a_rotation_keeps_old_tokens_until_their_key_leaves_the_set() {
    let old = generated(Algorithm::ES256);
    let new = generated(Algorithm::ES256);
    let before = keys(std::slice::from_ref(&old));
    let old_token = before.sign(&claims()).unwrap();

    // 1. The new key is added, verify-only: the old one still signs.
    let staged = keys(&[old.clone(), verify_only(new.clone())]);
    assert_eq!(header_of(&staged.sign(&claims()).unwrap())["kid"], old["kid"]);
    assert_eq!(
        staged.public_keys().keys.len(),
        2,
        "both are published before either signs"
    );
    // 2. The new key signs; the old one verifies only.
    let rotated = keys(&[verify_only(old.clone()), new.clone()]);
    let new_token = rotated.sign(&claims()).unwrap();
    assert_eq!(header_of(&new_token)["kid"], new["kid"]);
    assert!(verify(&rotated, &old_token).is_ok());
    assert!(verify(&rotated, &new_token).is_ok());
    assert!(verify(&staged, &new_token).is_ok());
    // 3. The old key leaves: its tokens stop working.
    let retired = keys(&[new]);
    assert!(matches!(verify(&retired, &old_token), Err(JwtError::Invalid(_))));
    assert!(verify(&retired, &new_token).is_ok());
}

#[test]
fn hs256_tokens_keyed_with_public_key_bytes_are_refused() {
    let es = generated(Algorithm::ES256);
    let keys = keys(std::slice::from_ref(&es));
    let public = serde_json::to_string(&keys.public_keys().keys[0]).unwrap();
    let mut point = URL_SAFE_NO_PAD.decode(es["x"].as_str().unwrap()).unwrap();
    point.extend(URL_SAFE_NO_PAD.decode(es["y"].as_str().unwrap()).unwrap());
    let kid = es["kid"].as_str().unwrap();
    for key_bytes in [public.as_bytes(), &point, es["x"].as_str().unwrap().as_bytes()] {
        for token in [hs256_token(Some(kid), key_bytes), hs256_token(None, key_bytes)] {
            let refused = verify(&keys, &token).unwrap_err();
            assert!(matches!(refused, JwtError::Invalid(_)), "{refused:?}");
        }
    }
    // Even with HS256 accepted, the public bytes are not the secret.
    let lenient = keys_with(std::slice::from_ref(&es), Some(&[Algorithm::ES256, Algorithm::HS256])).unwrap();
    assert!(verify(&lenient, &hs256_token(Some(kid), public.as_bytes())).is_err());
    assert!(verify(&lenient, &hs256_token(None, public.as_bytes())).is_err());
    assert!(verify(&lenient, &hs256_token(None, SECRET.as_bytes())).is_ok());
}

#[test]
fn unknown_kids_keys_of_another_set_and_unsigned_tokens_are_refused() {
    let ours = generated(Algorithm::ES256);
    let keys = keys(std::slice::from_ref(&ours));
    // Another set's key under an unknown kid, and under our key's (public) kid.
    let theirs = generated(Algorithm::ES256);
    let unknown = self::keys(std::slice::from_ref(&theirs)).sign(&claims()).unwrap();
    let same_kid = self::keys(&[renamed(theirs, &ours["kid"])]).sign(&claims()).unwrap();
    let kid = ours["kid"].as_str().unwrap();
    for token in [
        unknown,
        same_kid,
        unsigned_token(json!({"alg": "none", "typ": "JWT"})),
        unsigned_token(json!({"alg": "none", "kid": kid})),
        unsigned_token(json!({"alg": "ES256", "kid": kid})),
        // A key embedded in the token, or a URL to fetch one from, is never used.
        unsigned_token(json!({"alg": "ES256", "kid": "mine", "jku": "https://evil.example/jwks.json"})),
        // A kid that is not a string.
        unsigned_token(json!({"alg": "ES256", "kid": 1})),
        "not.a.jwt".to_owned(),
    ] {
        assert!(matches!(verify(&keys, &token), Err(JwtError::Invalid(_))), "{token}");
    }
}

#[test]
fn a_key_is_only_used_with_its_own_algorithm_and_only_accepted_ones() {
    let es = generated(Algorithm::ES256);
    let rs = verify_only(rsa());
    let both = keys(&[es.clone(), rs.clone()]);
    let rs_token = keys(&[rsa()]).sign(&claims()).unwrap();
    assert!(verify(&both, &rs_token).is_ok());

    // An RS256 signature presented under the ES256 key's kid.
    let mut header: Value = header_of(&rs_token);
    header["kid"] = es["kid"].clone();
    let rest = rs_token.split_once('.').unwrap().1;
    let swapped = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
    assert!(verify(&both, &swapped).is_err());

    // GOTRUE_JWT_VALID_METHODS leaves RS256 out: the key is in the set but its tokens fail.
    let narrow = keys_with(&[es, rs], Some(&[Algorithm::ES256])).unwrap();
    let err = verify(&narrow, &rs_token).unwrap_err();
    assert!(err.to_string().contains("signing method RS256 is invalid"), "{err}");
}

#[test]
fn the_secret_verifies_kidless_hs256_only_while_hs256_is_accepted() {
    let set = [generated(Algorithm::ES256)];
    let legacy = hs256_token(None, SECRET.as_bytes());
    // GoTrue's default with a key set: its algorithms only.
    assert!(verify(&keys(&set), &legacy).is_err());
    assert!(
        verify(
            &keys_with(&set, Some(&[Algorithm::ES256, Algorithm::HS256])).unwrap(),
            &legacy
        )
        .is_ok()
    );
    let json = SecretString::from(Value::Array(set.to_vec()).to_string());
    let secret = secret();
    let zero_setup = JwtKeys::from_settings(&KeySettings {
        secret: &secret,
        secret_kid: None,
        private_keys: Some(&json),
        valid_methods: None,
        secret_still_verifies: true,
    })
    .unwrap();
    assert!(verify(&zero_setup, &legacy).is_ok());
    assert!(verify(&zero_setup, &hs256_token(None, b"some-other-secret-some-other-secret")).is_err());
}

#[test]
fn expired_tokens_are_refused_and_exp_less_ones_pass_as_in_gotrue() {
    let keys = keys(&[generated(Algorithm::EdDSA)]);
    let expired = keys.sign(&json!({"sub": "abc", "exp": now() - 1})).unwrap();
    assert!(matches!(verify(&keys, &expired), Err(JwtError::Expired)));
    let forever = keys.sign(&json!({"sub": "abc"})).unwrap();
    assert!(verify(&keys, &forever).is_ok());
}

#[test]
fn the_published_set_holds_public_halves_of_asymmetric_keys_only() {
    let hs = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([9u8; 40]), "alg": "HS256", "kid": "oct", "key_ops": ["verify"]});
    let keys = keys(&[
        generated(Algorithm::ES256),
        verify_only(rsa()),
        verify_only(generated(Algorithm::EdDSA)),
        hs,
    ]);
    let published = serde_json::to_value(keys.public_keys()).unwrap();
    let published = published["keys"].as_array().unwrap();
    assert_eq!(published.len(), 3, "no oct key: {published:?}");
    for key in published {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} in {key}");
        }
        assert_eq!(key["use"], "sig");
        assert_eq!(key["key_ops"], json!(["verify"]));
        assert!(key["kid"].is_string() && key["alg"].is_string());
    }
    // What a verifier builds from the published set verifies the server's tokens.
    let ring = KeyRing::from_jwks(keys.public_keys());
    assert!(ring.verify::<Value>(&keys.sign(&claims()).unwrap()).is_ok());
    assert!(ring.verify::<Value>(&hs256_token(Some("oct"), &[9u8; 40])).is_err());
}

fn renamed(mut jwk: Value, kid: &Value) -> Value {
    jwk["kid"] = kid.clone();
    jwk
}

#[test]
fn bad_key_sets_stop_start_up_naming_the_variable_and_no_secret() {
    let es = generated(Algorithm::ES256);
    let d = es["d"].as_str().unwrap().to_owned();
    let with = |member: &str, value: Value| {
        let mut jwk = es.clone();
        jwk[member] = value;
        jwk
    };
    let mut without_kid = es.clone();
    without_kid.as_object_mut().unwrap().remove("kid");
    let other = generated(Algorithm::ES256);
    let cases: Vec<(Vec<Value>, &str)> = vec![
        (vec![verify_only(es.clone())], "exactly one key"),
        (vec![es.clone(), other.clone()], "exactly one key"),
        (
            vec![es.clone(), verify_only(renamed(other.clone(), &es["kid"]))],
            "two keys have the kid",
        ),
        (vec![without_kid], "no `kid`"),
        (vec![with("alg", json!("ES512"))], "ES512"),
        (vec![with("alg", json!("RS256"))], "needs `kty` \"RSA\""),
        (vec![with("alg", json!("none"))], "is not one of"),
        (vec![with("crv", json!("P-384"))], "needs `crv`"),
        (vec![with("x", other["x"].clone())], "`x` does not belong"),
        (vec![with("d", json!("not base64!"))], "`d` is not base64url"),
        (
            vec![json!({"kty": "oct", "k": "c2hvcnQ", "alg": "HS256", "kid": "s", "key_ops": ["sign"]})],
            "at least 32",
        ),
        (vec![json!("a string")], "not a JWK"),
    ];
    for (set, expected) in cases {
        let err = keys_with(&set, None).unwrap_err();
        assert_eq!(err.var, "GOTRUE_JWT_KEYS");
        assert!(err.message.contains(expected), "{expected:?} in {}", err.message);
        assert!(!err.to_string().contains(&d), "the private key leaked: {err}");
    }
    let err = keys_with(std::slice::from_ref(&es), Some(&[Algorithm::RS256])).unwrap_err();
    assert_eq!(err.var, "GOTRUE_JWT_VALID_METHODS");
    let mut small = rsa();
    small["n"] = json!("AQAB");
    assert!(keys_with(&[small], None).is_err());
}

#[test]
fn generated_keys_are_ready_for_gotrue_jwt_keys() {
    for alg in jwk::GENERATED {
        let jwk = if alg == Algorithm::RS256 { rsa() } else { generated(alg) };
        assert_eq!(jwk["key_ops"], json!(["sign", "verify"]));
        assert_eq!(jwk["use"], "sig");
        assert!(uuid::Uuid::parse_str(jwk["kid"].as_str().unwrap()).is_ok());
        let keys = keys(&[jwk]);
        assert_eq!(keys.signing_key().1, alg);
    }
    assert!(jwk::generate(Algorithm::HS256).is_err());
    assert_ne!(generated(Algorithm::ES256)["d"], generated(Algorithm::ES256)["d"]);
}

#[test]
fn the_token_audience_must_be_present_and_match_the_requested_one() {
    assert!(token_audience_matches(None, Some("authenticated")));
    assert!(token_audience_matches(Some(""), Some("authenticated")));
    assert!(token_audience_matches(Some("authenticated"), Some("authenticated")));
    assert!(!token_audience_matches(Some("other"), Some("authenticated")));
    // GoTrue falls back to the configured audience when the token has none, which can
    // never equal a missing or empty claim.
    assert!(!token_audience_matches(None, None));
    assert!(!token_audience_matches(None, Some("")));
    assert!(!token_audience_matches(Some("authenticated"), None));
}

#[test]
fn api_keys_carry_the_role_and_no_subject() {
    let keys = keys(&[generated(Algorithm::ES256)]);
    let key = api_key(&keys, "service_role", now(), 3600).unwrap();
    let claims = keys.verify::<IncomingClaims>(&key).unwrap();
    assert_eq!(claims.role.as_deref(), Some("service_role"));
    assert!(claims.sub.is_none());
    assert_eq!(header_of(&key)["alg"], "ES256");
}
