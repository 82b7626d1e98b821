use latchkey::sms::Channel;

use super::{NUMBER, message, refusal, sender};
use crate::fake_sms::{FakeSms, Mode, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_MESSAGE_SERVICE_SID};

#[tokio::test]
async fn twilio_sends_gotrues_form_with_basic_auth() {
    let fake = FakeSms::start().await;
    let twilio = sender(&fake, "twilio", &[]);
    let id = twilio
        .send(&message("Your code is 123456", "123456", Channel::Sms))
        .await
        .unwrap();
    assert_eq!(id, "SM0123456789abcdef0123456789abcdef");
    let request = fake.last();
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(
        request.basic_auth(),
        Some((TWILIO_ACCOUNT_SID.into(), TWILIO_AUTH_TOKEN.into()))
    );
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.field("To"), format!("+{NUMBER}"));
    assert_eq!(request.field("From"), TWILIO_MESSAGE_SERVICE_SID);
    assert_eq!(request.field("Channel"), "sms");
    assert_eq!(request.field("Body"), "Your code is 123456");
    assert_eq!(request.form.len(), 4, "{:?}", request.form);
    assert_eq!(fake.code_for(NUMBER).as_deref(), Some("123456"));
    assert!(twilio.supports(Channel::Whatsapp) && !twilio.checks_codes_itself());
}

#[tokio::test]
async fn twilio_whatsapp_prefixes_the_numbers_and_uses_the_content_template() {
    let fake = FakeSms::start().await;
    // A sending number (not a service SID) gets the prefix too.
    let twilio = sender(
        &fake,
        "twilio",
        &[("GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID", "+1 555 000 1111")],
    );
    twilio
        .send(&message("Your code is 654321", "654321", Channel::Whatsapp))
        .await
        .unwrap();
    let request = fake.last();
    assert_eq!(request.field("To"), format!("whatsapp:+{NUMBER}"));
    assert_eq!(request.field("From"), "whatsapp:+1 555 000 1111");
    assert_eq!(request.field("Channel"), "whatsapp");
    assert_eq!(request.field("Body"), "Your code is 654321");

    let templated = sender(&fake, "twilio", &[("GOTRUE_SMS_TWILIO_CONTENT_SID", "HX0123")]);
    templated
        .send(&message("Your code is 777888", "777888", Channel::Whatsapp))
        .await
        .unwrap();
    let request = fake.last();
    assert_eq!(
        request.field("From"),
        TWILIO_MESSAGE_SERVICE_SID,
        "a service SID is not prefixed"
    );
    assert_eq!(request.field("ContentSid"), "HX0123");
    assert_eq!(request.field("ContentVariables"), r#"{"1":"777888"}"#);
    assert!(!request.form.contains_key("Body"));
    assert_eq!(fake.code_for(NUMBER).as_deref(), Some("777888"));

    // The content template is for WhatsApp only: an SMS still carries the text.
    templated
        .send(&message("Your code is 111222", "111222", Channel::Sms))
        .await
        .unwrap();
    assert_eq!(fake.last().field("Body"), "Your code is 111222");
}

#[tokio::test]
async fn twilio_refusals_are_errors_with_the_number_masked() {
    let fake = FakeSms::start().await;
    let said = refusal(&fake, "twilio", Mode::Refuse, &[], 400).await;
    assert!(said.contains("21211") && said.contains("+********123"), "{said}");
    let said = refusal(
        &fake,
        "twilio",
        Mode::Accept,
        &[("GOTRUE_SMS_TWILIO_AUTH_TOKEN", "wrong")],
        401,
    )
    .await;
    assert!(said.contains("20003"), "{said}");
}
