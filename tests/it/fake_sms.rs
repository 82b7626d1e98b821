//! One fake of the five SMS providers' HTTP APIs on 127.0.0.1:0, the endpoints GoTrue calls
//! answered in each provider's own shapes: Twilio's Messages.json, Twilio Verify's
//! Verifications and VerificationCheck, MessageBird's /messages, Textlocal's /send, Vonage's
//! /sms/json. It checks the credentials as the provider would (a wrong one gets the
//! provider's authentication error), records every request, keeps the code each number was
//! sent, and can be told to refuse (the provider's "bad number" answer) or to hang. Latchkey
//! reaches it through `LATCHKEY_SMS_PROVIDER_URL`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

pub const TWILIO_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_AUTH_TOKEN: &str = "fake-twilio-auth-token";
pub const TWILIO_MESSAGE_SERVICE_SID: &str = "MG0123456789abcdef0123456789abcdef";
pub const TWILIO_VERIFY_SERVICE_SID: &str = "VA0123456789abcdef0123456789abcdef";
pub const MESSAGEBIRD_ACCESS_KEY: &str = "fake-messagebird-access-key";
pub const TEXTLOCAL_API_KEY: &str = "fake-textlocal-api-key";
pub const VONAGE_API_KEY: &str = "fakevonagekey";
pub const VONAGE_API_SECRET: &str = "fake-vonage-secret";

/// How the fake answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// The provider's answer to an invalid recipient.
    Refuse,
    /// Never answers.
    Hang,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub form: HashMap<String, String>,
}

impl Received {
    pub fn field(&self, name: &str) -> &str {
        self.form.get(name).map_or("", String::as_str)
    }

    /// The user and password of HTTP Basic authentication.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let encoded = self.authorization.as_deref()?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    }
}

struct Inner {
    mode: Mode,
    received: Vec<Received>,
    /// The last code each number (digits, no `+`) was sent.
    codes: HashMap<String, String>,
    /// Twilio Verify's pending verifications: number → code.
    pending: HashMap<String, String>,
}

