//! `/factors`: supabase-js `auth.mfa.enroll`, `challenge`, `verify`, `challengeAndVerify`
//! and `unenroll` (`listFactors` and `getAuthenticatorAssuranceLevel` read the user's
//! `factors` and the token's `aal`).

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::auth_user::AuthUser;
use crate::api::extract::{Json, OptionalJson};
use crate::api::state::AppState;
use crate::api::types::SessionResponse;
use crate::auth::mfa::{self, Caller, Deps, enroll, unenroll, verify};
use crate::auth::session::Client;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll_factor))
        .routes(routes!(challenge_factor))
        .routes(routes!(verify_factor))
        .routes(routes!(unenroll_factor))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"factor_type": "totp", "friendly_name": "My phone", "issuer": "Acme"}))]
pub struct EnrollParams {
    /// `totp` or `phone` (`webauthn` is not available).
    pub factor_type: Option<String>,
    /// Unique among the user's factors (an absent name counts as `""`).
    pub friendly_name: Option<String>,
    /// Shown by authenticator apps; the site URL's host when absent.
    pub issuer: Option<String>,
    /// A phone factor's number (E.164, `+` optional).
    pub phone: Option<String>,
}

/// What the authenticator app needs. Shown once: the secret is never returned again.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpObject {
    /// An SVG document (supabase-js prefixes `data:image/svg+xml;utf-8,`).
    pub qr_code: String,
    /// Base32.
    pub secret: String,
    /// `otpauth://totp/...`
    pub uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollResponse {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "totp")]
    pub factor_type: String,
    pub friendly_name: String,
    /// TOTP factors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpObject>,
    /// Phone factors only: the number as it was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Enrol a new TOTP or phone factor (unverified until a first code is verified).
