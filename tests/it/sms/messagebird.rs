use latchkey::sms::{Channel, SmsError};

use super::{NUMBER, message, refusal, sender};
use crate::fake_sms::{FakeSms, MESSAGEBIRD_ACCESS_KEY, Mode};

#[tokio::test]
async fn messagebird_sends_gotrues_form_with_its_access_key() {
    let fake = FakeSms::start().await;
    let messagebird = sender(&fake, "messagebird", &[]);
    let id = messagebird
        .send(&message("Votre code : 246810 ✓", "246810", Channel::Sms))
        .await
        .unwrap();
    assert_eq!(id, "e8077d803532c0b5937c639b60216938");
    let request = fake.last();
    assert_eq!(request.path, "/messages");
    assert_eq!(
        request.authorization,
        Some(format!("AccessKey {MESSAGEBIRD_ACCESS_KEY}"))
    );
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.field("originator"), "Latchkey");
    assert_eq!(request.field("body"), "Votre code : 246810 ✓");
    assert_eq!(request.field("recipients"), NUMBER, "no + for MessageBird");
    assert_eq!((request.field("type"), request.field("datacoding")), ("sms", "unicode"));
    assert_eq!(fake.code_for(NUMBER).as_deref(), Some("246810"));
    assert!(!messagebird.supports(Channel::Whatsapp));
}

#[tokio::test]
async fn messagebird_refusals_are_errors() {
    let fake = FakeSms::start().await;
    let said = refusal(&fake, "messagebird", Mode::Refuse, &[], 422).await;
    assert!(said.contains("no (correct) recipients found"), "{said}");
    let wrong_key = [("GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY", "wrong")];
    let said = refusal(&fake, "messagebird", Mode::Accept, &wrong_key, 401).await;
    assert!(said.contains("incorrect access_key"), "{said}");

    let err = sender(&fake, "messagebird", &[])
        .send(&message("x", "x", Channel::Whatsapp))
        .await
        .unwrap_err();
    assert!(matches!(err, SmsError::UnsupportedChannel { .. }), "{err:?}");
    assert_eq!(fake.received().len(), 2, "nothing sent on an unsupported channel");
}