#[derive(Clone)]
pub struct FakeSms {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSms {
    pub async fn start() -> FakeSms {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeSms {
            url: format!("http://{}", listener.local_addr().unwrap()),
            inner: Arc::new(Mutex::new(Inner {
                mode: Mode::Accept,
                received: Vec::new(),
                codes: HashMap::new(),
                pending: HashMap::new(),
            })),
        };
        let app = Router::new().fallback(serve).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn last(&self) -> Received {
        self.received().pop().expect("the fake received a request")
    }

    /// The last code sent to `number` (digits, no `+`), by any provider.
    pub fn code_for(&self, number: &str) -> Option<String> {
        self.inner.lock().unwrap().codes.get(number).cloned()
    }

    /// The variables that make `provider` send through this fake with the right credentials.
    pub fn vars(&self, provider: &str) -> Vec<(String, String)> {
        let mut vars: Vec<(&str, &str)> = vec![("GOTRUE_SMS_PROVIDER", provider)];
        vars.extend(match provider {
            "twilio" => vec![
                ("GOTRUE_SMS_TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID),
                ("GOTRUE_SMS_TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN),
                ("GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID", TWILIO_MESSAGE_SERVICE_SID),
            ],
            "twilio_verify" => vec![
                ("GOTRUE_SMS_TWILIO_VERIFY_ACCOUNT_SID", TWILIO_ACCOUNT_SID),
                ("GOTRUE_SMS_TWILIO_VERIFY_AUTH_TOKEN", TWILIO_AUTH_TOKEN),
                (
                    "GOTRUE_SMS_TWILIO_VERIFY_MESSAGE_SERVICE_SID",
                    TWILIO_VERIFY_SERVICE_SID,
                ),
            ],
            "messagebird" => vec![
                ("GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY", MESSAGEBIRD_ACCESS_KEY),
                ("GOTRUE_SMS_MESSAGEBIRD_ORIGINATOR", "Latchkey"),
            ],
            "textlocal" => vec![
                ("GOTRUE_SMS_TEXTLOCAL_API_KEY", TEXTLOCAL_API_KEY),
                ("GOTRUE_SMS_TEXTLOCAL_SENDER", "LTCHKY"),
            ],
            "vonage" => vec![
                ("GOTRUE_SMS_VONAGE_API_KEY", VONAGE_API_KEY),
                ("GOTRUE_SMS_VONAGE_API_SECRET", VONAGE_API_SECRET),
                ("GOTRUE_SMS_VONAGE_FROM", "Latchkey"),
            ],
            other => panic!("no fake for {other}"),
        });
        vars.push(("LATCHKEY_SMS_PROVIDER_URL", &self.url));
        vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }
}

async fn serve(State(fake): State<FakeSms>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let received = Received {
        path: parts.uri.path().to_owned(),
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        form,
    };
    let mode = {
        let mut inner = fake.inner.lock().unwrap();
        inner.received.push(received.clone());
        inner.mode
    };
    if mode == Mode::Hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let segments: Vec<&str> = received.path.trim_start_matches('/').split('/').collect();
    match segments[..] {
        ["2010-04-01", "Accounts", account, "Messages.json"] => twilio_message(&fake, &received, account, mode),
        ["v2", "Services", service, "Verifications"] => verify_start(&fake, &received, service, mode),
        ["v2", "Services", service, "VerificationCheck"] => verify_check(&fake, &received, service),
        ["messages"] => messagebird(&fake, &received, mode),
        ["send"] => textlocal(&fake, &received, mode),
        ["sms", "json"] => vonage(&fake, &received, mode),
        _ => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    }
}

/// Twilio's error body (`{"code", "message", "more_info", "status"}`).
fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

fn twilio_authenticated(received: &Received, account: &str) -> bool {
    account == TWILIO_ACCOUNT_SID
        && received.basic_auth() == Some((TWILIO_ACCOUNT_SID.to_owned(), TWILIO_AUTH_TOKEN.to_owned()))
}

fn twilio_message(fake: &FakeSms, received: &Received, account: &str, mode: Mode) -> Response {
    if !twilio_authenticated(received, account) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let to = received.field("To").to_owned();
    if mode == Mode::Refuse {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("Invalid 'To' Phone Number: {}", to.trim_start_matches("whatsapp:")),
        );
    }
    let code = match received.form.get("ContentVariables") {
        Some(variables) => serde_json::from_str::<Value>(variables).unwrap()["1"]
            .as_str()
            .unwrap()
            .to_owned(),
        None => first_code(received.field("Body")),
    };
    remember(fake, to.trim_start_matches("whatsapp:").trim_start_matches('+'), &code);
    let body = json!({
        "sid": "SM0123456789abcdef0123456789abcdef",
        "account_sid": account,
        "to": to,
        "from": received.field("From"),
        "status": "queued",
        "error_code": null,
        "error_message": null,
        "body": received.field("Body"),
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn verify_start(fake: &FakeSms, received: &Received, service: &str, mode: Mode) -> Response {
    if !twilio_authenticated(received, TWILIO_ACCOUNT_SID) || service != TWILIO_VERIFY_SERVICE_SID {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if mode == Mode::Refuse {
        return twilio_error(StatusCode::BAD_REQUEST, 60200, "Invalid parameter `To`");
    }
    let to = received.field("To").trim_start_matches('+').to_owned();
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    fake.inner.lock().unwrap().pending.insert(to.clone(), code.clone());
    remember(fake, &to, &code);
    let body = json!({
        "sid": "VE0123456789abcdef0123456789abcdef",
        "service_sid": service,
        "account_sid": TWILIO_ACCOUNT_SID,
        "to": received.field("To"),
        "channel": received.field("Channel"),
        "status": "pending",
        "valid": false,
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Twilio Verify's check: a right code approves (and ends) the verification, a wrong one
/// leaves it pending; without a pending verification, 404 (error 20404).
fn verify_check(fake: &FakeSms, received: &Received, service: &str) -> Response {
    if !twilio_authenticated(received, TWILIO_ACCOUNT_SID) || service != TWILIO_VERIFY_SERVICE_SID {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let to = received.field("To").trim_start_matches('+').to_owned();
    let mut inner = fake.inner.lock().unwrap();
    let Some(expected) = inner.pending.get(&to).cloned() else {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource /Services/{service}/VerificationCheck was not found"),
        );
    };
    let approved = expected == received.field("Code");
    if approved {
        inner.pending.remove(&to);
    }
    let body = json!({
        "sid": "VE0123456789abcdef0123456789abcdef",
        "service_sid": service,
        "to": received.field("To"),
        "channel": "sms",
        "status": if approved { "approved" } else { "pending" },
        "valid": approved,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn messagebird(fake: &FakeSms, received: &Received, mode: Mode) -> Response {
    let error = |status: StatusCode, code: u32, description: &str, parameter: &str| {
        let body = json!({"errors": [{"code": code, "description": description, "parameter": parameter}]});
        (status, axum::Json(body)).into_response()
    };
    if received.authorization.as_deref() != Some(&format!("AccessKey {MESSAGEBIRD_ACCESS_KEY}")) {
        return error(
            StatusCode::UNAUTHORIZED,
            2,
            "Request not allowed (incorrect access_key)",
            "access_key",
        );
    }
    if mode == Mode::Refuse {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            9,
            "no (correct) recipients found",
            "recipients",
        );
    }
    remember(fake, received.field("recipients"), &first_code(received.field("body")));
    let body = json!({
        "id": "e8077d803532c0b5937c639b60216938",
        "href": "https://rest.messagebird.com/messages/e8077d803532c0b5937c639b60216938",
        "direction": "mt",
        "type": "sms",
        "originator": received.field("originator"),
        "body": received.field("body"),
        "datacoding": received.field("datacoding"),
        "recipients": {
            "totalCount": 1, "totalSentCount": 1, "totalDeliveredCount": 0, "totalDeliveryFailedCount": 0,
            "items": [{"recipient": received.field("recipients").parse::<u64>().unwrap_or(0), "status": "sent"}],
        },
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Textlocal answers 200 with `status: failure` when it refuses.
fn textlocal(fake: &FakeSms, received: &Received, mode: Mode) -> Response {
    let failure = |code: u32, message: &str| {
        axum::Json(json!({"errors": [{"code": code, "message": message}], "status": "failure"})).into_response()
    };
    if received.field("apikey") != TEXTLOCAL_API_KEY {
        return failure(3, "Invalid login details");
    }
    if mode == Mode::Refuse {
        return failure(4, "No recipients specified");
    }
    remember(fake, received.field("numbers"), &first_code(received.field("message")));
    axum::Json(json!({
        "balance": 1162, "batch_id": 123456789, "cost": 1, "num_messages": 1,
        "message": {"num_parts": 1, "sender": received.field("sender"), "content": received.field("message")},
        "receipt_url": "", "custom": "",
        "messages": [{"id": "1151346216", "recipient": received.field("numbers").parse::<u64>().unwrap_or(0)}],
        "status": "success",
    }))
    .into_response()
}

/// Vonage answers 200 with a non-zero `status` per message when it refuses.
fn vonage(fake: &FakeSms, received: &Received, mode: Mode) -> Response {
    let failure = |status: &str, text: &str| {
        axum::Json(json!({"message-count": "1", "messages": [{"status": status, "error-text": text}]})).into_response()
    };
    if received.field("api_key") != VONAGE_API_KEY || received.field("api_secret") != VONAGE_API_SECRET {
        return failure("4", "Bad Credentials");
    }
    if mode == Mode::Refuse {
        return failure("3", "Invalid Message: Missing to param");
    }
    remember(fake, received.field("to"), &first_code(received.field("text")));
    axum::Json(json!({
        "message-count": "1",
        "messages": [{
            "to": received.field("to"), "message-id": "0A0000000123ABCD1", "status": "0",
            "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "12345",
        }],
    }))
    .into_response()
}

fn remember(fake: &FakeSms, number: &str, code: &str) {
    fake.inner
        .lock()
        .unwrap()
        .codes
        .insert(number.to_owned(), code.to_owned());
}

/// The first run of 6 to 10 digits in a message: the code.
fn first_code(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| (6..=10).contains(&run.len()))
        .unwrap_or_default()
        .to_owned()
}
