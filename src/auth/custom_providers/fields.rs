//! A custom provider as the admin API sets it, and GoTrue's checks of it (plus the table's
//! limits, checked here so that they answer 400 and never reach the database as a violation).

use secrecy::SecretString;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::db::custom_providers::CustomProviderRow;
use crate::error::{Error, Result};
use crate::providers::custom::{BLOCKED_TARGETS, RESERVED_AUTHORIZATION_PARAMS};

/// `POST /admin/custom-providers` and `PUT .../{identifier}`: on update, `None` and empty
/// texts leave a field as it is; `provider_type` and `identifier` never change.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProviderFields<'a> {
    pub provider_type: Option<&'a str>,
    pub identifier: Option<&'a str>,
    pub name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    pub acceptable_client_ids: Option<&'a [String]>,
    pub scopes: Option<&'a [String]>,
    pub pkce_enabled: Option<bool>,
    pub attribute_mapping: Option<&'a Map<String, Value>>,
    pub custom_claims_allowlist: Option<&'a [String]>,
    pub authorization_params: Option<&'a Map<String, Value>>,
    pub enabled: Option<bool>,
    pub email_optional: Option<bool>,
    pub issuer: Option<&'a str>,
    pub discovery_url: Option<&'a str>,
    pub skip_nonce_check: Option<bool>,
    pub authorization_url: Option<&'a str>,
    pub token_url: Option<&'a str>,
    pub userinfo_url: Option<&'a str>,
    pub jwks_uri: Option<&'a str>,
}

/// A text that was given: not `None`, not empty.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn required<'a>(value: Option<&'a str>, message: &'static str) -> Result<&'a str> {
    given(value).ok_or_else(|| Error::validation(message))
}

impl ProviderFields<'_> {
    /// A new provider's row, after GoTrue's checks in GoTrue's order.
    pub(super) fn new_row(&self, id: Uuid) -> Result<CustomProviderRow> {
        let provider_type = match self.provider_type {
            Some(t @ ("oauth2" | "oidc")) => t,
            _ => return Err(Error::validation("provider_type must be either 'oauth2' or 'oidc'")),
        };
        let identifier = required(self.identifier, "identifier is required")?;
        if !identifier.starts_with("custom:") {
            return Err(Error::validation(format!(
                "identifier must start with 'custom:' prefix, e.g. 'custom:{identifier}'"
            )));
        }
        check_identifier(identifier)?;
        let name = required(self.name, "name is required")?;
        let client_id = required(self.client_id, "client_id is required")?;
        let client_secret = required(self.client_secret, "client_secret is required")?;
        let oidc = provider_type == "oidc";
        if oidc {
            required(self.issuer, "issuer is required for OIDC providers")?;
        } else {
            required(
                self.authorization_url,
                "authorization_url is required for OAuth2 providers",
            )?;
            required(self.token_url, "token_url is required for OAuth2 providers")?;
            required(self.userinfo_url, "userinfo_url is required for OAuth2 providers")?;
        }
        self.check_maps()?;
        let now = chrono::Utc::now();
        let text = |value: Option<&str>| given(value).map(str::to_owned);
        let row = CustomProviderRow {
            id,
            provider_type: provider_type.to_owned(),
            identifier: identifier.to_owned(),
            name: name.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(client_secret),
            acceptable_client_ids: self.acceptable_client_ids.map(<[String]>::to_vec).unwrap_or_default(),
            scopes: with_openid(oidc, self.scopes.map(<[String]>::to_vec).unwrap_or_default()),
            pkce_enabled: self.pkce_enabled.unwrap_or(true),
            attribute_mapping: json!(self.attribute_mapping.cloned().unwrap_or_default()),
            authorization_params: json!(self.authorization_params.cloned().unwrap_or_default()),
            enabled: self.enabled.unwrap_or(true),
            email_optional: self.email_optional.unwrap_or(false),
            issuer: if oidc { text(self.issuer) } else { None },
            discovery_url: if oidc { text(self.discovery_url) } else { None },
            skip_nonce_check: oidc && self.skip_nonce_check.unwrap_or(false),
            cached_discovery: None,
            discovery_cached_at: None,
            authorization_url: if oidc { None } else { text(self.authorization_url) },
            token_url: if oidc { None } else { text(self.token_url) },
            userinfo_url: if oidc { None } else { text(self.userinfo_url) },
            jwks_uri: if oidc { None } else { text(self.jwks_uri) },
            custom_claims_allowlist: self.custom_claims_allowlist.map(<[String]>::to_vec).unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        check_lengths(&row)?;
        Ok(row)
    }

    /// GoTrue's checks of the maps and lists: no reserved authorize parameter, string values
    /// only; no protected mapping target; no empty allowlist entry.
    pub(super) fn check_maps(&self) -> Result<()> {
        for (key, value) in self.authorization_params.into_iter().flatten() {
            if RESERVED_AUTHORIZATION_PARAMS.contains(&key.as_str()) {
                return Err(Error::validation(format!(
                    "Cannot override reserved OAuth parameter: {key}"
                )));
            }
            if !value.is_string() {
                return Err(Error::validation(format!(
                    "Authorization parameter \"{key}\" must be a string"
                )));
            }
        }
        for target in self.attribute_mapping.into_iter().flatten().map(|(k, _)| k) {
            if BLOCKED_TARGETS.contains(&target.as_str()) {
                return Err(Error::validation(format!(
                    "Cannot map to protected system field: {target}"
                )));
            }
        }
        if self
            .custom_claims_allowlist
            .into_iter()
            .flatten()
            .any(|key| key.trim().is_empty())
        {
            return Err(Error::validation(
                "custom_claims_allowlist entries must be non-empty strings",
            ));
        }
        Ok(())
    }

    /// Applies an update to `row`; returns whether the discovery document must be fetched
    /// again (the issuer or the discovery URL changed).
    pub(super) fn apply(&self, row: &mut CustomProviderRow) -> Result<bool> {
        let set = |field: &mut String, value: Option<&str>| {
            if let Some(value) = given(value) {
                *field = value.to_owned();
            }
        };
        set(&mut row.name, self.name);
        set(&mut row.client_id, self.client_id);
        if let Some(secret) = given(self.client_secret) {
            row.client_secret = SecretString::from(secret);
        }
        let oidc = row.provider_type == "oidc";
        if let Some(ids) = self.acceptable_client_ids {
            row.acceptable_client_ids = ids.to_vec();
        }
        if let Some(scopes) = self.scopes {
            row.scopes = with_openid(oidc, scopes.to_vec());
        }
        if let Some(mapping) = self.attribute_mapping {
            row.attribute_mapping = json!(mapping);
        }
        if let Some(params) = self.authorization_params {
            row.authorization_params = json!(params);
        }
        if let Some(allowlist) = self.custom_claims_allowlist {
            row.custom_claims_allowlist = allowlist.to_vec();
        }
        let flags = [
            (&mut row.pkce_enabled, self.pkce_enabled),
            (&mut row.enabled, self.enabled),
            (&mut row.email_optional, self.email_optional),
        ];
        for (field, value) in flags {
            if let Some(value) = value {
                *field = value;
            }
        }
        let text = |field: &mut Option<String>, value: Option<&str>| {
            if let Some(value) = given(value) {
                *field = Some(value.to_owned());
            }
        };
        let rediscover = oidc && (given(self.issuer).is_some() || given(self.discovery_url).is_some());
        if oidc {
            text(&mut row.issuer, self.issuer);
            text(&mut row.discovery_url, self.discovery_url);
            if let Some(skip) = self.skip_nonce_check {
                row.skip_nonce_check = skip;
            }
        } else {
            text(&mut row.authorization_url, self.authorization_url);
            text(&mut row.token_url, self.token_url);
            text(&mut row.userinfo_url, self.userinfo_url);
            text(&mut row.jwks_uri, self.jwks_uri);
        }
        check_lengths(row)?;
        Ok(rediscover)
    }
}

