//! What an attacker or a broken provider could do to the gateways.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey::sms::{Channel, SmsError};

use super::{NUMBER, message, sender};
use crate::fake_sms::{FakeSms, Mode, TWILIO_ACCOUNT_SID};

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
    let _guard = tracing::subscriber::set_default(subscriber);

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
