//! Sign-in with an OAuth provider (GoTrue's `/authorize` and `/callback`): [`start`] makes an
//! `_auth_flow_state` row whose id is the `state` the provider sends back, and returns the
//! provider's authorize URL; [`callback`] claims that flow once, exchanges the code, resolves
//! the account (`auth::oauth_link`) and ends with a session (implicit flow) or a code for
//! `POST /token?grant_type=pkce`. All flow state lives in Postgres, so a flow survives a restart
//! and works on any instance.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use url::Url;
use uuid::Uuid;

use crate::auth::accounts::AccountRules;
use crate::auth::identities::require_manual_linking;
use crate::auth::oauth_link::{self, Resolved};
use crate::auth::oauth_providers;
use crate::auth::outbox::Outbox;
use crate::auth::pkce;
use crate::auth::redirect::RedirectPolicy;
use crate::auth::session::{self, Client, Sessions, Tokens};
use crate::auth::user_hooks;
use crate::config::CustomOAuthConfig;
use crate::db::Pool;
use crate::db::flow_state::{self, FlowStateRow, NewFlowState};
use crate::db::users::UserRow;
use crate::error::{Error, ErrorCode, Result};
use crate::providers::{OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Registry};

/// What the OAuth flows need, for one request.
pub struct OAuthFlows<'a> {
    pub db: &'a Pool,
    pub providers: &'a Registry,
    /// `GOTRUE_CUSTOM_OAUTH_*`.
    pub custom_providers: &'a CustomOAuthConfig,
    pub outbox: &'a Outbox,
    pub accounts: &'a AccountRules,
    pub sessions: &'a Sessions,
    pub redirects: &'a RedirectPolicy,
    /// `GOTRUE_EXTERNAL_REDIRECTURL`: where every callback ends, overriding the flow's
    /// `redirect_to`.
    pub redirect_url: Option<&'a Url>,
    pub flow_state_expiry: Duration,
    pub manual_linking_enabled: bool,
}

/// Query parameters of `/authorize` that are Latchkey's own or that the provider must not get
/// from the client (GoTrue's reserved list, compared without case as GoTrue does); every other
/// parameter is forwarded.
const RESERVED: [&str; 13] = [
    "provider",
    "skip_http_redirect",
    "scopes",
    "redirect_to",
    "code_challenge",
    "code_challenge_method",
    "invite_token",
    "client_id",
    "client_secret",
    "redirect_uri",
    "response_type",
    "state",
    "code_verifier",
];

/// GoTrue's 400 for a provider that is unknown or disabled.
pub fn unsupported(reason: &str) -> Error {
    Error::validation(format!("Unsupported provider: {reason}"))
}

/// The provider called `name`, or GoTrue's 400.
async fn provider(flows: &OAuthFlows<'_>, name: &str) -> Result<Arc<dyn OAuthProvider>> {
    oauth_providers::find(flows.db, flows.providers, flows.custom_providers, name)
        .await?
        .map_err(|unavailable| unsupported(&unavailable.reason(name)))
}

