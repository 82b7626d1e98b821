use latchkey::sms::{Channel, SmsError};

use super::{NUMBER, message, refusal, sender};
use crate::fake_sms::{FakeSms, Mode, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_VERIFY_SERVICE_SID};

#[tokio::test]
async fn twilio_verify_starts_a_verification_and_checks_the_code_it_made() {
    let fake = FakeSms::start().await;
    let verify = sender(&fake, "twilio_verify", &[]);
    assert!(verify.checks_codes_itself() && verify.supports(Channel::Whatsapp));
    let id = verify
        .send(&message("ignored", "ignored", Channel::Whatsapp))
        .await
        .unwrap();
    assert_eq!(id, "VE0123456789abcdef0123456789abcdef");
    let request = fake.last();
    assert_eq!(
        request.path,
        format!("/v2/Services/{TWILIO_VERIFY_SERVICE_SID}/Verifications")
    );
    assert_eq!(
        request.basic_auth(),
        Some((TWILIO_ACCOUNT_SID.into(), TWILIO_AUTH_TOKEN.into()))
    );
    assert_eq!(
        request.field("To"),
        format!("+{NUMBER}"),
        "no whatsapp: prefix with Verify"
    );
    assert_eq!(request.field("Channel"), "whatsapp");
    assert_eq!(request.form.len(), 2, "no text: Twilio writes it");

    let code = fake.code_for(NUMBER).unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(!verify.check_code(NUMBER, wrong).await.unwrap(), "a wrong code");
    let request = fake.last();
    assert_eq!(
        request.path,
        format!("/v2/Services/{TWILIO_VERIFY_SERVICE_SID}/VerificationCheck")
    );
    assert_eq!(
        (request.field("To"), request.field("Code")),
        (format!("+{NUMBER}").as_str(), wrong)
    );
    assert!(verify.check_code(NUMBER, &code).await.unwrap(), "the right code");
    assert!(
        !verify.check_code(NUMBER, &code).await.unwrap(),
        "used once: Twilio answers 404 then"
    );
}

#[tokio::test]
async fn twilio_verify_refusals_are_errors() {
    let fake = FakeSms::start().await;
    let said = refusal(&fake, "twilio_verify", Mode::Refuse, &[], 400).await;
    assert!(said.contains("60200"), "{said}");

    let wrong = sender(
        &fake,
        "twilio_verify",
        &[("GOTRUE_SMS_TWILIO_VERIFY_AUTH_TOKEN", "wrong")],
    );
    let err = wrong.check_code(NUMBER, "123456").await.unwrap_err();
    assert!(
        matches!(err, SmsError::Refused { status: 401, .. }),
        "a refused check is not a wrong code: {err:?}"
    );
}
