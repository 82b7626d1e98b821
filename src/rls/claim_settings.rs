//! The opt-in `jwt.<claim>` settings: each top-level claim of a verified token as its own
//! transaction-local setting, for policies written as `current_setting('jwt.email', true)`.
//!
//! Claim names come from whoever shaped the token (a custom access token hook, an admin
//! setting metadata that a hook copies), and here they become setting names. So only plain
//! names are published: `[a-z_][a-z0-9_]*`, at most [`MAX_CLAIM_NAME`] bytes. Setting names
//! are case-insensitive, so an upper-case `EMAIL` claim would otherwise overwrite
//! `jwt.email`; a dot would reach into another namespace (`jwt.a.b`); anything else is
//! refused by Postgres or would stop the transaction from starting. Names and values are
//! bound parameters of `set_config` (see `rls::apply`), never SQL text.

use serde_json::{Map, Value};

/// Postgres keeps 63 bytes of an identifier; longer names are skipped, not truncated into
/// another claim's name.
pub const MAX_CLAIM_NAME: usize = 63;

/// `(setting name, value)` for every publishable claim: strings as they are, every other
/// value (numbers, booleans, null, arrays, objects) as its JSON text. A string holding NUL
/// cannot be stored in a setting and is skipped.
pub fn jwt_settings(claims: &Map<String, Value>) -> Vec<(String, String)> {
    claims
        .iter()
        .filter(|(name, _)| is_publishable(name))
        .filter_map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (!text.contains('\0')).then(|| (format!("jwt.{name}"), text))
        })
        .collect()
}

fn is_publishable(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= MAX_CLAIM_NAME
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_names_are_published_with_json_text_for_non_strings() {
        let claims = json!({
            "email": "ada@example.com",
            "tenant_id": "acme",
            "is_anonymous": false,
            "exp": 1700000000,
            "scopes": ["read", "write"],
            "app_metadata": {"provider": "email"},
            "nothing": null,
        });
        let mut settings = jwt_settings(claims.as_object().unwrap());
        settings.sort();
        assert_eq!(
            settings,
            [
                ("jwt.app_metadata", r#"{"provider":"email"}"#),
                ("jwt.email", "ada@example.com"),
                ("jwt.exp", "1700000000"),
                ("jwt.is_anonymous", "false"),
                ("jwt.nothing", "null"),
                ("jwt.scopes", r#"["read","write"]"#),
                ("jwt.tenant_id", "acme"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn hostile_names_are_skipped() {
        let long = "a".repeat(MAX_CLAIM_NAME + 1);
        let claims = json!({
            "EMAIL": "admin@evil.example",
            "Tenant_Id": "globex",
            "a.b": "x",
            "x'; drop table notes; --": "x",
            "1abc": "x",
            "": "x",
            "tenänt": "x",
            "with space": "x",
            "dollar$": "x",
            long: "x",
            "nul": "a\u{0}b",
            "email": "ada@example.com",
        });
        let settings = jwt_settings(claims.as_object().unwrap());
        assert_eq!(settings, [("jwt.email".to_owned(), "ada@example.com".to_owned())]);
        let longest = "b".repeat(MAX_CLAIM_NAME);
        let claims = json!({ longest.clone(): "y" });
        assert_eq!(jwt_settings(claims.as_object().unwrap())[0].0, format!("jwt.{longest}"));
    }
}
