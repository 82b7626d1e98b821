//! Every built-in provider's redirect flow, implicit and PKCE, against a fake that serves that
//! provider's endpoints and user JSON (`fake_oauth`); the stored identity is checked against
//! GoTrue's mapping for the provider. (GitHub and Google have their own fakes: `oauth.rs`.)

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fake_oauth::{FakeOAuth, Script};
use crate::helpers::{TestApp, fresh_database, random_email};
use crate::oauth::{location, pairs, sign_in, to_callback, user_of};

const VERIFIER: &str = "a-provider-test-code-verifier-long-enough-for-pkce";

/// One provider: what its API answers for `email`, and what GoTrue stores from that.
struct Case {
    name: &'static str,
    script: Script,
    /// Fields of the stored `identity_data`.
    expected: Value,
    /// Whether the provider vouches for the address (else the flow ends asking to confirm it).
    verified: bool,
}

fn paths(authorize_path: &'static str, token_path: &'static str) -> Script {
    Script {
        authorize_path,
        token_path,
        ..Script::default()
    }
}

fn api(authorize: &'static str, token: &'static str, answers: Vec<(&'static str, Value)>) -> Script {
    Script {
        api: answers,
        ..paths(authorize, token)
    }
}

fn oidc(authorize: &'static str, token: &'static str, id_token: Value) -> Script {
    Script {
        id_token: Some(id_token),
        oidc: true,
        ..paths(authorize, token)
    }
}

fn cases(email: &str) -> Vec<Case> {
    let case = |name, script, expected, verified| Case {
        name,
        script,
        expected,
        verified,
    };
    vec![
        case(
            "bitbucket",
            api(
                "/site/oauth2/authorize",
                "/site/oauth2/access_token",
                vec![
                    (
                        "/2.0/user",
                        json!({"uuid": "{bb-1}", "display_name": "Ada Lovelace", "avatar": {"href": "https://b.example/a.png"}}),
                    ),
                    (
                        "/2.0/user/emails",
                        json!({"values": [{"email": "old@example.org", "is_confirmed": false, "is_primary": false}, {"email": email, "is_confirmed": true, "is_primary": true}]}),
                    ),
                ],
            ),
            json!({"sub": "{bb-1}", "full_name": "Ada Lovelace", "avatar_url": "https://b.example/a.png"}),
            true,
        ),
        case(
            "discord",
            api(
                "/api/oauth2/authorize",
                "/api/oauth2/token",
                vec![(
                    "/api/users/@me",
                    json!({"id": "80", "username": "ada", "discriminator": "0", "avatar": "a_abc", "email": email, "verified": true, "global_name": "Ada"}),
                )],
            ),
            json!({"sub": "80", "name": "ada#0", "full_name": "ada", "avatar_url": "https://cdn.discordapp.com/avatars/80/a_abc.gif", "custom_claims": {"global_name": "Ada"}}),
            true,
        ),
        case(
            "facebook",
            api(
                "/dialog/oauth",
                "/oauth/access_token",
                vec![(
                    "/me",
                    json!({"id": "10", "email": email, "first_name": "Ada", "last_name": "Lovelace", "name": "Ada L", "picture": {"data": {"url": "https://f.example/p.png"}}}),
                )],
            ),
            json!({"sub": "10", "full_name": "Ada Lovelace", "nickname": "Ada L", "avatar_url": "https://f.example/p.png"}),
            true,
        ),
        case(
            "figma",
            api(
                "/oauth",
                "/v1/oauth/token",
                vec![(
                    "/v1/me",
                    json!({"id": "f1", "handle": "ada", "img_url": "https://f.example/i.png", "email": email}),
                )],
            ),
            json!({"sub": "f1", "full_name": "ada", "avatar_url": "https://f.example/i.png"}),
            true,
        ),
        case(
            "fly",
            api(
                "/oauth/authorize",
                "/oauth/token",
                vec![(
                    "/oauth/token/info",
                    json!({"user_id": "u1", "user_name": "Ada", "email": email, "resource_owner_id": "r1", "organizations": [{"id": "o1", "role": "admin"}], "application": {"uid": "app"}, "scope": ["read"], "created_at": 1_700_000_000}),
                )],
            ),
            json!({"sub": "u1", "full_name": "Ada", "custom_claims": {"resource_owner_id": "r1", "organizations": [{"id": "o1", "role": "admin"}]}}),
            true,
        ),
        case(
            "gitlab",
            api(
                "/oauth/authorize",
                "/oauth/token",
                vec![
                    (
                        "/api/v4/user",
                        json!({"id": 42, "name": "Ada", "avatar_url": "https://g.example/a.png", "email": email, "confirmed_at": "2020-01-01T00:00:00Z"}),
                    ),
                    ("/api/v4/user/emails", json!([{"email": "other@example.org"}])),
                ],
            ),
            json!({"sub": "42", "full_name": "Ada", "avatar_url": "https://g.example/a.png"}),
            true,
        ),
        case(
            "kakao",
            api(
                "/oauth/authorize",
                "/oauth/token",
                vec![(
                    "/v2/user/me",
                    json!({"id": 7, "kakao_account": {"email": email, "is_email_verified": true, "is_email_valid": true, "profile": {"nickname": "ada", "profile_image_url": "https://k.example/a.png"}}}),
                )],
            ),
            json!({"sub": "7", "full_name": "ada", "preferred_username": "ada", "avatar_url": "https://k.example/a.png"}),
            true,
        ),
        case(
            "keycloak",
            api(
                "/protocol/openid-connect/auth",
                "/protocol/openid-connect/token",
                vec![(
                    "/protocol/openid-connect/userinfo",
                    json!({"sub": "kc-1", "name": "Ada", "email": email, "email_verified": true, "groups": ["admins"]}),
                )],
            ),
            json!({"sub": "kc-1", "full_name": "Ada", "custom_claims": {"groups": ["admins"]}}),
            true,
        ),
        case(
            "linkedin_oidc",
            oidc(
                "/oauth/v2/authorization",
                "/oauth/v2/accessToken",
                json!({"sub": "li-1", "email": email, "email_verified": true, "given_name": "Ada", "family_name": "Lovelace", "picture": "https://l.example/p.png", "locale": "en_US"}),
            ),
            json!({"sub": "li-1", "name": "Ada Lovelace", "given_name": "Ada", "picture": "https://l.example/p.png"}),
            true,
        ),
        case(
            "notion",
            api(
                "/v1/oauth/authorize",
                "/v1/oauth/token",
                vec![(
                    "/v1/users/me",
                    json!({"bot": {"owner": {"user": {"id": "n1", "name": "Ada", "avatar_url": "https://n.example/a.png", "person": {"email": email}}}}}),
                )],
            ),
            json!({"sub": "n1", "full_name": "Ada", "avatar_url": "https://n.example/a.png"}),
            true,
        ),
        case(
            "slack_oidc",
            api(
                "/openid/connect/authorize",
                "/api/openid.connect.token",
                vec![(
                    "/api/openid.connect.userInfo",
                    json!({"https://slack.com/user_id": "U1", "https://slack.com/team_id": "T1", "name": "Ada", "picture": "https://s.example/p.png", "email": email, "email_verified": true}),
                )],
            ),
            json!({"sub": "U1", "full_name": "Ada", "avatar_url": "https://s.example/p.png", "custom_claims": {"https://slack.com/team_id": "T1"}}),
            true,
        ),
        case(
            "snapchat",
            api(
                "/accounts/oauth2/auth",
                "/accounts/oauth2/token",
                vec![(
                    "/v1/me",
                    json!({"data": {"me": {"externalId": "sc-1", "displayName": "Ada", "bitmoji": {"avatar": "https://s.example/b.png"}, "email": email}}}),
                )],
            ),
            json!({"sub": "sc-1", "full_name": "Ada", "avatar_url": "https://s.example/b.png"}),
            true,
        ),
        case(
            "spotify",
            api(
                "/authorize",
                "/api/token",
                vec![(
                    "/me",
                    json!({"id": "sp1", "display_name": "Ada", "email": email, "images": [{"url": "https://s.example/small.png", "height": 64, "width": 64}, {"url": "https://s.example/big.png", "height": 640, "width": 640}]}),
                )],
            ),
            // Spotify says nothing of verification: GoTrue counts the address unverified.
            json!({"sub": "sp1", "full_name": "Ada", "avatar_url": "https://s.example/big.png"}),
            false,
        ),
        case(
            "twitch",
            api(
                "/oauth2/authorize",
                "/oauth2/token",
                vec![(
                    "/helix/users",
                    json!({"data": [{"id": "t1", "login": "ada", "display_name": "Ada", "profile_image_url": "https://t.example/p.png", "email": email, "broadcaster_type": "", "description": "hi", "type": "", "offline_image_url": "", "view_count": 3}]}),
                )],
            ),
            json!({"sub": "t1", "full_name": "ada", "nickname": "Ada", "avatar_url": "https://t.example/p.png", "custom_claims": {"description": "hi", "view_count": 3}}),
            true,
        ),
        case(
            "workos",
            Script {
                token_extra: json!({"profile": {"id": "prof_1", "first_name": "Ada", "last_name": "Lovelace", "email": email, "connection_id": "conn_1", "organization_id": "org_1"}}),
                ..paths("/sso/authorize", "/sso/token")
            },
            json!({"sub": "prof_1", "full_name": "Ada Lovelace", "custom_claims": {"connection_id": "conn_1", "organization_id": "org_1"}}),
            true,
        ),
        case(
            "x",
            api(
                "/i/oauth2/authorize",
                "/2/oauth2/token",
                vec![(
                    "/2/users/me",
                    json!({"data": {"id": "x1", "name": "Ada", "username": "ada", "profile_image_url": "https://x.example/p.png", "confirmed_email": email, "url": "https://ada.example", "created_at": "2020-01-01T00:00:00Z"}}),
                )],
            ),
            json!({"sub": "x1", "full_name": "Ada", "preferred_username": "ada", "profile": "https://x.com/ada", "avatar_url": "https://x.example/p.png"}),
            true,
        ),
        case(
            "zoom",
            api(
                "/oauth/authorize",
                "/oauth/token",
                vec![(
                    "/v2/users/me",
                    json!({"id": "z1", "first_name": "Ada", "last_name": "Lovelace", "pic_url": "https://z.example/p.png", "email": email, "login_type": 1}),
                )],
            ),
            json!({"sub": "z1", "full_name": "Ada Lovelace", "avatar_url": "https://z.example/p.png"}),
            true,
        ),
    ]
}

async fn spawn(fake: &FakeOAuth, name: &str) -> TestApp {
    let vars = fake.vars(name);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_on(&fresh_database().await, &pairs).await
}

/// `expected`'s fields, recursively, are in `actual`.
fn assert_contains(name: &str, actual: &Value, expected: &Value) {
    match expected {
        Value::Object(fields) => {
            for (key, value) in fields {
                assert_contains(&format!("{name}.{key}"), &actual[key], value);
            }
        }
        _ => assert_eq!(actual, expected, "{name}"),
    }
}

#[tokio::test]
async fn every_provider_signs_in_by_redirect_implicit_and_pkce() {
    let email = random_email();
    for case in cases(&email) {
        let fake = FakeOAuth::start(case.script).await;
        let app = spawn(&fake, case.name).await;
        let query = format!("provider={}&redirect_to=http://localhost:3000/cb", case.name);
        let end = sign_in(&app, &query).await;
        if !case.verified {
            assert_eq!(
                pairs(end.query())["error_code"],
                "provider_email_needs_verification",
                "{}: {end}",
                case.name
            );
            continue;
        }
        let fragment = pairs(end.fragment());
        let access = fragment
            .get("access_token")
            .unwrap_or_else(|| panic!("{}: {end}", case.name));
        assert!(
            fragment["provider_token"].starts_with("provider-access-"),
            "{}",
            case.name
        );
        let user = user_of(&app, access).await;
        assert_eq!(user["email"], email.as_str(), "{}", case.name);
        assert!(user["email_confirmed_at"].is_string(), "{}: {user}", case.name);
        assert_eq!(user["app_metadata"]["provider"], case.name);
        let identity = &user["identities"][0];
        assert_eq!(identity["provider"], case.name);
        assert_eq!(identity["id"], case.expected["sub"], "{}", case.name);
        assert_contains(case.name, &identity["identity_data"], &case.expected);
        assert_eq!(identity["identity_data"]["email_verified"], true, "{}", case.name);

        // PKCE: a code, exchanged with the verifier, for the same user.
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER));
        let end = sign_in(
            &app,
            &format!("{query}&code_challenge={challenge}&code_challenge_method=s256"),
        )
        .await;
        let code = pairs(end.query())
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("{}: {end}", case.name));
        let body = json!({"auth_code": code, "code_verifier": VERIFIER});
        let response = app.post_json("/token?grant_type=pkce", &body).await;
        assert_eq!(response.status(), 200, "{}", case.name);
        let session: Value = response.json().await.unwrap();
        assert_eq!(session["user"]["id"], user["id"], "{}", case.name);
    }
}

