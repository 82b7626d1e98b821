//! `GET /reauthenticate`: mails (or, for a user without an email address, texts) the
//! signed-in user a code to pass as `nonce` to `PUT /user`.

use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth_user::AuthUser;
use crate::api::state::AppState;
use crate::auth::email::{self, Action, Outgoing};
use crate::auth::phone::resend as phone_resend;
use crate::auth::session::Client;
use crate::db::audit::{self, Action as AuditAction};
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_reauthenticate))
}

/// Send a reauthentication code to the signed-in user's (confirmed) email address, or by SMS
/// to their (confirmed) number when they have no address.
#[utoipa::path(
    get, path = "/reauthenticate", tag = "user",
    responses(
        (status = 200, description = "Code sent: {} (mail) or {\"message_id\": ...} (text)", body = Object),
        (status = 400, description = "The user has no email address or phone number; phone_provider_disabled", body = crate::api::ErrorBody),
        (status = 422, description = "email_not_confirmed, phone_not_confirmed, sms_send_failed", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit, over_sms_send_rate_limit", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_reauthenticate(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
) -> Result<axum::Json<Value>> {
    let user = &auth.user;
    if user.email_or_empty().is_empty() {
        // GoTrue sends the code to the phone when the account has no email address.
        if user.phone.as_deref().is_some_and(|p| !p.is_empty()) {
            let message_id = phone_resend::reauthenticate(&state.db, &state.outbox, &client, user).await?;
            return Ok(axum::Json(phone_resend::answer(&message_id)));
        }
        return Err(Error::validation(
            "Reauthentication requires the user to have an email or a phone number",
        ));
    }
    if user.email_confirmed_at.is_none() {
        return Err(Error::unprocessable(
            ErrorCode::EmailNotConfirmed,
            "Please verify your email first.",
        ));
    }
    let mut tx = state.db.begin().await?;
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(
            user,
            AuditAction::UserReauthenticateRequested,
            None,
            &client.ip_string(),
        ),
    )
    .await?;
    let out = Outgoing {
        check_frequency: true,
        ..Outgoing::default()
    };
    email::send(&mut tx, &state.outbox, user.id, Action::Reauthentication, &out).await?;
    tx.commit().await?;
    Ok(axum::Json(json!({})))
}
