//! Zoom (`internal/api/provider/zoom.go`): plain OAuth 2; the user from `/v2/users/me`. The
//! address counts as verified unless the account signs in with a Zoom password
//! (`login_type` 100) and Zoom has not verified it. `GOTRUE_EXTERNAL_ZOOM_URL` moves both
//! hosts.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Zoom {
    client: OAuthClient,
    web: String,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Zoom {
        web: super::base_url(setup.config, "zoom.us"),
        api: format!("{}/v2", super::base_url(setup.config, "api.zoom.us")),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Zoom {
    super::basics!("zoom", []);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth/authorize", self.web),
            token: format!("{}/oauth/token", self.web),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/users/me", self.api);
        let user: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&user, &[key]).unwrap_or_default();
        let name = format!("{} {}", text("first_name"), text("last_name"));
        let mut claims = Claims::new(&self.api, text("id"));
        claims
            .text("name", name.trim())
            .text("full_name", name.trim())
            .text("picture", text("pic_url"))
            .text("avatar_url", text("pic_url"));
        Ok(ProviderUser::new(
            claims,
            &Email::primary(Some(text("email")), verified(&user)),
        ))
    }
}

/// GoTrue's rule: verified unless `login_type` is "100" (a Zoom password) and `verified` is 0.
fn verified(user: &Value) -> bool {
    let login_type = match user.get("login_type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let zoom_verified = user.get("verified").and_then(Value::as_i64).unwrap_or(0) != 0;
    login_type != "100" || zoom_verified
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn password_accounts_need_zoom_to_have_verified_the_address() {
        assert!(!verified(&json!({"login_type": "100", "verified": 0})));
        assert!(!verified(&json!({"login_type": 100})));
        assert!(verified(&json!({"login_type": "100", "verified": 1})));
        assert!(verified(&json!({"login_type": "1", "verified": 0})));
        assert!(verified(&json!({})));
    }
}
