//! `POST /token?grant_type=id_token` (GoTrue's `token_oidc.go`, supabase-js's
//! `signInWithIdToken` and `linkIdentity({provider, token})`): a native app signs in with the
//! ID token it got from the provider's own SDK (the Sign in with Apple sheet, Google One Tap,
//! Android's Credential Manager).
//!
//! The token must verify against the provider's published keys, name its issuer, be for one of
//! the provider's configured client ids, be unexpired, match the SHA-256 of the nonce the
//! client sends (supabase-js sends the raw one; the provider got the hash), and match the
//! access token sent with it (`at_hash`). The account is then found or made exactly as in the
//! redirect flow (`auth::oauth_link`), with the same rules for unverified addresses, or the
//! identity is linked to the signed-in user.

use std::sync::Arc;

use crate::db::Pool;
use uuid::Uuid;

use crate::auth::accounts::AccountRules;
use crate::auth::identities::require_manual_linking;
use crate::auth::oauth_link::{self, Resolved};
use crate::auth::oauth_providers::{self, CUSTOM_PREFIX, Unavailable};
use crate::auth::outbox::Outbox;
use crate::auth::redirect::RedirectPolicy;
use crate::auth::session::{self, Client, Sessions, Tokens};
use crate::auth::user_hooks;
use crate::config::CustomOAuthConfig;
use crate::db::identities::IdentityRow;
use crate::db::users::UserRow;
use crate::error::{Error, ErrorCode, Result};
use crate::providers::oidc::{hashed_nonce, unverified_issuer};
use crate::providers::{ExpectedNonce, IdTokenError, OAuthProvider, ProviderError, Registry, TokenChecks};

/// What the grant needs.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub providers: &'a Registry,
    pub custom_providers: &'a CustomOAuthConfig,
    pub outbox: &'a Outbox,
    pub accounts: &'a AccountRules,
    pub sessions: &'a Sessions,
    /// For the confirmation mail of an unverified address: it leads to the site URL.
    pub redirects: &'a RedirectPolicy,
    pub manual_linking_enabled: bool,
}

/// The grant's request (GoTrue's `IdTokenGrantParams`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Grant<'a> {
    pub id_token: &'a str,
    pub access_token: Option<&'a str>,
    /// The raw nonce; the token carries its SHA-256.
    pub nonce: Option<&'a str>,
    pub provider: Option<&'a str>,
    /// The deprecated way to name the provider: by issuer (with a client id).
    pub client_id: Option<&'a str>,
    pub issuer: Option<&'a str>,
    /// `link_identity`: the signed-in user the identity is linked to.
    pub link_to: Option<Uuid>,
}

pub struct SignedIn {
    pub tokens: Tokens,
    pub user: UserRow,
    pub identities: Vec<IdentityRow>,
}

/// GoTrue's 400 for a request the grant cannot use.
fn invalid(description: &'static str) -> Error {
    Error::oauth("invalid request", description)
}

pub async fn sign_in(deps: &Deps<'_>, client: &Client, grant: Grant<'_>) -> Result<SignedIn> {
    let given = |value: Option<&str>| value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let (provider_name, issuer) = (given(grant.provider), given(grant.issuer));
    if grant.id_token.trim().is_empty() {
        return Err(invalid("id_token required"));
    }
    if provider_name.is_none() && (given(grant.client_id).is_none() || issuer.is_none()) {
        return Err(invalid("provider or client_id and issuer required"));
    }
    if grant.link_to.is_some() {
        // Latchkey holds ID-token linking to the same setting as the redirect flow's (GoTrue
        // links ID tokens whatever it says).
        require_manual_linking(deps.manual_linking_enabled)?;
    }
    let name = match provider_name {
        Some(name) => name.to_lowercase(),
        None => provider_for_issuer(deps.providers, issuer.as_deref().unwrap_or_default())?,
    };
    // GoTrue's check for the providers whose issuer it reads from the token (the signature
    // check that follows holds every provider's tokens to their issuer).
    if let (Some(issuer), "apple" | "azure") = (&issuer, name.as_str())
        && unverified_issuer(grant.id_token).as_deref() != Some(issuer.as_str())
    {
        return Err(Error::validation("Provided issuer does not match ID token issuer"));
    }
    let provider = id_token_provider(deps, &name, issuer.as_deref()).await?;
    let hashed = grant.nonce.filter(|n| !n.is_empty()).map(hashed_nonce);
    let checks = TokenChecks {
        nonce: match (&hashed, provider.skips_nonce_check()) {
            (_, true) => ExpectedNonce::Unchecked,
            (Some(hashed), false) => ExpectedNonce::Exactly(hashed),
            (None, false) => ExpectedNonce::Absent,
        },
        access_token: grant.access_token.filter(|t| !t.is_empty()),
    };
    let profile = provider
        .user_from_id_token(grant.id_token, &checks)
        .await
        .map_err(|err| refusal(&name, err))?;
    if profile.subject.is_empty() {
        return Err(invalid("Missing sub claim in id_token"));
    }
    finish(deps, client, &name, &profile, grant.link_to).await
}

