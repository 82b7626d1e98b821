//! The OpenAPI document against the code: every implemented operation is documented (and only
//! those), each one fully enough for Swagger UI and for fuzzing from the spec (tags, security,
//! GoTrue error bodies), and the document served at /openapi.json is that one.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Operations that cannot fail because of anything the client sends: no parameters, no body,
/// no credentials checked. They have no 4xx to document (their `default` response still
/// covers 5xx); the test checks that they really take no input.
const NO_CLIENT_ERRORS: &[&str] = &[
    "GET /health",
    "GET /health/ready",
    "GET /settings",
    "GET /.well-known/jwks.json",
    "GET /.well-known/openid-configuration",
];

/// Browser redirects whose errors travel in the Location (`?error=...&error_code=...`), as
/// GoTrue's do, so they have no 4xx JSON response.
const ERRORS_IN_REDIRECT: &[&str] = &["GET /callback", "POST /callback"];

/// GoTrue's operations (its router, `internal/api/api.go`; reference/gotrue-api.md §1), as
/// `METHOD /path`. Those Latchkey does not implement must reach the router's 404/405, so a
/// route added without `#[utoipa::path]` (and so missing from the document) fails a test.
const GOTRUE_OPERATIONS: &[&str] = &[
    "GET /health",
    "GET /settings",
    "GET /.well-known/jwks.json",
    "GET /.well-known/openid-configuration",
    "POST /signup",
    "POST /token",
    "POST /otp",
    "POST /magiclink",
    "POST /recover",
    "POST /resend",
    "GET /verify",
    "POST /verify",
    "POST /logout",
    "GET /reauthenticate",
    "GET /user",
    "PUT /user",
    "GET /user/identities/authorize",
    "DELETE /user/identities/{identity_id}",
    "GET /authorize",
    "GET /callback",
    "POST /callback",
    "POST /invite",
    "POST /factors",
    "POST /factors/{factor_id}/challenge",
    "POST /factors/{factor_id}/verify",
    "DELETE /factors/{factor_id}",
    "POST /sso",
    "GET /sso/saml/metadata",
    "POST /sso/saml/acs",
    "GET /admin/users",
    "POST /admin/users",
    "GET /admin/users/{user_id}",
    "PUT /admin/users/{user_id}",
    "DELETE /admin/users/{user_id}",
    "GET /admin/users/{user_id}/factors",
    "PUT /admin/users/{user_id}/factors/{factor_id}",
    "DELETE /admin/users/{user_id}/factors/{factor_id}",
    "POST /admin/generate_link",
    "GET /admin/audit",
    "GET /admin/sso/providers",
    "POST /admin/sso/providers",
    "GET /admin/sso/providers/{idp_id}",
    "PUT /admin/sso/providers/{idp_id}",
    "DELETE /admin/sso/providers/{idp_id}",
    "GET /admin/custom-providers",
    "POST /admin/custom-providers",
    "GET /admin/custom-providers/{identifier}",
    "PUT /admin/custom-providers/{identifier}",
    "DELETE /admin/custom-providers/{identifier}",
];

/// Latchkey's own operations, outside GoTrue's API.
const LATCHKEY_EXTRAS: &[&str] = &[
    // HeliosDB Nano's refresh shape (src/api/token.rs).
    "POST /refresh",
    // Readiness: the database answers (src/api/health.rs); GoTrue has none.
    "GET /health/ready",
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn document() -> Value {
    serde_json::to_value(latchkey::api::openapi()).unwrap()
}

/// `(METHOD /path, operation)` for every operation in the document.
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                found.push((format!("{} {path}", method.to_uppercase()), operation));
            }
        }
    }
    found
}

fn listed_operations() -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/operations.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A response object, following a `$ref` into `components.responses`.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/responses/").unwrap();
            &doc["components"]["responses"][name]
        }
        None => response,
    }
}

