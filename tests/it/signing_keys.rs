//! Asymmetric signing keys (issue #16): GOTRUE_JWT_KEYS signs the tokens of every flow, the
//! JWKS publishes the public halves, a rotation keeps old tokens valid until their key leaves
//! the set, forged tokens get 403 bad_jwt, and admin service keys signed by any key of the
//! set pass the admin API and the rate limiter's bypass.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey::config::Config;
use latchkey::startup::Application;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, TestApp, assert_error, base_vars, fresh_database, random_email};
use crate::ratelimit::assert_allowed;

/// A new private JWK of `alg`, as `latchkey keys generate` prints it.
pub(crate) fn generated(alg: Algorithm) -> Value {
    let jwk = latchkey::auth::jwt::jwk::generate(alg).unwrap();
    serde_json::from_str(jwk.expose_secret()).unwrap()
}

pub(crate) fn verify_only(mut jwk: Value) -> Value {
    jwk["key_ops"] = json!(["verify"]);
    jwk
}

/// A `GOTRUE_JWT_KEYS` value.
pub(crate) fn key_set(keys: &[&Value]) -> String {
    json!(keys).to_string()
}

fn header_of(token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    serde_json::to_value(header).unwrap()
}

/// Signs `claims` with one private JWK (its own kid and algorithm), verify-only or not.
fn signed_by(jwk: &Value, claims: &Value) -> String {
    let mut jwk = jwk.clone();
    jwk["key_ops"] = json!(["sign"]);
    let jwk = &jwk;
    let keys = latchkey::auth::jwt::JwtKeys::from_settings(&latchkey::auth::jwt::KeySettings {
        secret: &JWT_SECRET.to_owned().into(),
        secret_kid: None,
        private_keys: Some(&key_set(&[jwk]).into()),
        valid_methods: None,
        secret_still_verifies: false,
    })
    .unwrap();
    keys.sign(claims).unwrap()
}

fn service_role_claims() -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": "supabase", "role": "service_role", "iat": now, "exp": now + 600})
}

async fn access_token(app: &TestApp) -> (String, Value) {
    let session = app.sign_up(&random_email(), "a-long-password-1").await;
    (session["access_token"].as_str().unwrap().to_owned(), session)
}

#[tokio::test]
async fn every_flow_signs_with_the_signing_key_and_the_jwks_publishes_it() {
    let es = generated(Algorithm::ES256);
    let old = verify_only(generated(Algorithm::RS256));
    let app = TestApp::spawn_with(&[("GOTRUE_JWT_KEYS", &key_set(&[&es, &old]))]).await;
    let (token, session) = access_token(&app).await;
    let header = header_of(&token);
    assert_eq!(
        (header["alg"].as_str(), header.get("kid")),
        (Some("ES256"), Some(&es["kid"]))
    );
    assert_eq!(app.get_auth("/auth/v1/user", &token).await.status(), 200);
    let refreshed = app.refreshed(session["refresh_token"].as_str().unwrap()).await;
    assert_eq!(header_of(refreshed["access_token"].as_str().unwrap())["kid"], es["kid"]);

    for mount in ["/auth/v1", ""] {
        let response = app.get(&format!("{mount}/.well-known/jwks.json")).await;
        assert_eq!(response.headers()["cache-control"], "public, max-age=600");
        let keys = response.json::<Value>().await.unwrap()["keys"].clone();
        let kids: Vec<&Value> = keys.as_array().unwrap().iter().map(|k| &k["kid"]).collect();
        assert_eq!(kids, [&es["kid"], &old["kid"]], "{mount}");
        for (key, private) in keys.as_array().unwrap().iter().zip([&es, &old]) {
            assert_eq!(key["use"], "sig");
            assert_eq!(key["key_ops"], json!(["verify"]));
            assert_eq!(key["alg"], private["alg"]);
            for member in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(member).is_none(), "{member} published");
            }
        }
    }

    // Discovery points at the same keys, under the address the server is reached at.
    let discovery: Value = app
        .get("/auth/v1/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], app.address);
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{}/.well-known/jwks.json", app.address));
    let via_discovery: Value = app.client.get(jwks_uri).send().await.unwrap().json().await.unwrap();
    assert_eq!(via_discovery["keys"].as_array().unwrap().len(), 2);
    let issuer = TestApp::spawn_with(&[("GOTRUE_JWT_ISSUER", "https://auth.example.com/auth/v1")]).await;
    let discovery: Value = issuer
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://auth.example.com/auth/v1");
    // The secret is never published.
    assert_eq!(
        issuer
            .get("/.well-known/jwks.json")
            .await
            .json::<Value>()
            .await
            .unwrap(),
        json!({"keys": []})
    );
}