/// The account the identity signs in to (or joins), and its new session, in one transaction.
async fn finish(
    deps: &Deps<'_>,
    client: &Client,
    provider: &str,
    profile: &crate::providers::ProviderUser,
    link_to: Option<Uuid>,
) -> Result<SignedIn> {
    let redirect_to = deps.redirects.site_url().to_string();
    let ip = client.ip_string();
    let (outbox, rules) = (deps.outbox, deps.accounts);
    let mut tx = deps.db.begin().await?;
    let resolved = match link_to {
        Some(target) => {
            oauth_link::link_to(&mut tx, outbox, rules, target, provider, profile, &redirect_to, &ip).await?
        }
        None => oauth_link::resolve(&mut tx, outbox, rules, provider, profile, &redirect_to, &ip).await?,
    };
    let (user, created) = match resolved {
        Resolved::SignedIn(user) => (*user, false),
        Resolved::Created(user) => (*user, true),
        Resolved::Refused(err) => {
            // What was done is kept (the account, its confirmation mail), as GoTrue commits.
            tx.commit().await?;
            return Err(err);
        }
    };
    if user.is_banned(chrono::Utc::now()) {
        return Err(Error::bad_request(ErrorCode::UserBanned, "User is banned"));
    }
    let (tokens, user, identities) = session::start(&mut tx, deps.sessions, &user, "oauth", client).await?;
    tx.commit().await?;
    if created {
        user_hooks::after_user_created(deps.db, rules.after_user_created.as_ref(), user.id).await?;
    }
    Ok(SignedIn {
        tokens,
        user,
        identities,
    })
}

/// The provider the deprecated `issuer` parameter names: an enabled one whose tokens it
/// issues, or (for GoTrue's "not enabled" answer) one of GoTrue's well-known issuers. Any
/// other issuer is refused: GoTrue's allow list of arbitrary issuers, with the client id taken
/// from the request, is not implemented.
fn provider_for_issuer(registry: &Registry, issuer: &str) -> Result<String> {
    if let Some(provider) = registry.for_id_token_issuer(issuer) {
        return Ok(provider.name().to_owned());
    }
    let name = match issuer {
        "https://appleid.apple.com" | "https://account.apple.com" => "apple",
        "https://accounts.google.com" => "google",
        "https://www.facebook.com" => "facebook",
        "https://kauth.kakao.com" => "kakao",
        _ if issuer.starts_with("https://login.microsoftonline.com/") => "azure",
        _ => return Err(Error::validation("Custom OIDC provider \"\" not allowed")),
    };
    Ok(name.to_owned())
}

/// The enabled provider called `name` that signs in with ID tokens, or GoTrue's refusal.
async fn id_token_provider(deps: &Deps<'_>, name: &str, issuer: Option<&str>) -> Result<Arc<dyn OAuthProvider>> {
    let found = oauth_providers::find(deps.db, deps.providers, deps.custom_providers, name).await?;
    let custom = name.starts_with(CUSTOM_PREFIX);
    let provider = match found {
        Ok(provider) => provider,
        Err(Unavailable::CustomProvidersDisabled) => {
            return Err(Error::validation("Custom OAuth providers are disabled"));
        }
        Err(Unavailable::CustomNotFound) => {
            return Err(Error::validation(format!("Custom provider \"{name}\" not found")));
        }
        Err(Unavailable::CustomDisabled) => {
            return Err(Error::bad_request(
                ErrorCode::ProviderDisabled,
                format!("Custom provider \"{name}\" is disabled"),
            ));
        }
        Err(Unavailable::Unknown) if ID_TOKEN_PROVIDERS.contains(&name) => {
            let issuer = issuer.unwrap_or_default();
            return Err(Error::bad_request(
                ErrorCode::ProviderDisabled,
                format!("Provider (issuer \"{issuer}\") is not enabled"),
            ));
        }
        Err(Unavailable::Unknown) => return Err(not_allowed(name)),
    };
    match (provider.accepts_id_tokens(), custom) {
        (true, _) => Ok(provider),
        (false, true) => Err(Error::validation(format!(
            "Provider \"{name}\" is not an OIDC provider"
        ))),
        (false, false) => Err(not_allowed(name)),
    }
}

/// The built-in providers whose ID tokens GoTrue accepts.
const ID_TOKEN_PROVIDERS: [&str; 6] = ["apple", "google", "azure", "facebook", "keycloak", "kakao"];

fn not_allowed(name: &str) -> Error {
    Error::validation(format!("Custom OIDC provider \"{name}\" not allowed"))
}

/// GoTrue's answers to a token that does not pass; the reason goes to the log.
fn refusal(provider: &str, err: ProviderError) -> Error {
    tracing::info!(%provider, reason = %err, "ID token refused");
    match err {
        ProviderError::IdToken(IdTokenError::Audience(audiences)) => Error::oauth(
            "invalid request",
            format!("Unacceptable audience in id_token: [{audiences}]"),
        ),
        ProviderError::IdToken(IdTokenError::MissingClaim(claim)) if claim == "sub" => {
            invalid("Missing sub claim in id_token")
        }
        ProviderError::IdToken(IdTokenError::NoncePresence) => {
            invalid("Passed nonce and nonce in id_token should either both exist or not.")
        }
        ProviderError::IdToken(IdTokenError::Nonce) => Error::oauth("invalid nonce", "Nonces mismatch"),
        ProviderError::IdToken(_) => invalid("Bad ID token"),
        ProviderError::Metadata(_) => {
            Error::internal_with_message("Unable to read the provider's OpenID configuration", err)
        }
        other => Error::internal(other),
    }
}