/// OpenID Connect providers always ask for `openid` (first, as GoTrue puts it).
fn with_openid(oidc: bool, mut scopes: Vec<String>) -> Vec<String> {
    if oidc && !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    scopes
}

/// The table's identifier rule: `custom:` then lower-case letters, digits, `:` and `-`, at
/// most 50 characters in all, ending in a letter or digit.
fn check_identifier(identifier: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '-';
    let ends_well = identifier
        .chars()
        .last()
        .is_some_and(|c| allowed(c) && c != ':' && c != '-');
    let rest = &identifier["custom:".len()..];
    if identifier.len() > 50 || rest.is_empty() || !identifier.chars().all(allowed) || !ends_well {
        return Err(Error::validation(
            "identifier must be 'custom:' followed by lower-case letters, digits, ':' or '-' \
             (at most 50 characters, ending in a letter or digit)",
        ));
    }
    Ok(())
}

/// The table's length limits.
fn check_lengths(row: &CustomProviderRow) -> Result<()> {
    let chars = |s: &str| s.chars().count();
    if !(1..=100).contains(&chars(&row.name)) {
        return Err(Error::validation("name must be 1 to 100 characters"));
    }
    if !(1..=512).contains(&chars(&row.client_id)) {
        return Err(Error::validation("client_id must be 1 to 512 characters"));
    }
    let urls = [
        &row.issuer,
        &row.discovery_url,
        &row.authorization_url,
        &row.token_url,
        &row.userinfo_url,
        &row.jwks_uri,
    ];
    if urls.into_iter().flatten().any(|url| chars(url) > 2048) {
        return Err(Error::validation("URLs must be at most 2048 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_tables_rule() {
        for good in ["custom:acme", "custom:a", "custom:my-idp:eu-1", "custom:0"] {
            assert!(check_identifier(good).is_ok(), "{good}");
        }
        let long = format!("custom:{}", "a".repeat(44));
        for bad in [
            "custom:",
            "custom:Acme",
            "custom:acme-",
            "custom:acme:",
            "custom:a_b",
            "custom:a b",
            "custom:ä",
            "custom:a/../b",
            long.as_str(),
        ] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn oidc_scopes_always_have_openid() {
        assert_eq!(with_openid(true, vec!["email".into()]), ["openid", "email"]);
        assert_eq!(
            with_openid(true, vec!["email".into(), "openid".into()]),
            ["email", "openid"]
        );
        assert_eq!(with_openid(false, vec!["read".into()]), ["read"]);
    }
}