#[tokio::test]
async fn forged_tokens_are_refused_with_bad_jwt() {
    let es = generated(Algorithm::ES256);
    let app = TestApp::spawn_with(&[("GOTRUE_JWT_KEYS", &key_set(&[&es]))]).await;
    let (token, _) = access_token(&app).await;
    let claims: Value = {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let public_jwk: Value = app.get("/.well-known/jwks.json").await.json::<Value>().await.unwrap()["keys"][0].clone();
    let hmac = |kid: Option<&Value>, key: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.and_then(Value::as_str).map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap()
    };
    let unsigned = |header: Value| {
        let parts = [header.to_string(), claims.to_string()].map(|part| URL_SAFE_NO_PAD.encode(part));
        format!("{}.{}.", parts[0], parts[1])
    };
    let mut impostor = generated(Algorithm::ES256);
    impostor["kid"] = es["kid"].clone();
    let cases = [
        (
            "HS256 keyed with the public JWK, our kid",
            hmac(Some(&es["kid"]), public_jwk.to_string().as_bytes()),
        ),
        (
            "HS256 keyed with the public JWK, no kid",
            hmac(None, public_jwk.to_string().as_bytes()),
        ),
        (
            "HS256 with the secret, no kid (not accepted with a key set)",
            hmac(None, JWT_SECRET.as_bytes()),
        ),
        ("unknown kid", signed_by(&generated(Algorithm::ES256), &claims)),
        ("another set's key under our kid", signed_by(&impostor, &claims)),
        ("alg none", unsigned(json!({"alg": "none", "typ": "JWT"}))),
        ("alg none, our kid", unsigned(json!({"alg": "none", "kid": es["kid"]}))),
    ];
    for (what, forged) in cases {
        let response = app.get_auth("/auth/v1/user", &forged).await;
        let body = assert_error(response, 403, "bad_jwt").await;
        assert!(
            body["msg"].as_str().unwrap().starts_with("invalid JWT"),
            "{what}: {body}"
        );
    }
    assert_eq!(app.get_auth("/auth/v1/user", &token).await.status(), 200);

    // HS256 named in GOTRUE_JWT_VALID_METHODS: the secret verifies kid-less tokens again.
    let database = fresh_database().await;
    let lenient = TestApp::spawn_on(
        &database,
        &[
            ("GOTRUE_JWT_KEYS", &key_set(&[&es])),
            ("GOTRUE_JWT_VALID_METHODS", "ES256,HS256"),
        ],
    )
    .await;
    assert_eq!(
        lenient
            .get_auth("/admin/users", &lenient.api_key("service_role"))
            .await
            .status(),
        200
    );
    let legacy = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &service_role_claims(),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(lenient.get_auth("/admin/users", &legacy).await.status(), 200);
    assert_error(app.get_auth("/admin/users", &legacy).await, 403, "bad_jwt").await;
}

#[tokio::test]
async fn a_rotation_keeps_tokens_valid_until_their_key_leaves_the_set() {
    let (first, second) = (generated(Algorithm::ES256), generated(Algorithm::ES256));
    let database = fresh_database().await;
    let before = TestApp::spawn_on(&database, &[("GOTRUE_JWT_KEYS", &key_set(&[&first]))]).await;
    let (old_token, _) = access_token(&before).await;

    // Step 1, published ahead: the new key verifies only; the old one still signs.
    let staged = key_set(&[&first, &verify_only(second.clone())]);
    let staged = TestApp::spawn_on(&database, &[("GOTRUE_JWT_KEYS", &staged)]).await;
    let (token, _) = access_token(&staged).await;
    assert_eq!(header_of(&token)["kid"], first["kid"]);
    // Step 2: the new key signs; tokens of both keys work.
    let rotated = key_set(&[&verify_only(first.clone()), &second]);
    let rotated = TestApp::spawn_on(&database, &[("GOTRUE_JWT_KEYS", &rotated)]).await;
    let (new_token, _) = access_token(&rotated).await;
    assert_eq!(header_of(&new_token)["kid"], second["kid"]);
    for token in [&old_token, &new_token] {
        assert_eq!(rotated.get_auth("/auth/v1/user", token).await.status(), 200);
    }
    // Step 3, after the longest token lifetime: the old key leaves, and its tokens with it.
    let retired = TestApp::spawn_on(&database, &[("GOTRUE_JWT_KEYS", &key_set(&[&second]))]).await;
    assert_error(retired.get_auth("/auth/v1/user", &old_token).await, 403, "bad_jwt").await;
    assert_eq!(retired.get_auth("/auth/v1/user", &new_token).await.status(), 200);
}

