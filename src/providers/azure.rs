//! Microsoft Entra ID, "Azure" (`internal/api/provider/azure.go`): OpenID Connect with one
//! issuer per tenant. `GOTRUE_EXTERNAL_AZURE_URL` is the tenant's base,
//! `https://login.microsoftonline.com/<tenant>` (`common` unless set).
//!
//! A multi-tenant base (`common`, `organizations`, `consumers`) takes ID tokens from any
//! tenant: the token names its tenant's issuer, which must be a Microsoft login issuer, and
//! that tenant's keys verify it. Any other base is one tenant: its tokens must name exactly
//! `<URL>/v2.0` (GoTrue also lets other tenants' tokens through when the URL is not a
//! `login.microsoftonline.com` one; Latchkey holds them to the configured tenant).
//!
//! Azure's `email` is vouched for only when `xms_edov` says so, or, for a single-tenant base,
//! when it is absent. Stricter than GoTrue, which trusts a missing `xms_edov` everywhere: with
//! a multi-tenant base, the admin of any tenant can give a user any unverified address (the
//! "nOAuth" takeover), so there the claim must be present and true.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::claims::{Claims, Email, text_at};
use super::oidc::{IdTokenVerifier, Oidc, TokenChecks, unverified_issuer};
use super::{
    Endpoints, IdTokenError, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError,
};

const MICROSOFT_LOGIN: &str = "https://login.microsoftonline.com/";
const MULTI_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

/// Which issuers an Azure provider accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Issuers {
    /// `https://login.microsoftonline.com/<any tenant id>/v2.0`.
    AnyTenant,
    Exactly(String),
}

#[derive(Debug)]
pub(super) struct Azure {
    client: OAuthClient,
    base: String,
    issuers: Issuers,
    verifier: Arc<IdTokenVerifier>,
    client_ids: Vec<String>,
    skip_nonce_check: bool,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let base = super::base_url(setup.config, "login.microsoftonline.com/common");
    Ok(Box::new(Azure {
        issuers: issuers(&base),
        base,
        verifier: setup.verifier.clone(),
        client_ids: setup.config.client_ids.clone(),
        skip_nonce_check: setup.config.skip_nonce_check,
        client: setup.client,
    }))
}

fn issuers(base: &str) -> Issuers {
    let tenant = base.rsplit('/').next().unwrap_or_default();
    if base.starts_with(MICROSOFT_LOGIN) && MULTI_TENANT.contains(&tenant) {
        Issuers::AnyTenant
    } else {
        Issuers::Exactly(format!("{base}/v2.0"))
    }
}

