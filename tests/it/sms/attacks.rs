//! What an attacker or a broken provider could do to the gateways.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey::sms::{Channel, SmsError};
use serde_json::{Value, json};

use super::{NUMBER, message, sender};
use crate::fake_sms::{FakeSms, Mode, TWILIO_ACCOUNT_SID};
use crate::helpers::random_email;
use crate::mfa::{PASSWORD, access};

#[tokio::test]
async fn a_provider_that_hangs_is_cut_off_by_the_timeout() {
    let fake = FakeSms::start().await;
    fake.set_mode(Mode::Hang);
    for provider in ["twilio", "twilio_verify", "messagebird", "textlocal", "vonage"] {
        let gateway = sender(&fake, provider, &[("GOTRUE_INTERNAL_HTTP_TIMEOUT", "500ms")]);
        let started = Instant::now();
        let err = gateway
            .send(&message("Your code is 123456", "123456", Channel::Sms))
            .await
            .unwrap_err();
        assert!(matches!(err, SmsError::Unreachable { .. }), "{provider}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{provider}: {:?}",
            started.elapsed()
        );
    }
    let verify = sender(&fake, "twilio_verify", &[("GOTRUE_INTERNAL_HTTP_TIMEOUT", "500ms")]);
    let err = verify.check_code(NUMBER, "123456").await.unwrap_err();
    assert!(matches!(err, SmsError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_provider_that_is_down_is_an_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let fake = FakeSms::start().await;
    let gateway = sender(&fake, "twilio", &[("LATCHKEY_SMS_PROVIDER_URL", &url)]);
    let err = gateway
        .send(&message("Your code is 123456", "123456", Channel::Sms))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SmsError::Unreachable { provider: "twilio", .. }),
        "{err:?}"
    );
}

/// `LATCHKEY_SMS_PROVIDER_URL` moves the host (and may add a prefix) but the provider's own
/// path always follows; a configured SID cannot break out of its path segment.
#[tokio::test]
async fn the_provider_url_changes_only_the_base() {
    let fake = FakeSms::start().await;
    let prefixed = format!("{}/regional/proxy/?ignored=1#too", fake.url);
    let gateway = sender(&fake, "twilio", &[("LATCHKEY_SMS_PROVIDER_URL", &prefixed)]);
    let _ = gateway
        .send(&message("Your code is 123456", "123456", Channel::Sms))
        .await;
    assert_eq!(
        fake.last().path,
        format!("/regional/proxy/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json")
    );

    let sneaky = sender(
        &fake,
        "twilio",
        &[("GOTRUE_SMS_TWILIO_ACCOUNT_SID", "../../../sms/json?x=")],
    );
    let _ = sneaky
        .send(&message("Your code is 123456", "123456", Channel::Sms))
        .await;
    let path = fake.last().path;
    assert!(
        path.starts_with("/2010-04-01/Accounts/") && path.ends_with("/Messages.json"),
        "{path}"
    );
    assert_eq!(path.matches('/').count(), 4, "{path}");
}

/// A writer the test's log subscriber writes into.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_neither_the_code_nor_the_whole_number() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // tracing caches each call site's interest the first time it fires. While only one
    // subscriber is registered, a call site first reached on another test's thread is asked of
    // that thread's (empty) subscriber and cached as "never", so this test would miss its own
    // "sms not sent". A second registered dispatcher makes tracing ask every one of them, on
    // every thread; the rebuild settles call sites registered before that.
    let _second_dispatcher = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let fake = FakeSms::start().await;
    for provider in ["twilio", "messagebird", "textlocal", "vonage"] {
        let gateway = sender(&fake, provider, &[]);
        fake.set_mode(Mode::Accept);
        gateway
            .send(&message("Your code is 918273", "918273", Channel::Sms))
            .await
            .unwrap();
        fake.set_mode(Mode::Refuse);
        gateway
            .send(&message("Your code is 918273", "918273", Channel::Sms))
            .await
            .unwrap_err();
    }
    fake.set_mode(Mode::Accept);
    let verify = sender(&fake, "twilio_verify", &[]);
    verify.send(&message("", "", Channel::Sms)).await.unwrap();
    let code = fake.code_for(NUMBER).unwrap();
    assert!(verify.check_code(NUMBER, &code).await.unwrap());

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sms sent") && logs.contains("sms not sent"), "{logs}");
    assert!(logs.contains("+********123"), "the masked number: {logs}");
    for secret in [NUMBER, "918273", code.as_str(), "Your code is"] {
        assert!(!logs.contains(secret), "{secret} in {logs}");
    }
}

/// Through the real binary, whose log lines are JSON on stderr: the code of a phone factor's
/// challenge (texted by Twilio) never appears in them, and the number only masked.
#[tokio::test]
async fn the_code_and_the_number_stay_out_of_the_logs() {
    let fake = FakeSms::start().await;
    let database = crate::helpers::fresh_database().await;
    let mut vars = fake.vars("twilio");
    vars.extend([
        ("GOTRUE_MFA_PHONE_ENROLL_ENABLED".into(), "true".into()),
        ("GOTRUE_MFA_PHONE_VERIFY_ENABLED".into(), "true".into()),
        ("GOTRUE_MAILER_AUTOCONFIRM".into(), "true".into()),
        ("GOTRUE_LOG_LEVEL".into(), "debug".into()),
        // Ten digits: no timestamp or duration in a log line can hold it by chance.
        ("GOTRUE_MFA_PHONE_OTP_LENGTH".into(), "10".into()),
    ]);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = crate::binary::Server::start(database.url(), &borrowed);
    let client = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(server.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token.to_owned());
        }
        request.send()
    };
    let session: Value = post(
        "/signup",
        None,
        json!({ "email": random_email(), "password": PASSWORD }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = access(&session);
    let factor: Value = post(
        "/factors",
        Some(token),
        json!({ "factor_type": "phone", "phone": "+1 555 555 0123" }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let factor = factor["id"].as_str().unwrap();
    let challenge: Value = post(&format!("/factors/{factor}/challenge"), Some(token), json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = fake.code_for(NUMBER).unwrap();
    let body = json!({ "challenge_id": challenge["id"], "code": code });
    let verified = post(&format!("/factors/{factor}/verify"), Some(token), body)
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    server.wait_for_line(|line| line.contains("sms sent")).await;
    let logs = server.stderr().join("\n");
    assert!(logs.contains("+********123"), "{logs}");
    for secret in [NUMBER, code.as_str(), "Your code is"] {
        assert!(!logs.contains(secret), "{secret} in the logs: {logs}");
    }
}
