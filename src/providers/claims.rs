//! What a provider says about a user, in GoTrue's shape: the identity claims
//! (`internal/api/provider/provider.go`'s `Claims`, which become `identity_data` and join
//! `user_metadata`) and the email addresses the provider lists.
//!
//! GoTrue turns its `Claims` struct into a map with `omitempty`: an empty text or a zero number
//! is left out, while `email_verified` and `phone_verified` are always there. The callback then
//! picks the email (the primary one, else the last listed) and writes it and its verified flag
//! into the claims. [`Claims`] and [`ProviderUser::new`] do the same, so every provider's
//! identity data has GoTrue's keys.

use serde_json::{Map, Value, json};

use super::ProviderUser;

/// One address the provider lists for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    /// Whether the provider vouches for it.
    pub verified: bool,
    pub primary: bool,
}

impl Email {
    /// The one address of a provider that lists a single one.
    pub fn primary(address: Option<&str>, verified: bool) -> Vec<Email> {
        address
            .filter(|a| !a.is_empty())
            .map(|address| Email {
                address: address.to_owned(),
                verified,
                primary: true,
            })
            .into_iter()
            .collect()
    }
}

/// GoTrue's identity claims, built key by key; empty values are left out.
#[derive(Debug, Clone, Default)]
pub struct Claims(Map<String, Value>);

/// The standard claims GoTrue's `Claims` knows, copied from an ID token or a userinfo answer.
pub(crate) const STANDARD_TEXT: [&str; 19] = [
    "iss",
    "sub",
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "email",
    "phone",
    "full_name",
    "avatar_url",
];

impl Claims {
    /// `iss` and `sub`; GoTrue's providers also repeat the subject as `provider_id`.
    pub fn new(issuer: &str, subject: &str) -> Claims {
        let mut claims = Claims::default();
        claims.text("iss", issuer);
        claims.text("sub", subject);
        claims.text("provider_id", subject);
        claims
    }

    /// GoTrue's generic reading of an ID token or userinfo answer (`parseGenericIDToken`):
    /// every standard claim, `aud`, `iat`, `exp`, and the verified flags (`true` or `"true"`).
    pub fn standard(raw: &Value) -> Claims {
        let mut claims = Claims::default();
        for key in STANDARD_TEXT {
            if let Some(text) = raw.get(key).and_then(Value::as_str) {
                claims.text(key, text);
            }
        }
        for key in ["iat", "exp"] {
            if let Some(number) = raw.get(key).filter(|v| v.as_f64().is_some_and(|n| n != 0.0)) {
                claims.value(key, number.clone());
            }
        }
        match raw.get("aud") {
            Some(Value::String(aud)) if !aud.is_empty() => {
                claims.value("aud", json!([aud]));
            }
            Some(Value::Array(auds)) if !auds.is_empty() => {
                claims.value("aud", json!(auds));
            }
            _ => {}
        }
        if let Some(updated_at) = raw.get("updated_at").filter(|v| !v.is_null()) {
            claims.value("updated_at", updated_at.clone());
        }
        claims.flag("email_verified", truthy(raw.get("email_verified")));
        claims.flag("phone_verified", truthy(raw.get("phone_verified")));
        claims
    }

    /// Sets `key` to `text`, unless it is empty.
    pub fn text(&mut self, key: &str, text: impl AsRef<str>) -> &mut Claims {
        let text = text.as_ref();
        if text.is_empty() {
            self.0.remove(key);
        } else {
            self.0.insert(key.to_owned(), Value::String(text.to_owned()));
        }
        self
    }

    /// Sets `key` to `value`, unless it is null.
    pub fn value(&mut self, key: &str, value: Value) -> &mut Claims {
        if !value.is_null() {
            self.0.insert(key.to_owned(), value);
        }
        self
    }

    /// A flag GoTrue keeps even when false (`email_verified`, `phone_verified`).
    pub fn flag(&mut self, key: &str, value: bool) -> &mut Claims {
        self.0.insert(key.to_owned(), Value::Bool(value));
        self
    }