/// Whether `issuer` is a tenant's issuer at Microsoft's login host: one plain path segment
/// (so the discovery URL built from it stays on that host).
fn is_tenant_issuer(issuer: &str) -> bool {
    let Some(tenant) = issuer
        .strip_prefix(MICROSOFT_LOGIN)
        .and_then(|rest| rest.strip_suffix("/v2.0"))
    else {
        return false;
    };
    !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

impl Azure {
    /// The verifier of `token`'s tenant, if the token names an issuer we accept.
    fn oidc_for(&self, token: &str, audiences: Vec<String>) -> Result<Oidc, ProviderError> {
        let issuer = unverified_issuer(token).ok_or(IdTokenError::MissingClaim("iss".into()))?;
        if !self.is_id_token_issuer(&issuer) {
            return Err(IdTokenError::Issuer.into());
        }
        Ok(Oidc::new(self.verifier.clone(), &issuer, audiences))
    }
}

#[async_trait]
impl OAuthProvider for Azure {
    super::basics!("azure", ["openid"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth2/v2.0/authorize", self.base),
            token: format!("{}/oauth2/v2.0/token", self.base),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| ProviderError::Profile("azure: no OIDC ID token present in response".into()))?;
        let oidc = self.oidc_for(id_token, vec![self.client.client_id().to_owned()])?;
        let checks = TokenChecks {
            access_token: Some(&tokens.access_token),
            ..TokenChecks::CODE_FLOW
        };
        Ok(from_id_token(
            &oidc.verify(id_token, &checks).await?,
            self.issuers == Issuers::AnyTenant,
        ))
    }

    fn accepts_id_tokens(&self) -> bool {
        true
    }

    fn is_id_token_issuer(&self, issuer: &str) -> bool {
        match &self.issuers {
            Issuers::AnyTenant => is_tenant_issuer(issuer),
            Issuers::Exactly(expected) => issuer == expected,
        }
    }

    fn skips_nonce_check(&self) -> bool {
        self.skip_nonce_check
    }

    async fn user_from_id_token(
        &self,
        id_token: &str,
        checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        let oidc = self.oidc_for(id_token, self.client_ids.clone())?;
        Ok(from_id_token(
            &oidc.verify(id_token, checks).await?,
            self.issuers == Issuers::AnyTenant,
        ))
    }
}

/// Claims GoTrue drops from Azure's custom claims (protocol claims and the mapped ones).
const NOT_CUSTOM: [&str; 16] = [
    "aud",
    "iss",
    "iat",
    "nbf",
    "exp",
    "c_hash",
    "at_hash",
    "aio",
    "nonce",
    "rh",
    "uti",
    "jti",
    "ver",
    "sub",
    "name",
    "preferred_username",
];

/// GoTrue's `parseAzureIDToken`: `name` goes to `full_name` only, every other claim of the
/// token to `custom_claims`.
fn from_id_token(claims: &Value, multi_tenant: bool) -> ProviderUser {
    let text = |key| text_at(claims, &[key]).unwrap_or_default();
    let mut identity = Claims::new(text("iss"), text("sub"));
    identity
        .text("preferred_username", text("preferred_username"))
        .text("full_name", text("name"));
    let custom: Map<String, Value> = claims
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !NOT_CUSTOM.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if !custom.is_empty() {
        identity.value("custom_claims", Value::Object(custom));
    }
    let email = text("email");
    ProviderUser::new(
        identity,
        &Email::primary(Some(email), email_verified(claims, multi_tenant)),
    )
}

/// `xms_edov` ("email domain owner verified") is `true`, `"1"` or `"true"`; without it the
/// address counts as verified only in a single-tenant set-up (see the module's notes).
fn email_verified(claims: &Value, multi_tenant: bool) -> bool {
    match claims.get("xms_edov") {
        None | Some(Value::Null) => !multi_tenant,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "1" || s == "true",
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn multi_tenant_bases_accept_any_tenant_and_others_one() {
        assert_eq!(issuers("https://login.microsoftonline.com/common"), Issuers::AnyTenant);
        assert_eq!(
            issuers("https://login.microsoftonline.com/consumers"),
            Issuers::AnyTenant
        );
        assert_eq!(
            issuers("https://login.microsoftonline.com/contoso.onmicrosoft.com"),
            Issuers::Exactly("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0".into())
        );
        assert_eq!(
            issuers("http://127.0.0.1:8080/common"),
            Issuers::Exactly("http://127.0.0.1:8080/common/v2.0".into())
        );
        assert!(is_tenant_issuer(
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
        ));
        for bad in [
            "https://login.microsoftonline.com/v2.0",
            "https://login.microsoftonline.com//v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://login.microsoftonline.com/a?x=/v2.0",
            "https://login.microsoftonline.com.evil.com/a/v2.0",
            "https://evil.com/a/v2.0",
            "https://sts.windows.net/a/",
        ] {
            assert!(!is_tenant_issuer(bad), "{bad}");
        }
    }

    #[test]
    fn the_address_is_vouched_for_by_xms_edov() {
        let base = json!({"iss": "i", "sub": "s", "email": "a@x.io", "name": "Ada", "tid": "t", "nonce": "n"});
        let user = from_id_token(&base, false);
        assert!(user.email_verified);
        assert!(
            !from_id_token(&base, true).email_verified,
            "multi-tenant: xms_edov required"
        );
        assert_eq!(user.identity_data["full_name"], "Ada");
        assert!(user.identity_data.get("name").is_none());
        assert_eq!(
            user.identity_data["custom_claims"],
            json!({"email": "a@x.io", "tid": "t"})
        );
        for (edov, verified) in [
            (json!(true), true),
            (json!("1"), true),
            (json!(false), false),
            (json!("0"), false),
        ] {
            let mut claims = base.clone();
            claims["xms_edov"] = edov;
            for multi_tenant in [false, true] {
                assert_eq!(from_id_token(&claims, multi_tenant).email_verified, verified);
            }
        }
    }
}
