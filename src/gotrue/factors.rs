//! Which of GoTrue's MFA factors Latchkey can hold: TOTP factors whose secret it can read.
//! The others cannot be checked here, so importing them would be a lie either way: as
//! verified factors they would lock their users out of aal2, and dropping them silently would
//! leave an account protected by less than its owner set up. `import-gotrue` leaves them in
//! GoTrue's tables; a verified one stops the import unless the operator accepts that with
//! `--skip-unusable-factors`.

use serde::Deserialize;
use serde_json::Value;

use crate::auth::mfa::totp;

/// Why Latchkey cannot hold a factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Phone (SMS/WhatsApp) factors: Latchkey has no phone MFA.
    Phone,
    /// WebAuthn (passkey) factors: Latchkey has no WebAuthn.
    WebAuthn,
    /// The TOTP secret is encrypted by GoTrue's `GOTRUE_SECURITY_DB_ENCRYPTION_*`, whose keys
    /// Latchkey does not have.
    Encrypted,
    /// The TOTP secret is missing, or not base32 of at least 128 bits (or the type is unknown).
    Unreadable,
}

impl Unusable {
    /// How the staging table and the report name the reason.
    pub fn code(self) -> &'static str {
        match self {
            Unusable::Phone => "phone",
            Unusable::WebAuthn => "webauthn",
            Unusable::Encrypted => "encrypted",
            Unusable::Unreadable => "unreadable",
        }
    }

    /// The words the report uses for a reason code.
    pub fn describe(code: &str) -> &'static str {
        match code {
            "phone" => "phone factors (Latchkey has no phone MFA)",
            "webauthn" => "WebAuthn factors (Latchkey has no WebAuthn)",
            "encrypted" => {
                "TOTP factors whose secret GoTrue's database encryption (GOTRUE_SECURITY_DB_ENCRYPTION_*) hides"
            }
            _ => "factors without a TOTP secret Latchkey can read",
        }
    }
}

#[derive(Deserialize)]
struct FactorFields {
    factor_type: Option<String>,
    secret: Option<String>,
}

/// `None` when Latchkey can check codes of the factor `row` (a row of GoTrue's
/// `mfa_factors` as JSON).
pub fn unusable(row: &Value) -> Option<Unusable> {
    let Ok(fields) = FactorFields::deserialize(row) else {
        return Some(Unusable::Unreadable);
    };
    match fields.factor_type.as_deref() {
        Some("totp") => {}
        Some("phone") => return Some(Unusable::Phone),
        Some("webauthn") => return Some(Unusable::WebAuthn),
        _ => return Some(Unusable::Unreadable),
    }
    match fields.secret.as_deref() {
        Some(secret) if totp::is_usable_secret(secret) => None,
        Some(secret) if is_encrypted(secret) => Some(Unusable::Encrypted),
        _ => Some(Unusable::Unreadable),
    }
}

/// GoTrue's `crypto.ParseEncryptedString`: a JSON object naming its key and algorithm.
fn is_encrypted(secret: &str) -> bool {
    secret.starts_with('{')
        && serde_json::from_str::<Value>(secret).is_ok_and(|v| v.get("key_id").is_some() && v.get("alg").is_some())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_totp_factors_with_a_readable_secret_are_usable() {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let encrypted = r#"{"key_id":"k1","alg":"aes-gcm-hkdf","data":"AAAA","nonce":"AAAAAAAAAAAAAAAA"}"#;
        let cases = [
            (json!({"factor_type": "totp", "secret": secret}), None),
            (json!({"factor_type": "totp", "secret": secret.to_lowercase()}), None),
            (
                json!({"factor_type": "totp", "secret": encrypted}),
                Some(Unusable::Encrypted),
            ),
            (
                json!({"factor_type": "totp", "secret": "{not json"}),
                Some(Unusable::Unreadable),
            ),
            (
                json!({"factor_type": "totp", "secret": "JBSWY3DPEHPK3PXP"}),
                Some(Unusable::Unreadable),
            ),
            (
                json!({"factor_type": "totp", "secret": null}),
                Some(Unusable::Unreadable),
            ),
            (json!({"factor_type": "totp"}), Some(Unusable::Unreadable)),
            (json!({"factor_type": "phone", "secret": secret}), Some(Unusable::Phone)),
            (json!({"factor_type": "webauthn"}), Some(Unusable::WebAuthn)),
            (json!({"factor_type": "something new"}), Some(Unusable::Unreadable)),
            (json!({"factor_type": 7, "secret": secret}), Some(Unusable::Unreadable)),
        ];
        for (row, expected) in cases {
            assert_eq!(unusable(&row), expected, "{row}");
        }
    }
}