    /// A provider-specific claim under `custom_claims`.
    pub fn custom(&mut self, key: &str, value: Value) -> &mut Claims {
        let custom = self
            .0
            .entry("custom_claims")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = custom {
            map.insert(key.to_owned(), value);
        }
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The claims as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    pub fn from_map(map: Map<String, Value>) -> Claims {
        Claims(map)
    }
}

/// A verified flag as providers spell it: `true`, `"true"` (LinkedIn, some IdPs), `1`.
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// The text at `path` (`["data", "me", "email"]`) of a provider's JSON, if any.
pub fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
}

impl ProviderUser {
    /// The user from their claims and addresses, the way GoTrue's callback reads them: the
    /// primary address, else the last one listed, is the user's email, and its verified flag
    /// is the claims' `email_verified`. The subject is the claims' `sub`.
    pub fn new(claims: Claims, emails: &[Email]) -> ProviderUser {
        let mut claims = claims.into_map();
        let chosen = emails.iter().find(|e| e.primary).or(emails.last());
        let email = chosen.map(|e| e.address.to_lowercase()).filter(|e| !e.is_empty());
        let email_verified = email.is_some() && chosen.is_some_and(|e| e.verified);
        match &email {
            Some(email) => claims.insert("email".into(), json!(email)),
            None => claims.remove("email"),
        };
        claims.insert("email_verified".into(), json!(email_verified));
        claims.entry("phone_verified").or_insert(json!(false));
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        ProviderUser {
            subject,
            email,
            email_verified,
            identity_data: Value::Object(claims),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_left_out_and_the_flags_kept() {
        let mut claims = Claims::new("https://api.example", "42");
        claims
            .text("name", "")
            .text("nickname", "ada")
            .value("picture", Value::Null);
        let user = ProviderUser::new(claims, &[]);
        assert_eq!(
            user.identity_data,
            json!({
                "iss": "https://api.example", "sub": "42", "provider_id": "42", "nickname": "ada",
                "email_verified": false, "phone_verified": false,
            })
        );
        assert_eq!(user.subject, "42");
        assert_eq!(user.email, None);
    }

    #[test]
    fn the_primary_address_wins_else_the_last_listed() {
        let email = |address: &str, verified, primary| Email {
            address: address.into(),
            verified,
            primary,
        };
        let claims = || Claims::new("i", "1");
        let user = ProviderUser::new(
            claims(),
            &[
                email("a@x.io", true, false),
                email("B@X.io", false, true),
                email("c@x.io", true, false),
            ],
        );
        assert_eq!(user.email.as_deref(), Some("b@x.io"));
        assert!(!user.email_verified);
        assert_eq!(user.identity_data["email"], "b@x.io");
        let user = ProviderUser::new(claims(), &[email("a@x.io", false, false), email("c@x.io", true, false)]);
        assert_eq!(user.email.as_deref(), Some("c@x.io"));
        assert!(user.email_verified);
        assert_eq!(user.identity_data["email_verified"], true);
    }

    #[test]
    fn standard_claims_are_read_leniently() {
        let claims = Claims::standard(&json!({
            "iss": "https://idp", "sub": "s", "aud": "client", "iat": 1, "exp": 0,
            "name": "Ada", "email": "a@x.io", "email_verified": "true", "unknown": "x",
            "nonce": "n", "at_hash": "h",
        }));
        assert_eq!(
            Value::Object(claims.into_map()),
            json!({
                "iss": "https://idp", "sub": "s", "aud": ["client"], "iat": 1, "name": "Ada",
                "email": "a@x.io", "email_verified": true, "phone_verified": false,
            })
        );
    }

    #[test]
    fn custom_claims_nest() {
        let mut claims = Claims::new("i", "1");
        claims.custom("a", json!(1)).custom("b", json!("x"));
        assert_eq!(claims.as_map()["custom_claims"], json!({"a": 1, "b": "x"}));
        assert!(truthy(Some(&json!("TRUE"))) && truthy(Some(&json!(1))) && !truthy(Some(&json!("no"))));
        assert_eq!(text_at(&json!({"a": {"b": "c"}}), &["a", "b"]), Some("c"));
        assert_eq!(text_at(&json!({"a": 1}), &["a", "b"]), None);
    }
}