/// The parameters `/authorize` passes on to the provider: all but the reserved ones, with
/// WorkOS's `provider` sent as `workos_provider` (GoTrue's renaming, since `provider` is ours).
fn forwarded(query: &[(String, String)]) -> Vec<(String, String)> {
    query
        .iter()
        .filter(|(k, _)| !RESERVED.iter().any(|reserved| k.eq_ignore_ascii_case(reserved)))
        .map(|(k, v)| match k.as_str() {
            "workos_provider" => ("provider".to_owned(), v.clone()),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// Starts a flow from the (decoded) query of `/authorize` and returns the provider's
/// authorize URL. `linking_target` is the signed-in user of `/user/identities/authorize`.
pub async fn start(
    flows: &OAuthFlows<'_>,
    query: &[(String, String)],
    redirect_to: &str,
    linking_target: Option<Uuid>,
) -> Result<Url> {
    if linking_target.is_some() {
        require_manual_linking(flows.manual_linking_enabled)?;
    }
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let name = get("provider").unwrap_or("").trim().to_lowercase();
    let provider = provider(flows, &name).await?;
    let challenge = pkce::parse_params(get("code_challenge"), get("code_challenge_method"))?;
    // PKCE towards the provider, when it asks for it: a verifier of our own, kept with the flow.
    let provider_verifier = provider
        .requires_pkce()
        .then(|| oauth2::PkceCodeChallenge::new_random_sha256().1.secret().clone());
    let flow = flow_state::insert(
        flows.db,
        &NewFlowState {
            user_id: None,
            code_challenge_method: challenge.as_ref().map(|c| c.method.as_str()),
            code_challenge: challenge.as_ref().map(|c| c.challenge.as_str()),
            provider_type: &name,
            authentication_method: "oauth",
            referrer: Some(redirect_to),
            linking_target_id: linking_target,
            provider_code_verifier: provider_verifier.as_deref(),
        },
    )
    .await?;
    let scopes = get("scopes").unwrap_or("");
    provider
        .authorize_url(
            &flow.id.to_string(),
            scopes,
            &forwarded(query),
            provider_verifier.as_deref(),
        )
        .await
        .map_err(|err| match err {
            // An ID-token-only provider (no secret configured): GoTrue's 400.
            ProviderError::NoSecret => unsupported(&err.to_string()),
            err => upstream(Step::Authorize, err),
        })
}

/// The provider's redirect back to `/callback`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Callback<'a> {
    pub code: Option<&'a str>,
    /// The flow id sent to the provider.
    pub state: Option<&'a str>,
    /// Set by the provider when the user declined or the request failed.
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
    /// What the provider posted as `user` (Apple: the name, on the first sign-in only).
    pub posted_user: Option<&'a str>,
}

/// How a callback ends.
#[derive(Debug)]
pub enum CallbackEnd {
    /// No usable flow (missing, unknown, used or expired `state`), so no validated
    /// `redirect_to`: GoTrue sends the browser to the site URL with the error.
    NoFlow(Error),
    /// The provider's own error, passed through to `redirect_to`.
    ProviderRefused {
        redirect_to: String,
        error: String,
        description: String,
    },
    /// The flow ran: signed in, or refused with an error, at `redirect_to`.
    Finished {
        redirect_to: String,
        outcome: Result<SignedIn>,
    },
}

/// A finished sign-in.
#[derive(Debug)]
pub enum SignedIn {
    /// PKCE: the code for `POST /token?grant_type=pkce`.
    Code(String),
    /// Implicit: the session, and the provider's tokens handed back with it.
    Session { session: Tokens, provider: ProviderTokens },
}

pub async fn callback(flows: &OAuthFlows<'_>, client: &Client, params: Callback<'_>) -> CallbackEnd {
    let flow = match claim(flows, params.state).await {
        Ok(flow) => flow,
        Err(err) => return CallbackEnd::NoFlow(err),
    };
    // The referrer was judged by `/authorize`; it is judged again here against today's
    // policy (a flow may predate a change of the allow list, or of Latchkey), so every
    // redirect is to a judged URL, the operator's redirect URL or the site URL.
    let referrer: String = flows.redirects.choose([flow.referrer.as_deref()]).into();
    let redirect_to = match flows.redirect_url {
        Some(url) => url.to_string(),
        None => referrer.clone(),
    };
    if let Some(error) = params.error.filter(|e| !e.is_empty()) {
        return CallbackEnd::ProviderRefused {
            redirect_to,
            error: error.to_owned(),
            description: params.error_description.unwrap_or("").to_owned(),
        };
    }
    let outcome = finish(flows, client, &flow, &params, &referrer).await;
    CallbackEnd::Finished { redirect_to, outcome }
}

/// The flow named by `state`, claimed for this callback (each state works once).
async fn claim(flows: &OAuthFlows<'_>, state: Option<&str>) -> Result<FlowStateRow> {
    let raw = state.unwrap_or("").trim();
    if raw.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::BadOauthCallback,
            "OAuth state parameter missing",
        ));
    }
    let id = Uuid::parse_str(raw).map_err(|_| invalid_state())?;
    let Some(flow) = flow_state::claim_for_callback(flows.db, id).await? else {
        // Already claimed (a replay) or not an OAuth flow at all.
        return Err(match flow_state::find(flows.db, id).await? {
            Some(flow) if flow.authentication_method == "oauth" => {
                Error::bad_request(ErrorCode::FlowStateAlreadyUsed, "Flow state already used")
            }
            _ => invalid_state(),
        });
    };
    let expiry = chrono::Duration::from_std(flows.flow_state_expiry).unwrap_or(chrono::Duration::MAX);
    if chrono::Utc::now() > flow.created_at + expiry {
        return Err(Error::bad_request(
            ErrorCode::FlowStateExpired,
            "Flow state has expired",
        ));
    }
    Ok(flow)
}