#[tokio::test]
async fn provider_quirks_reach_the_provider() {
    let email = random_email();
    let by_name = |name: &str| cases(&email).into_iter().find(|c| c.name == name).unwrap();

    // X wants PKCE from Latchkey: a challenge in the authorize URL, the verifier at the token
    // endpoint.
    let fake = FakeOAuth::start(by_name("x").script).await;
    let app = spawn(&fake, "x").await;
    sign_in(&app, "provider=x").await;
    let (asked, exchanged) = (fake.last_authorize(), fake.last_token_request());
    assert_eq!(asked["code_challenge_method"], "S256");
    let verifier = &exchanged["code_verifier"];
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    assert_eq!(asked["code_challenge"], challenge);
    assert_eq!(asked["scope"], "users.email tweet.read users.read offline.access");

    // WorkOS: the connection and organization are passed on, and `workos_provider` becomes
    // WorkOS's `provider` (GoTrue's renaming); the client authenticates in the body.
    let fake = FakeOAuth::start(by_name("workos").script).await;
    let app = spawn(&fake, "workos").await;
    sign_in(
        &app,
        "provider=workos&connection=conn_1&organization=org_1&workos_provider=GoogleOAuth",
    )
    .await;
    let asked = fake.last_authorize();
    assert_eq!(
        (asked["connection"].as_str(), asked["organization"].as_str()),
        ("conn_1", "org_1")
    );
    assert_eq!(asked["provider"], "GoogleOAuth");
    assert_eq!(fake.last_token_request()["client_secret"], "body");

    // Twitch and Kakao send the client's credentials in the body; Discord in the header.
    for (name, place) in [("twitch", "body"), ("kakao", "body"), ("discord", "basic")] {
        let fake = FakeOAuth::start(by_name(name).script).await;
        let app = spawn(&fake, name).await;
        sign_in(&app, &format!("provider={name}")).await;
        assert_eq!(fake.last_token_request()["client_secret"], place, "{name}");
    }
}