#[utoipa::path(
    post, path = "/factors", tag = "mfa",
    request_body = EnrollParams,
    responses(
        (status = 200, description = "The factor, its secret, URI and QR code", body = EnrollResponse),
        (status = 400, description = "validation_failed: unknown factor_type, a name or issuer over 255 characters, a phone factor without a valid number", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, anonymous user (no_authorization), insufficient_aal (a verified factor exists and the session is aal1)", body = crate::api::ErrorBody),
        (status = 422, description = "mfa_factor_name_conflict, too_many_enrolled_mfa_factors, mfa_verified_factor_exists (a verified phone factor for the number), mfa_totp_enroll_not_enabled, mfa_phone_enroll_not_enabled, mfa_webauthn_enroll_not_enabled", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn enroll_factor(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Json(params): Json<EnrollParams>,
) -> Result<axum::Json<EnrollResponse>> {
    let request = enroll::Params {
        factor_type: params.factor_type.as_deref().unwrap_or_default(),
        friendly_name: params.friendly_name.as_deref().unwrap_or_default(),
        issuer: params.issuer.as_deref(),
        phone: params.phone.as_deref(),
    };
    let enrolled = enroll::enroll(&deps(&state), &caller(&auth), &client, &request).await?;
    let phone = enrolled
        .factor
        .phone
        .is_some()
        .then(|| params.phone.unwrap_or_default());
    Ok(axum::Json(EnrollResponse {
        id: enrolled.factor.id,
        factor_type: enrolled.factor.factor_type,
        friendly_name: enrolled.factor.friendly_name,
        totp: enrolled.totp.map(|keys| TotpObject {
            qr_code: keys.qr_code,
            secret: keys.secret,
            uri: keys.uri,
        }),
        phone,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeResponse {
    /// The challenge id, for `/verify`.
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "totp")]
    pub factor_type: String,
    /// Unix time after which the challenge cannot be verified.
    pub expires_at: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"channel": "sms"}))]
pub struct ChallengeParams {
    /// Phone factors: `sms` (the default) or `whatsapp` (Twilio, Twilio Verify, or the
    /// send-SMS hook).
    pub channel: Option<String>,
}

/// Start a verification of a factor (from the address that will verify it). A phone
/// factor's code is texted now.
#[utoipa::path(
    post, path = "/factors/{factor_id}/challenge", tag = "mfa",
    params(("factor_id" = String, Path, description = "The factor's id")),
    request_body(content = ChallengeParams, description = "May be empty"),
    responses(
        (status = 200, description = "The challenge", body = ChallengeResponse),
        (status = 400, description = "validation_failed: a channel other than sms or whatsapp, or one the SMS provider cannot use", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, anonymous user", body = crate::api::ErrorBody),
        (status = 404, description = "mfa_factor_not_found; validation_failed (factor_id is not a UUID)", body = crate::api::ErrorBody),
        (status = 422, description = "mfa_totp_verify_not_enabled, mfa_phone_verify_not_enabled, sms_send_failed (the SMS provider refused or could not be reached)", body = crate::api::ErrorBody),
        (status = 429, description = "over_sms_send_rate_limit: a phone factor challenged again within GOTRUE_MFA_PHONE_MAX_FREQUENCY", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn challenge_factor(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(factor_id): Path<String>,
    OptionalJson(params): OptionalJson<ChallengeParams>,
) -> Result<axum::Json<ChallengeResponse>> {
    let channel = params.channel.as_deref();
    let challenged = verify::challenge(&deps(&state), &caller(&auth), &client, &factor_id, channel).await?;
    Ok(axum::Json(ChallengeResponse {
        id: challenged.id,
        factor_type: challenged.factor_type,
        expires_at: challenged.expires_at.timestamp(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"challenge_id": "0b6d2b5e-7f5a-4d5e-9f2a-1c2d3e4f5a6b", "code": "123456"}))]
pub struct VerifyParams {
    pub challenge_id: Option<Uuid>,
    /// The 6-digit code the authenticator app shows, or the code texted to a phone factor.
    pub code: Option<String>,
}

/// Verify a code: the factor becomes verified, the session aal2, with new tokens. The user's
/// other sessions still at aal1 end.
#[utoipa::path(
    post, path = "/factors/{factor_id}/verify", tag = "mfa",
    params(("factor_id" = String, Path, description = "The factor's id")),
    request_body = VerifyParams,
    responses(
        (status = 200, description = "The session, now aal2", body = SessionResponse),
        (status = 400, description = "validation_failed: no code, or a challenge_id that is not a UUID", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, anonymous user, session_not_found", body = crate::api::ErrorBody),
        (status = 404, description = "mfa_factor_not_found; validation_failed (factor_id is not a UUID)", body = crate::api::ErrorBody),
        (status = 422, description = "mfa_verification_failed (wrong or already used code), mfa_challenge_expired, mfa_ip_address_mismatch (other address, or challenge already verified), mfa_factor_not_found (unknown challenge), mfa_totp_verify_not_enabled, mfa_phone_verify_not_enabled", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn verify_factor(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(factor_id): Path<String>,
    Json(params): Json<VerifyParams>,
) -> Result<axum::Json<SessionResponse>> {
    let code = params.code.as_deref().unwrap_or_default();
    let verified = verify::verify(
        &deps(&state),
        &caller(&auth),
        &client,
        &factor_id,
        params.challenge_id,
        code,
    )
    .await?;
    Ok(axum::Json(SessionResponse::new(
        verified.tokens,
        verified.user,
        verified.identities,
        None,
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnenrollResponse {
    pub id: Uuid,
}

/// Remove a factor. A verified one needs an aal2 session; the sessions that reached aal2
/// through it are aal1 again.
#[utoipa::path(
    delete, path = "/factors/{factor_id}", tag = "mfa",
    params(("factor_id" = String, Path, description = "The factor's id")),
    responses(
        (status = 200, description = "Removed", body = UnenrollResponse),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, anonymous user, session_not_found", body = crate::api::ErrorBody),
        (status = 404, description = "mfa_factor_not_found; validation_failed (factor_id is not a UUID)", body = crate::api::ErrorBody),
        (status = 422, description = "insufficient_aal (a verified factor, from an aal1 session)", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn unenroll_factor(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(factor_id): Path<String>,
) -> Result<axum::Json<UnenrollResponse>> {
    let id = unenroll::unenroll(&deps(&state), &caller(&auth), &client, &factor_id).await?;
    Ok(axum::Json(UnenrollResponse { id }))
}

fn caller(auth: &AuthUser) -> Caller<'_> {
    Caller {
        user: &auth.user,
        session_id: auth.session_id,
    }
}

fn deps(state: &AppState) -> Deps<'_> {
    mfa::Deps {
        db: &state.db,
        sessions: &state.sessions,
        config: &state.config.mfa,
        site_url: &state.config.site_url,
        hook: state.mfa_hook.as_ref(),
        phone: &state.mfa_phone,
    }
}