fn invalid_state() -> Error {
    Error::bad_request(ErrorCode::BadOauthState, "OAuth callback with invalid state")
}

/// `redirect_to` is where confirmation mails sent on the way (a new identity's email) lead.
async fn finish(
    flows: &OAuthFlows<'_>,
    client: &Client,
    flow: &FlowStateRow,
    params: &Callback<'_>,
    redirect_to: &str,
) -> Result<SignedIn> {
    let code = params.code.unwrap_or("");
    if code.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::BadOauthCallback,
            "OAuth callback with missing authorization code",
        ));
    }
    let provider = provider(flows, &flow.provider_type).await?;
    let tokens = provider
        .exchange_code(code, flow.provider_code_verifier.as_deref())
        .await
        .map_err(|err| upstream(Step::Exchange, err))?;
    let mut profile = provider
        .user(&tokens)
        .await
        .map_err(|err| upstream(Step::Profile, err))?;
    if let Some(posted) = params.posted_user.filter(|u| !u.is_empty()) {
        provider
            .read_callback_user(&mut profile, posted)
            .map_err(|err| upstream(Step::Profile, err))?;
    }
    let mut tx = flows.db.begin().await?;
    let (user, created) = match resolve(&mut tx, flows, flow, &profile, redirect_to, &client.ip_string()).await? {
        Resolved::SignedIn(user) => (*user, false),
        Resolved::Created(user) => (*user, true),
        Resolved::Refused(err) => {
            // What was done is kept (an account or identity, its confirmation mail); the
            // sign-in is refused.
            tx.commit().await?;
            return Err(err);
        }
    };
    if user.is_banned(chrono::Utc::now()) {
        return Err(Error::bad_request(ErrorCode::UserBanned, "User is banned"));
    }
    let signed_in = sign_in(&mut tx, flows, client, flow, &user, tokens).await?;
    tx.commit().await?;
    if created {
        user_hooks::after_user_created(flows.db, flows.accounts.after_user_created.as_ref(), user.id).await?;
    }
    Ok(signed_in)
}

/// The account the provider's user signs in to: the linking target, or the one
/// `oauth_link::resolve` finds or makes.
async fn resolve(
    conn: &mut PgConnection,
    flows: &OAuthFlows<'_>,
    flow: &FlowStateRow,
    profile: &ProviderUser,
    redirect_to: &str,
    ip: &str,
) -> Result<Resolved> {
    let (outbox, rules, provider) = (flows.outbox, flows.accounts, flow.provider_type.as_str());
    match flow.linking_target_id {
        Some(target) => oauth_link::link_to(conn, outbox, rules, target, provider, profile, redirect_to, ip).await,
        None => oauth_link::resolve(conn, outbox, rules, provider, profile, redirect_to, ip).await,
    }
}

/// PKCE: the flow keeps the user and the provider's tokens until the code is exchanged.
/// Implicit: the flow goes and a session starts.
async fn sign_in(
    conn: &mut PgConnection,
    flows: &OAuthFlows<'_>,
    client: &Client,
    flow: &FlowStateRow,
    user: &UserRow,
    tokens: ProviderTokens,
) -> Result<SignedIn> {
    if flow.code_challenge.is_some() {
        let refresh_token = tokens.refresh_token.as_deref();
        let flow =
            flow_state::complete_oauth(&mut *conn, flow.id, user.id, &tokens.access_token, refresh_token).await?;
        return Ok(SignedIn::Code(flow.auth_code));
    }
    flow_state::delete(&mut *conn, flow.id).await?;
    let (session, _, _) = session::start(conn, flows.sessions, user, "oauth", client).await?;
    Ok(SignedIn::Session {
        session,
        provider: tokens,
    })
}

/// Which call to the provider failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Authorize,
    Exchange,
    Profile,
}

/// A failure talking to the provider: 500 with GoTrue's message for the step; the cause is
/// kept for the log.
fn upstream(step: Step, err: ProviderError) -> Error {
    let message = match (step, &err) {
        (_, ProviderError::BadUrl(_)) => return Error::internal(err),
        (Step::Profile, _) => "Error getting user profile from external provider",
        (_, ProviderError::Metadata(_)) => "Unable to read the provider's OpenID configuration",
        (Step::Exchange, _) => "Unable to exchange external code",
        (Step::Authorize, _) => return Error::internal(err),
    };
    Error::internal_with_message(message, err)
}