#[tokio::test]
async fn azure_signs_in_with_the_tenant_id_token_and_xms_edov_decides_verification() {
    // A single-tenant base (the fake): a missing `xms_edov` counts as verified, as in GoTrue.
    for (xms_edov, verified) in [(json!(true), true), (json!(false), false), (Value::Null, true)] {
        let email = random_email();
        let mut claims = json!({
            "iss": "{url}/v2.0", "sub": "az-1", "email": email, "name": "Ada",
            "preferred_username": "ada@tenant.example", "tid": "tenant-1",
        });
        if !xms_edov.is_null() {
            claims["xms_edov"] = xms_edov.clone();
        }
        let fake = FakeOAuth::start(oidc("/oauth2/v2.0/authorize", "/oauth2/v2.0/token", claims)).await;
        let app = spawn(&fake, "azure").await;
        let end = sign_in(&app, "provider=azure&redirect_to=http://localhost:3000/cb").await;
        if !verified {
            assert_eq!(
                pairs(end.query())["error_code"],
                "provider_email_needs_verification",
                "{end}"
            );
            continue;
        }
        let user = user_of(&app, &pairs(end.fragment())["access_token"]).await;
        assert_eq!(user["email"], email.as_str());
        let data = &user["identities"][0]["identity_data"];
        assert_eq!(data["iss"], format!("{}/v2.0", fake.url));
        assert_eq!(data["sub"], "az-1");
        assert_eq!(data["full_name"], "Ada");
        assert_eq!(data["preferred_username"], "ada@tenant.example");
        assert_eq!(data["custom_claims"]["tid"], "tenant-1");
    }
}

