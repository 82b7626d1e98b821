//! Wire shapes shared by several endpoint families: the user, identity and session objects,
//! field for field and in GoTrue's order.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::timestamp;
use crate::db::identities::IdentityRow;
use crate::db::mfa_factors::FactorRow;
use crate::db::users::UserRow;

/// GoTrue's user object (`models/user.go`). `email`/`phone` are `""` when absent.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    #[schema(example = "authenticated")]
    pub aud: String,
    #[schema(example = "authenticated")]
    pub role: String,
    #[schema(example = "someone@example.com")]
    pub email: String,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub email_confirmed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub invited_at: Option<DateTime<Utc>>,
    pub phone: String,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub phone_confirmed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub recovery_sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_email: Option<String>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub email_change_sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_phone: Option<String>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub phone_change_sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub reauthentication_sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub app_metadata: Value,
    #[schema(value_type = Object)]
    pub user_metadata: Value,
    /// The user's MFA factors, verified or not; left out when there are none (GoTrue's
    /// `omitempty`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub factors: Vec<FactorResponse>,
    pub identities: Vec<IdentityResponse>,
    #[serde(serialize_with = "timestamp::one")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::one")]
    pub updated_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub banned_until: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    pub is_anonymous: bool,
}

impl UserResponse {
    pub fn new(user: UserRow, identities: Vec<IdentityRow>) -> UserResponse {
        UserResponse {
            id: user.id,
            aud: user.aud,
            role: user.role,
            email: user.email.unwrap_or_default(),
            email_confirmed_at: user.email_confirmed_at,
            invited_at: user.invited_at,
            phone: user.phone.unwrap_or_default(),
            phone_confirmed_at: user.phone_confirmed_at,
            confirmation_sent_at: user.confirmation_sent_at,
            confirmed_at: user.confirmed_at,
            recovery_sent_at: user.recovery_sent_at,
            new_email: user.email_change.filter(|e| !e.is_empty()),
            email_change_sent_at: user.email_change_sent_at,
            new_phone: user.phone_change.filter(|p| !p.is_empty()),
            phone_change_sent_at: user.phone_change_sent_at,
            reauthentication_sent_at: user.reauthentication_sent_at,
            last_sign_in_at: user.last_sign_in_at,
            app_metadata: user.raw_app_meta_data,
            user_metadata: user.raw_user_meta_data,
            factors: user.factors.0.into_iter().map(FactorResponse::from).collect(),
            identities: identities.into_iter().map(IdentityResponse::from).collect(),
            created_at: user.created_at,
            updated_at: user.updated_at,
            banned_until: user.banned_until,
            deleted_at: user.deleted_at,
            is_anonymous: user.is_anonymous,
        }
    }
}

/// GoTrue's identity object. Note the swapped names: `identity_id` is the row id, `id` the
/// provider's subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityResponse {
    pub identity_id: Uuid,
    pub id: String,
    pub user_id: Uuid,
    #[schema(value_type = Object)]
    pub identity_data: Value,
    pub provider: String,
    #[serde(serialize_with = "timestamp::opt", skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::one")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::one")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl From<IdentityRow> for IdentityResponse {
    fn from(row: IdentityRow) -> Self {
        IdentityResponse {
            identity_id: row.id,
            id: row.provider_id,
            user_id: row.user_id,
            identity_data: row.identity_data,
            provider: row.provider,
            last_sign_in_at: row.last_sign_in_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            email: row.email,
        }
    }
}

/// GoTrue's factor object (`models.Factor`). The secret is never part of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorResponse {
    pub id: Uuid,
    #[serde(serialize_with = "timestamp::one")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::one")]
    pub updated_at: DateTime<Utc>,
    /// `unverified` until a first code is verified, then `verified`.
    #[schema(example = "verified")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub friendly_name: String,
    #[schema(example = "totp")]
    pub factor_type: String,
    /// `""` for TOTP factors.
    pub phone: String,
    #[serde(serialize_with = "timestamp::opt")]
    pub last_challenged_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_authn_aaguid: Option<Uuid>,
}

impl From<FactorRow> for FactorResponse {
    fn from(row: FactorRow) -> Self {
        FactorResponse {
            id: row.id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            status: row.status,
            friendly_name: row.friendly_name,
            factor_type: row.factor_type,
            phone: row.phone.unwrap_or_default(),
            last_challenged_at: row.last_challenged_at,
            web_authn_aaguid: row.web_authn_aaguid,
        }
    }
}

/// `weak_password` in a password sign-in response.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeakPasswordInfo {
    pub message: String,
    pub reasons: Vec<String>,
}

/// GoTrue's `AccessTokenResponse`: there is no `session` wrapper on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    #[schema(example = 3600)]
    pub expires_in: i64,
    pub expires_at: i64,
    pub refresh_token: String,
    pub user: UserResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weak_password: Option<WeakPasswordInfo>,
    /// OAuth PKCE exchange: the provider's access token.
    #[serde(skip_serializing_if = "none_or_empty")]
    pub provider_token: Option<String>,
    /// OAuth PKCE exchange: the provider's refresh token (left out when there is none).
    #[serde(skip_serializing_if = "none_or_empty")]
    pub provider_refresh_token: Option<String>,
}

/// What GoTrue's `omitempty` leaves out of a string field: the provider tokens are plain Go
/// strings there, so an empty one is not written at all.
fn none_or_empty(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

impl SessionResponse {
    pub fn new(
        tokens: crate::auth::session::Tokens,
        user: UserRow,
        identities: Vec<IdentityRow>,
        weak_password: Option<WeakPasswordInfo>,
    ) -> SessionResponse {
        SessionResponse {
            access_token: tokens.access_token,
            token_type: "bearer",
            expires_in: tokens.expires_in,
            expires_at: tokens.expires_at,
            refresh_token: tokens.refresh_token,
            user: UserResponse::new(user, identities),
            weak_password,
            provider_token: None,
            provider_refresh_token: None,
        }
    }
}
