use latchkey::sms::Channel;

use super::{NUMBER, message, refusal, sender};
use crate::fake_sms::{FakeSms, Mode, TEXTLOCAL_API_KEY};

#[tokio::test]
async fn textlocal_sends_gotrues_form_with_the_key_in_it() {
    let fake = FakeSms::start().await;
    let textlocal = sender(&fake, "textlocal", &[]);
    let id = textlocal
        .send(&message("Your code is 135790", "135790", Channel::Sms))
        .await
        .unwrap();
    assert_eq!(id, "1151346216");
    let request = fake.last();
    assert_eq!(request.path, "/send");
    assert_eq!(request.authorization, None);
    assert_eq!(request.field("apikey"), TEXTLOCAL_API_KEY);
    assert_eq!(request.field("sender"), "LTCHKY");
    assert_eq!(request.field("message"), "Your code is 135790");
    assert_eq!(request.field("numbers"), NUMBER);
    assert_eq!(request.form.len(), 4);
    assert_eq!(fake.code_for(NUMBER).as_deref(), Some("135790"));
    assert!(!textlocal.supports(Channel::Whatsapp));
}

#[tokio::test]
async fn textlocal_failures_in_a_200_are_errors_without_the_text() {
    let fake = FakeSms::start().await;
    // GoTrue quotes the message (and so the code) in this error; the helper checks we do not.
    let said = refusal(&fake, "textlocal", Mode::Refuse, &[], 200).await;
    assert!(said.contains("No recipients specified"), "{said}");
    let said = refusal(
        &fake,
        "textlocal",
        Mode::Accept,
        &[("GOTRUE_SMS_TEXTLOCAL_API_KEY", "wrong")],
        200,
    )
    .await;
    assert!(said.contains("Invalid login details"), "{said}");
}