#[tokio::test]
async fn service_keys_of_any_key_in_the_set_pass_admin_and_the_limiter() {
    let (verifying, signing) = (verify_only(generated(Algorithm::EdDSA)), generated(Algorithm::ES256));
    let app = TestApp::spawn_with(&[
        ("GOTRUE_JWT_KEYS", &key_set(&[&verifying, &signing])),
        ("GOTRUE_RATE_LIMIT_OTP", "1/1h"),
    ])
    .await;
    let by_signer = app.api_key("service_role");
    assert_eq!(header_of(&by_signer)["kid"], signing["kid"]);
    let by_verifier = signed_by(&verifying, &service_role_claims());
    for key in [&by_signer, &by_verifier] {
        assert_eq!(app.get_auth("/admin/users", key).await.status(), 200);
        for n in 0..3 {
            let response = app
                .request(Method::POST, "/recover")
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_allowed(&response, &format!("admin call {n}"));
        }
    }
    // A service key of a key outside the set is neither admin nor exempt.
    let outsider = signed_by(&generated(Algorithm::EdDSA), &service_role_claims());
    assert_error(app.get_auth("/admin/users", &outsider).await, 403, "bad_jwt").await;
    let post = || app.request(Method::POST, "/recover").bearer_auth(&outsider);
    assert_allowed(&post().send().await.unwrap(), "first outsider call");
    assert_eq!(post().send().await.unwrap().status(), 429);
}

async fn build_error(vars: &[(&str, &str)]) -> String {
    let database = fresh_database().await;
    let mut all = base_vars(database.url());
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    match Config::from_vars(all) {
        Err(err) => err.to_string(),
        Ok(config) => match Application::build(config).await {
            Ok(_) => panic!("started with {vars:?}"),
            Err(err) => err.to_string(),
        },
    }
}

#[tokio::test]
async fn bad_key_settings_stop_start_up_naming_the_variable() {
    let es = generated(Algorithm::ES256);
    let d = es["d"].as_str().unwrap().to_owned();
    let two_signers = key_set(&[&es, &generated(Algorithm::ES256)]);
    let mut mismatched = es.clone();
    mismatched["x"] = generated(Algorithm::ES256)["x"].clone();
    let mut es512 = es.clone();
    es512["alg"] = json!("ES512");
    for (vars, var) in [
        (vec![("GOTRUE_JWT_KEYS", "not json")], "GOTRUE_JWT_KEYS"),
        (vec![("GOTRUE_JWT_KEYS", two_signers.as_str())], "GOTRUE_JWT_KEYS"),
        (vec![("GOTRUE_JWT_KEYS", &key_set(&[&mismatched]))], "GOTRUE_JWT_KEYS"),
        (vec![("GOTRUE_JWT_KEYS", &key_set(&[&es512]))], "GOTRUE_JWT_KEYS"),
        (
            vec![("GOTRUE_JWT_VALID_METHODS", "HS256,none")],
            "GOTRUE_JWT_VALID_METHODS",
        ),
        (vec![("GOTRUE_JWT_VALID_METHODS", "ES256")], "GOTRUE_JWT_VALID_METHODS"),
    ] {
        let error = build_error(&vars).await;
        assert!(error.contains(var), "{vars:?}: {error}");
        assert!(!error.contains(&d), "a private key in the error: {error}");
    }
}

/// `latchkey keys ...` with only `vars` in its environment; its standard output.
fn latchkey_keys(args: &[&str], vars: &[(&str, &str)]) -> String {
    let output = crate::jwt_secret::latchkey_keys(&std::env::temp_dir(), args, vars);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn generated_keys_sign_and_api_keys_use_the_signing_key() {
    for (args, alg) in [
        (&[][..], "ES256"),
        (&["--alg", "RS256"][..], "RS256"),
        (&["--alg", "EdDSA"][..], "EdDSA"),
    ] {
        let printed = latchkey_keys(&[&["generate"][..], args].concat(), &[]);
        let jwk: Value = serde_json::from_str(printed.trim()).unwrap();
        assert_eq!(
            (jwk["alg"].as_str(), &jwk["key_ops"]),
            (Some(alg), &json!(["sign", "verify"]))
        );
        let set = key_set(&[&jwk]);
        let app = TestApp::spawn_with(&[("GOTRUE_JWT_KEYS", &set)]).await;
        let (token, _) = access_token(&app).await;
        assert_eq!(header_of(&token)["alg"], alg);
        assert_eq!(app.get_auth("/user", &token).await.status(), 200);

        let api_keys = latchkey_keys(
            &[],
            &[
                ("DATABASE_URL", "postgres://x@127.0.0.1:1/x"),
                ("GOTRUE_JWT_SECRET", JWT_SECRET),
                ("GOTRUE_JWT_KEYS", &set),
            ],
        );
        let service = api_keys
            .lines()
            .find_map(|l| l.strip_prefix("SERVICE_ROLE_KEY="))
            .unwrap();
        assert_eq!(header_of(service)["kid"], jwk["kid"]);
        assert_eq!(app.get_auth("/admin/users", service).await.status(), 200);
    }
}
