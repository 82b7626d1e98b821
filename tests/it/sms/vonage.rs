use latchkey::sms::Channel;

use super::{NUMBER, message, refusal, sender};
use crate::fake_sms::{FakeSms, Mode, VONAGE_API_KEY, VONAGE_API_SECRET};

#[tokio::test]
async fn vonage_sends_gotrues_form_and_marks_unicode() {
    let fake = FakeSms::start().await;
    let vonage = sender(&fake, "vonage", &[]);
    let id = vonage
        .send(&message("Your code is 864200", "864200", Channel::Sms))
        .await
        .unwrap();
    assert_eq!(id, "0A0000000123ABCD1");
    let request = fake.last();
    assert_eq!(request.path, "/sms/json");
    assert_eq!(request.authorization, None);
    assert_eq!(
        (request.field("api_key"), request.field("api_secret")),
        (VONAGE_API_KEY, VONAGE_API_SECRET)
    );
    assert_eq!((request.field("from"), request.field("to")), ("Latchkey", NUMBER));
    assert_eq!(request.field("text"), "Your code is 864200");
    assert!(!request.form.contains_key("type"), "ASCII text: no type");
    assert_eq!(fake.code_for(NUMBER).as_deref(), Some("864200"));

    vonage
        .send(&message("Ihr Code: 864201 – danke", "864201", Channel::Sms))
        .await
        .unwrap();
    assert_eq!(fake.last().field("type"), "unicode");
    assert!(!vonage.supports(Channel::Whatsapp));
}

#[tokio::test]
async fn vonage_statuses_in_a_200_are_errors() {
    let fake = FakeSms::start().await;
    let said = refusal(&fake, "vonage", Mode::Refuse, &[], 200).await;
    assert!(said.contains("status 3"), "{said}");
    let said = refusal(
        &fake,
        "vonage",
        Mode::Accept,
        &[("GOTRUE_SMS_VONAGE_API_SECRET", "wrong")],
        200,
    )
    .await;
    assert!(said.contains("Bad Credentials"), "{said}");
}
