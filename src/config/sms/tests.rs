use std::collections::HashMap;

use secrecy::ExposeSecret;

use super::*;
use crate::config::Config;

fn config(pairs: &[(&str, &str)]) -> Result<SmsConfig, ConfigError> {
    let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(vars).map(|c| c.sms)
}

const TWILIO: [(&str, &str); 4] = [
    ("GOTRUE_SMS_PROVIDER", "twilio"),
    ("GOTRUE_SMS_TWILIO_ACCOUNT_SID", "AC123"),
    ("GOTRUE_SMS_TWILIO_AUTH_TOKEN", "token"),
    ("GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID", "MG456"),
];

#[test]
fn defaults_are_gotrues() {
    let c = config(&[]).unwrap();
    assert!(!c.enabled && !c.autoconfirm);
    assert_eq!(c.otp_exp, Duration::from_secs(60));
    assert_eq!(c.otp_length, 6);
    assert_eq!(c.max_frequency, Duration::from_secs(60));
    assert_eq!(c.template, "Your code is {{ .Code }}");
    assert!(c.test_otp.0.is_empty() && c.test_otp_valid_until.is_none());
    assert!(c.provider.is_none() && c.provider_url.is_none());
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(c.rate_limit_sms_sent.burst, 30);
}

#[test]
fn every_variable_is_read() {
    let mut vars = TWILIO.to_vec();
    vars.extend([
        ("GOTRUE_EXTERNAL_PHONE_ENABLED", "true"),
        ("GOTRUE_SMS_AUTOCONFIRM", "true"),
        ("GOTRUE_SMS_OTP_EXP", "120"),
        ("GOTRUE_SMS_OTP_LENGTH", "8"),
        ("GOTRUE_SMS_MAX_FREQUENCY", "5s"),
        ("GOTRUE_SMS_TEMPLATE", "Code: {{ .Code }}"),
        ("GOTRUE_SMS_TEST_OTP", "+1 555 0100:123456, 4477009:000000"),
        ("GOTRUE_SMS_TEST_OTP_VALID_UNTIL", "2030-01-31T00:00:00Z"),
        ("GOTRUE_SMS_TWILIO_CONTENT_SID", "HX789"),
        ("GOTRUE_RATE_LIMIT_SMS_SENT", "5"),
        ("LATCHKEY_SMS_PROVIDER_URL", "http://127.0.0.1:9/"),
        ("GOTRUE_INTERNAL_HTTP_TIMEOUT", "2s"),
    ]);
    let c = config(&vars).unwrap();
    assert!(c.enabled && c.autoconfirm);
    assert_eq!(c.otp_exp, Duration::from_secs(120));
    assert_eq!(c.otp_length, 8);
    assert_eq!(c.max_frequency, Duration::from_secs(5));
    assert_eq!(c.template, "Code: {{ .Code }}");
    assert_eq!(c.test_otp.0.get("15550100").map(String::as_str), Some("123456"));
    assert_eq!(c.test_otp.0.get("4477009").map(String::as_str), Some("000000"));
    let shown = format!("{c:?}");
    assert!(!shown.contains("123456") && !shown.contains("15550100"), "{shown}");
    assert_eq!(c.rate_limit_sms_sent.burst, 5);
    assert_eq!(c.provider_url.unwrap().as_str(), "http://127.0.0.1:9/");
    assert_eq!(c.timeout, Duration::from_secs(2));
    let Some(SmsProvider::Twilio {
        account_sid,
        auth_token,
        message_service_sid,
        content_sid,
    }) = c.provider
    else {
        panic!("twilio")
    };
    assert_eq!(
        (
            account_sid.as_str(),
            auth_token.expose_secret(),
            message_service_sid.as_str()
        ),
        ("AC123", "token", "MG456")
    );
    assert_eq!(content_sid.as_deref(), Some("HX789"));
}

#[test]
fn test_codes_stop_at_their_deadline() {
    let c = config(&[
        ("GOTRUE_SMS_TEST_OTP", "15550100:123456"),
        ("GOTRUE_SMS_TEST_OTP_VALID_UNTIL", "2030-01-31T00:00:00Z"),
    ])
    .unwrap();
    let before = DateTime::parse_from_rfc3339("2030-01-30T23:59:59Z").unwrap().to_utc();
    let after = DateTime::parse_from_rfc3339("2030-01-31T00:00:00Z").unwrap().to_utc();
    assert_eq!(c.test_otp_for("15550100", before), Some("123456"));
    assert_eq!(c.test_otp_for("15550100", after), None);
    assert_eq!(c.test_otp_for("15550101", before), None);
}

