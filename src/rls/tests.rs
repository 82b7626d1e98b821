//! Unit tests for the parts of the RLS API that need no database.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::*;

const SECRET: &str = "unit-test-secret-that-is-long-enough-32";

fn rls() -> Rls {
    Rls::with_default_roles(&SecretString::from(SECRET))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// [`Rls::verify`] on its own: with keys given in code it never waits.
fn verify(rls: &Rls, token: &str) -> Result<RequestClaims, RlsError> {
    futures::executor::block_on(rls.verify(token))
}

fn sign(claims: Value) -> String {
    JwtKeys::new(&SecretString::from(SECRET)).sign(&claims).unwrap()
}

fn user_claims() -> Value {
    json!({
        "sub": "8b6f0f57-6d7d-4a8e-9a55-1a8e3c1c2f10",
        "aud": "authenticated",
        "role": "authenticated",
        "email": "ada@example.com",
        "exp": now() + 60,
        "iat": now(),
        "session_id": "c0d1f2a3-0000-4000-8000-000000000001",
        "app_metadata": {"provider": "email"},
        "user_metadata": {},
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now()}],
        "is_anonymous": false,
    })
}

#[test]
fn a_valid_token_yields_its_role_and_every_claim() {
    let claims = user_claims();
    let verified = verify(&rls(), &sign(claims.clone())).unwrap();
    assert_eq!(verified.role(), "authenticated");
    assert_eq!(Value::Object(verified.claims().clone()), claims);
}

#[test]
fn expired_forged_and_unsigned_tokens_are_refused() {
    let mut expired = user_claims();
    expired["exp"] = json!(now() - 1);
    assert!(matches!(verify(&rls(), &sign(expired)), Err(RlsError::ExpiredToken)));

    let other = JwtKeys::new(&SecretString::from("some-other-secret-some-other-secret"));
    let forged = other.sign(&user_claims()).unwrap();
    assert!(matches!(verify(&rls(), &forged), Err(RlsError::InvalidToken(_))));

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(user_claims().to_string());
    assert!(matches!(
        verify(&rls(), &format!("{header}.{payload}.")),
        Err(RlsError::InvalidToken(_))
    ));

    assert!(matches!(verify(&rls(), "not a jwt"), Err(RlsError::InvalidToken(_))));
    assert!(matches!(verify(&rls(), "  "), Err(RlsError::MissingToken)));
}

#[test]
fn roles_outside_the_allow_list_are_refused() {
    for role in ["postgres", "supabase_admin", "", "Authenticated"] {
        let mut claims = user_claims();
        claims["role"] = json!(role);
        match verify(&rls(), &sign(claims)) {
            Err(RlsError::ForbiddenRole(r)) => assert_eq!(r, role),
            other => panic!("{role:?} gave {other:?}"),
        }
    }

    let mut claims = user_claims();
    claims["role"] = json!(["authenticated"]);
    assert!(matches!(verify(&rls(), &sign(claims)), Err(RlsError::InvalidToken(_))));

    // A custom allow list replaces the default one.
    let narrow = Rls::new(&SecretString::from(SECRET), ["authenticated"]);
    let key = crate::auth::jwt::api_key(&JwtKeys::new(&SecretString::from(SECRET)), "service_role", now(), 60).unwrap();
    assert!(matches!(verify(&narrow, &key), Err(RlsError::ForbiddenRole(_))));
    assert!(matches!(narrow.anon(), Err(RlsError::ForbiddenRole(_))));

    // `set_config('role', 'none', ...)` would reset to the login's own role: never allowed.
    let careless = Rls::new(&SecretString::from(SECRET), ["authenticated", "none"]);
    let mut claims = user_claims();
    claims["role"] = json!("none");
    assert!(matches!(
        verify(&careless, &sign(claims)),
        Err(RlsError::ForbiddenRole(_))
    ));
}

#[test]
fn a_token_without_a_role_runs_as_anon_like_postgrest() {
    let verified = verify(&rls(), &sign(json!({"sub": "x", "exp": now() + 60}))).unwrap();
    assert_eq!(verified.role(), "anon");
    assert!(!verified.claims().contains_key("role"));
}

#[test]
fn anonymous_requests_publish_only_the_role() {
    let anon = rls().anon().unwrap();
    assert_eq!(anon.role(), "anon");
    assert_eq!(Value::Object(anon.claims().clone()), json!({"role": "anon"}));
    assert_eq!(
        anon.legacy_settings(),
        vec![("request.jwt.claim.role".to_owned(), "anon".to_owned())]
    );
}

#[test]
fn legacy_settings_cover_scalar_claims_with_plain_names() {
    let mut claims = user_claims();
    claims["SUB"] = json!("11111111-1111-1111-1111-111111111111");
    claims["weird-name"] = json!("x");
    claims["dotted.name"] = json!("x");
    claims["9lives"] = json!("x");
    claims["nul"] = json!("a\u{0}b");
    claims["nothing"] = Value::Null;
    let verified = verify(&rls(), &sign(claims.clone())).unwrap();
    let settings: std::collections::BTreeMap<String, String> = verified.legacy_settings().into_iter().collect();
    let names: Vec<&str> = settings.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "request.jwt.claim.aal",
            "request.jwt.claim.aud",
            "request.jwt.claim.email",
            "request.jwt.claim.exp",
            "request.jwt.claim.iat",
            "request.jwt.claim.is_anonymous",
            "request.jwt.claim.role",
            "request.jwt.claim.session_id",
            "request.jwt.claim.sub",
        ]
    );
    assert_eq!(settings["request.jwt.claim.sub"], claims["sub"].as_str().unwrap());
    assert_eq!(settings["request.jwt.claim.exp"], claims["exp"].to_string());
    assert_eq!(settings["request.jwt.claim.is_anonymous"], "false");
    // Everything, odd names included, is still in the full claim set.
    assert_eq!(verified.claims().len(), claims.as_object().unwrap().len());
}

#[test]
fn bearer_tokens_are_taken_from_the_authorization_header() {
    assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
    assert_eq!(bearer_token("bearer   abc "), Some("abc"));
    assert_eq!(bearer_token("BEARER abc"), Some("abc"));
    assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
    assert_eq!(bearer_token("Bearer "), None);
    assert_eq!(bearer_token("Bearer"), None);
    assert_eq!(bearer_token(""), None);
}