#[tokio::test]
async fn apple_posts_the_callback_and_the_name_comes_with_the_first_sign_in_only() {
    let email = random_email();
    let fake = FakeOAuth::start(oidc(
        "/auth/authorize",
        "/auth/token",
        json!({"sub": "ap-1", "email": email, "email_verified": "true", "is_private_email": "false"}),
    ))
    .await;
    let app = spawn(&fake, "apple").await;
    let query = "provider=apple&redirect_to=http://localhost:3000/cb";
    let callback = url::Url::parse(&to_callback(&app, query).await).unwrap();
    assert_eq!(fake.last_authorize()["response_mode"], "form_post");
    // Apple posts the code, the state and, the first time only, the user's name.
    let mut form = pairs(callback.query());
    form.insert(
        "user".into(),
        r#"{"name":{"firstName":"Ada","lastName":"Lovelace"}}"#.into(),
    );
    let response = app.client.post(app.url("/callback")).form(&form).send().await.unwrap();
    let end = url::Url::parse(&location(&response, 302)).unwrap();
    let access = pairs(end.fragment())["access_token"].clone();
    let user = user_of(&app, &access).await;
    assert_eq!(user["email"], email.as_str());
    let data = &user["identities"][0]["identity_data"];
    assert_eq!(data["full_name"], "Ada Lovelace");
    assert_eq!(data["sub"], "ap-1");
    assert_eq!(data["custom_claims"]["is_private_email"], false);

    // The next sign-in carries no name: the stored one stays.
    let callback = url::Url::parse(&to_callback(&app, query).await).unwrap();
    let response = app
        .client
        .post(app.url("/callback"))
        .form(&pairs(callback.query()))
        .send()
        .await
        .unwrap();
    let end = url::Url::parse(&location(&response, 302)).unwrap();
    let user = user_of(&app, &pairs(end.fragment())["access_token"]).await;
    assert_eq!(user["user_metadata"]["full_name"], "Ada Lovelace", "{user}");
}

#[tokio::test]
async fn settings_report_each_enabled_provider() {
    let fake = FakeOAuth::start(Script::default()).await;
    let enabled = [
        "apple",
        "azure",
        "discord",
        "gitlab",
        "keycloak",
        "slack_oidc",
        "x",
        "zoom",
    ];
    let mut vars: Vec<(String, String)> = enabled.iter().flat_map(|name| fake.vars(name)).collect();
    // Disabled explicitly, and a provider Latchkey does not implement (it stays false).
    vars.push(("GOTRUE_EXTERNAL_SPOTIFY_ENABLED".into(), "false".into()));
    vars.extend(fake.vars("twitter"));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_on(&fresh_database().await, &pairs).await;
    let settings: Value = app.get("/settings").await.json().await.unwrap();
    let external = settings["external"].as_object().unwrap();
    // Not OAuth providers: set by the test environment.
    let others = ["email", "phone", "anonymous_users"];
    for (name, on) in external.iter().filter(|(name, _)| !others.contains(&name.as_str())) {
        assert_eq!(on, &json!(enabled.contains(&name.as_str())), "{name}");
    }
    for name in enabled {
        assert!(external.contains_key(name), "{name}");
    }
}
