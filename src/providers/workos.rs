//! WorkOS SSO (`internal/api/provider/workos.go`): `/sso/authorize` takes the `connection`,
//! `organization` or `provider` (sent to Latchkey as `workos_provider`) the client chose, all
//! forwarded from `/authorize`; the token response carries the user's profile itself. WorkOS
//! vouches for the address. `GOTRUE_EXTERNAL_WORKOS_URL` moves the host.

use async_trait::async_trait;
use serde_json::json;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct WorkOs {
    client: OAuthClient,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(WorkOs {
        api: super::base_url(setup.config, "api.workos.com"),
        // WorkOS reads the client's credentials from the form.
        client: setup.client.with_credentials_in_body(),
    }))
}

#[async_trait]
impl OAuthProvider for WorkOs {
    super::basics!("workos", []);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/sso/authorize", self.api),
            token: format!("{}/sso/token", self.api),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let profile = tokens
            .extra
            .get("profile")
            .ok_or_else(|| ProviderError::Profile("WorkOS's token response has no profile".into()))?;
        let text = |key| text_at(profile, &[key]).unwrap_or_default();
        let name = format!("{} {}", text("first_name"), text("last_name"));
        let mut claims = Claims::new(&self.api, text("id"));
        claims
            .text("name", name.trim())
            .text("full_name", name.trim())
            .custom("connection_id", json!(text("connection_id")))
            .custom("organization_id", json!(text("organization_id")));
        Ok(ProviderUser::new(claims, &Email::primary(Some(text("email")), true)))
    }
}