#[test]
fn each_provider_needs_its_credentials() {
    let providers: [(&str, &[&str]); 5] = [
        (
            "twilio",
            &[
                "GOTRUE_SMS_TWILIO_ACCOUNT_SID",
                "GOTRUE_SMS_TWILIO_AUTH_TOKEN",
                "GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID",
            ],
        ),
        (
            "twilio_verify",
            &[
                "GOTRUE_SMS_TWILIO_VERIFY_ACCOUNT_SID",
                "GOTRUE_SMS_TWILIO_VERIFY_AUTH_TOKEN",
                "GOTRUE_SMS_TWILIO_VERIFY_MESSAGE_SERVICE_SID",
            ],
        ),
        (
            "messagebird",
            &["GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY", "GOTRUE_SMS_MESSAGEBIRD_ORIGINATOR"],
        ),
        (
            "textlocal",
            &["GOTRUE_SMS_TEXTLOCAL_API_KEY", "GOTRUE_SMS_TEXTLOCAL_SENDER"],
        ),
        (
            "vonage",
            &[
                "GOTRUE_SMS_VONAGE_API_KEY",
                "GOTRUE_SMS_VONAGE_API_SECRET",
                "GOTRUE_SMS_VONAGE_FROM",
            ],
        ),
    ];
    for (name, variables) in providers {
        let all: Vec<(&str, &str)> = std::iter::once(("GOTRUE_SMS_PROVIDER", name))
            .chain(variables.iter().map(|var| (*var, *var)))
            .collect();
        let provider = config(&all).unwrap().provider.unwrap();
        assert_eq!(provider.name(), name);
        let shown = format!("{provider:?}");
        let secrets = ["AUTH_TOKEN", "ACCESS_KEY", "TEXTLOCAL_API_KEY", "API_SECRET"];
        for var in variables.iter().filter(|var| secrets.iter().any(|s| var.ends_with(s))) {
            assert!(!shown.contains(var), "{shown}");
        }
        for missing in variables {
            let without: Vec<(&str, &str)> = all.iter().copied().filter(|(var, _)| var != missing).collect();
            let err = config(&without).unwrap_err();
            assert_eq!(err.var, *missing, "{err}");
        }
    }
}

#[test]
fn bad_values_name_the_variable() {
    for (var, value) in [
        ("GOTRUE_EXTERNAL_PHONE_ENABLED", "perhaps"),
        ("GOTRUE_SMS_AUTOCONFIRM", "2"),
        ("GOTRUE_SMS_OTP_EXP", "0"),
        ("GOTRUE_SMS_OTP_EXP", "soon"),
        ("GOTRUE_SMS_OTP_LENGTH", "5"),
        ("GOTRUE_SMS_OTP_LENGTH", "11"),
        ("GOTRUE_SMS_MAX_FREQUENCY", "-1"),
        ("GOTRUE_SMS_TEMPLATE", "Your code is {{ .Code"),
        ("GOTRUE_SMS_TEST_OTP", "15550100"),
        ("GOTRUE_SMS_TEST_OTP", "+1 555 0100:abc"),
        ("GOTRUE_SMS_TEST_OTP", "phone:123456"),
        ("GOTRUE_SMS_TEST_OTP_VALID_UNTIL", "tomorrow"),
        ("GOTRUE_SMS_PROVIDER", "carrier-pigeon"),
        ("LATCHKEY_SMS_PROVIDER_URL", "ftp://127.0.0.1/"),
        ("LATCHKEY_SMS_PROVIDER_URL", "not a url"),
        ("GOTRUE_INTERNAL_HTTP_TIMEOUT", "0"),
        ("GOTRUE_RATE_LIMIT_SMS_SENT", "many"),
    ] {
        let err = config(&[(var, value)]).unwrap_err();
        assert_eq!(err.var, var, "{value:?}: {err}");
    }
}

#[test]
fn phone_variables_are_no_longer_reported_as_unsupported() {
    let mut vars: Vec<(&str, &str)> = TWILIO.to_vec();
    vars.extend([
        ("GOTRUE_EXTERNAL_PHONE_ENABLED", "true"),
        ("GOTRUE_SMS_AUTOCONFIRM", "true"),
        ("GOTRUE_SMS_TEMPLATE", "{{ .Code }}"),
        ("GOTRUE_SMS_TEXTLOCAL_API_KEY", "k"),
        ("GOTRUE_SMS_VONAGE_FROM", "Acme"),
    ]);
    let warnings = Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        .unwrap()
        .warnings;
    assert!(warnings.is_empty(), "{warnings:#?}");
}
