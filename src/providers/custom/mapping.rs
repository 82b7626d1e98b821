//! A custom provider's own reading of its user: `custom_claims_allowlist` copies chosen claims
//! of the provider as they are into `custom_claims`, then `attribute_mapping` sets identity
//! claims from other claims (GoTrue's `captureAllowedClaims` and `applyAttributeMapping`).

use serde_json::{Map, Value};

use crate::providers::claims::{Claims, STANDARD_TEXT};

/// Mapping targets an admin may not set from a provider's claims: they would let the provider
/// (or the mapping) decide what only Latchkey may (GoTrue's list).
pub const BLOCKED_TARGETS: [&str; 13] = [
    "id",
    "aud",
    "role",
    "app_metadata",
    "created_at",
    "updated_at",
    "confirmed_at",
    "email_confirmed_at",
    "phone_confirmed_at",
    "email_verified",
    "phone_verified",
    "banned_until",
    "is_super_admin",
];

/// Authorize-URL parameters a stored provider may not fix: Latchkey sets them per flow.
pub const RESERVED_AUTHORIZATION_PARAMS: [&str; 9] = [
    "client_id",
    "client_secret",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "code_verifier",
    "nonce",
];

/// The identity claims a mapping may set: the texts of GoTrue's `Claims` (anything else would
/// not survive GoTrue's round trip through its struct either): the standard ones, and these.
const MAPPABLE_EXTRA: [&str; 3] = ["slug", "provider_id", "user_name"];

fn is_mappable(target: &str) -> bool {
    STANDARD_TEXT.contains(&target) || MAPPABLE_EXTRA.contains(&target)
}

/// Copies every allowlisted claim of `raw` into `custom_claims`.
pub(super) fn capture_allowed(claims: &mut Claims, raw: &Value, allowlist: &[String]) {
    for key in allowlist {
        if let Some(value) = raw.get(key) {
            claims.custom(key, value.clone());
        }
    }
}

/// `target: "source"` sets the identity claim `target` to the claim `source` (when there is
/// one); `target: <text>` that names no claim is left alone, as in GoTrue. Only text claims
/// are mapped; the verified flags never are.
pub(super) fn apply_mapping(claims: Claims, mapping: &Map<String, Value>) -> Claims {
    let mut map = claims.into_map();
    for (target, source) in mapping {
        if !is_mappable(target) {
            continue;
        }
        let Value::String(source) = source else { continue };
        if let Some(value @ Value::String(_)) = map.get(source).cloned() {
            map.insert(target.clone(), value);
        }
    }
    Claims::from_map(map)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mappings_copy_text_claims_and_never_the_verified_flags() {
        let raw =
            json!({"sub": "1", "upn": "ada@corp.example", "email": "a@x.io", "email_verified": false, "groups": ["a"]});
        let mut claims = Claims::standard(&raw);
        claims.text("nickname", "ada");
        capture_allowed(&mut claims, &raw, &["groups".into(), "missing".into()]);
        let mapping = json!({
            "name": "nickname", "preferred_username": "no-such-claim", "email_verified": "nickname",
            "role": "nickname", "given_name": 42,
        });
        let mapped = apply_mapping(claims, mapping.as_object().unwrap());
        let map = mapped.as_map();
        assert_eq!(map["name"], "ada");
        assert!(map.get("preferred_username").is_none());
        assert_eq!(map["email_verified"], false);
        assert!(map.get("role").is_none() && map.get("given_name").is_none());
        assert_eq!(map["custom_claims"], json!({"groups": ["a"]}));
    }
}