fn is_error_body(doc: &Value, response: &Value) -> bool {
    resolve(doc, response)["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody"
}

#[test]
fn documented_operations_match_the_list() {
    let doc = document();
    let documented: BTreeSet<String> = operations(&doc).into_iter().map(|(name, _)| name).collect();
    let listed = listed_operations();
    let undocumented: Vec<_> = listed.difference(&documented).collect();
    let unlisted: Vec<_> = documented.difference(&listed).collect();
    assert!(
        undocumented.is_empty(),
        "listed in openapi/operations.txt but not in the OpenAPI document (a handler without \
         #[utoipa::path], or not registered with routes!()): {undocumented:?}"
    );
    assert!(
        unlisted.is_empty(),
        "in the OpenAPI document but not in openapi/operations.txt (add them): {unlisted:?}"
    );
}

#[test]
fn listed_operations_are_gotrue_operations() {
    let unknown: Vec<_> = listed_operations()
        .into_iter()
        .filter(|op| !GOTRUE_OPERATIONS.contains(&op.as_str()) && !LATCHKEY_EXTRAS.contains(&op.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "not GoTrue operations (a typo, or add them to LATCHKEY_EXTRAS): {unknown:?}"
    );
}

/// A GoTrue route served without being documented would escape the list comparison above;
/// here every GoTrue operation outside the list must be unknown to the router.
#[tokio::test]
async fn gotrue_operations_outside_the_list_are_not_served() {
    let app = TestApp::spawn().await;
    let listed = listed_operations();
    let mut served = Vec::new();
    for operation in GOTRUE_OPERATIONS.iter().filter(|op| !listed.contains(**op)) {
        let (status, code) = call(&app, operation).await;
        // SAML's routes answer as GoTrue's do with SAML off (src/api/sso.rs): served, but
        // nothing is there.
        if !["not_found", "method_not_allowed", "saml_provider_disabled"].contains(&code.as_str()) {
            served.push(format!("{operation} ({status} {code})"));
        }
    }
    assert!(
        served.is_empty(),
        "served but not documented (add #[utoipa::path], register with routes!(), and list \
         them in openapi/operations.txt): {served:?}"
    );
}

/// Calls `METHOD /path` under `/auth/v1` with no body or credentials, path parameters set to
/// the nil UUID; returns the status and GoTrue `error_code` (empty on success).
async fn call(app: &TestApp, operation: &str) -> (u16, String) {
    let (method, path) = operation.split_once(' ').unwrap();
    let path: String = path
        .split('/')
        .map(|segment| match segment.starts_with('{') {
            true => "00000000-0000-0000-0000-000000000000",
            false => segment,
        })
        .collect::<Vec<_>>()
        .join("/");
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let response = app.request(method, &format!("/auth/v1{path}")).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error_code"].as_str().unwrap_or("").to_owned())
}

#[test]
fn every_operation_has_tags_security_and_gotrue_errors() {
    let doc = document();
    let declared_tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut problems = Vec::new();
    for (name, operation) in operations(&doc) {
        let tags = operation["tags"].as_array().map(Vec::as_slice).unwrap_or_default();
        if tags.is_empty() {
            problems.push(format!("{name}: no tag"));
        }
        for tag in tags {
            if !declared_tags.contains(tag.as_str().unwrap()) {
                problems.push(format!("{name}: tag {tag} is not declared in ApiDoc"));
            }
        }
        let security = operation["security"].as_array().map(Vec::as_slice).unwrap_or_default();
        if security.is_empty() {
            problems.push(format!("{name}: no security requirement"));
        }
        for scheme in security.iter().flat_map(|s| s.as_object().unwrap().keys()) {
            if !schemes.contains_key(scheme) {
                problems.push(format!("{name}: unknown security scheme {scheme}"));
            }
        }
        let responses = operation["responses"].as_object().unwrap();
        let mut client_errors = 0;
        for (status, response) in responses {
            // 3xx are the redirects of browser flows (/verify, /authorize, /callback).
            let is_error = status == "default" || status.starts_with('4') || status.starts_with('5');
            if is_error && !is_error_body(&doc, response) {
                problems.push(format!("{name}: response {status} is not GoTrue's ErrorBody"));
            }
            if status.starts_with('4') && is_error_body(&doc, response) {
                client_errors += 1;
            }
        }
        if !responses.contains_key("default") {
            problems.push(format!("{name}: no default (catch-all error) response"));
        }
        if !responses
            .keys()
            .any(|status| status.starts_with('2') || status.starts_with('3'))
        {
            problems.push(format!("{name}: no success response"));
        }
        let parameters = operation["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        // A parameter whose extractor utoipa cannot see (RawQuery) defaults to `in: path`;
        // fuzzers then generate path segments for a path that has none and give up.
        for parameter in parameters.iter().filter(|p| p["in"] == "path") {
            let placeholder = format!("{{{}}}", parameter["name"].as_str().unwrap_or_default());
            if !name.contains(&placeholder) {
                problems.push(format!("{name}: path parameter {placeholder} is not in the path"));
            }
        }
        if !parameters.contains(&json!({ "$ref": "#/components/parameters/ApiVersion" })) {
            problems.push(format!("{name}: no X-Supabase-Api-Version parameter"));
        }
        if NO_CLIENT_ERRORS.contains(&name.as_str()) {
            // The API version header only picks the format of errors it cannot have.
            if parameters.len() > 1 || operation.get("requestBody").is_some() {
                problems.push(format!("{name}: takes input, so it must document its 4xx errors"));
            }
        } else if client_errors == 0 && !ERRORS_IN_REDIRECT.contains(&name.as_str()) {
            problems.push(format!("{name}: no 4xx response with ErrorBody"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rate_limited_operations_document_429_with_retry_after() {
    let doc = document();
    let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
    for (path, method) in [
        ("/token", "post"),
        ("/refresh", "post"),
        ("/signup", "post"),
        ("/user", "put"),
        ("/verify", "post"),
        ("/authorize", "get"),
        ("/user/identities/authorize", "get"),
    ] {
        let response = resolve(&doc, &responses(path, method)["429"]).clone();
        assert!(
            response["headers"]["Retry-After"].is_object(),
            "{method} {path}: {response}"
        );
        assert!(is_error_body(&doc, &response));
    }
    for (path, method) in [("/user", "get"), ("/health", "get"), ("/admin/users", "get")] {
        assert!(
            responses(path, method).get("429").is_none(),
            "{method} {path} is not limited"
        );
    }
}

#[test]
fn the_error_schema_describes_all_three_gotrue_formats() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let variants: Vec<&str> = schemas["ErrorBody"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        variants,
        [
            "#/components/schemas/LegacyError",
            "#/components/schemas/VersionedError",
            "#/components/schemas/OAuthError"
        ]
    );
    // What tells the legacy and versioned shapes apart for `oneOf`.
    assert_eq!(schemas["LegacyError"]["properties"]["code"]["type"], "integer");
    assert_eq!(schemas["VersionedError"]["properties"]["code"]["type"], "string");
}

/// The forms in Swagger UI start from these examples.
#[test]
fn sign_up_and_password_grant_have_examples() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for name in ["SignupParams", "TokenParams"] {
        let example = &schemas[name]["example"];
        assert!(
            example["email"].is_string() && example["password"].is_string(),
            "{name}: {example}"
        );
    }
    let grant_type = doc["paths"]["/token"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "grant_type")
        .unwrap();
    assert_eq!(grant_type["example"], "password");
}

#[tokio::test]
async fn docs_serve_swagger_ui_on_this_document() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers()["location"], "/docs/");
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let initializer = app.get("/docs/swagger-initializer.js").await.text().await.unwrap();
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    let served: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(served, document());
}

/// Swagger UI resolves the relative server `/auth/v1` against the page, so "Try it out" calls
/// `/auth/v1<path>`: every documented operation must be routed there (not the router's 404
/// or 405, whatever the handler then says about the empty request).
#[tokio::test]
async fn every_documented_operation_is_served_under_the_documented_server() {
    let app = TestApp::spawn().await;
    let doc = document();
    let server = doc["servers"][0]["url"].as_str().unwrap();
    assert_eq!(server, "/auth/v1");
    for (name, _) in operations(&doc) {
        let (status, code) = call(&app, &name).await;
        assert!(
            code != "not_found" && code != "method_not_allowed",
            "{name} is not routed under {server}: {status} {code}"
        );
    }
}

/// Swagger UI shows each error response's example: its `code` must be that response's status.
#[test]
fn error_examples_carry_their_own_status() {
    let doc = document();
    for (name, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            let Ok(status) = status.parse::<u16>() else { continue };
            if status < 400 {
                continue;
            }
            let example = &resolve(&doc, response)["content"]["application/json"]["example"];
            assert_eq!(example["code"], status, "{name} {status}: {example}");
            assert!(example["error_code"].is_string(), "{name} {status}: {example}");
        }
    }
}
