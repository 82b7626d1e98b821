//! Sending the email-flow mails: a fresh one-time token is stored (replacing the previous one
//! of its kind), the `*_sent_at` column stamped, a PKCE flow recorded when asked, and the mail
//! sent — all inside the caller's transaction, so a failed send leaves nothing behind.

use axum::http::StatusCode;
use chrono::Utc;
use sqlx::PgConnection;
use url::Url;
use uuid::Uuid;

use crate::auth::otp;
use crate::auth::pkce::Challenge;
use crate::db::flow_state::{self, NewFlowState};
use crate::db::one_time_tokens::{self, Confirms, TokenType};
use crate::db::users::{self, SentAt, UserRow};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::mail::templates::{self, TemplateData};
use crate::mail::{self, Email, EmailKind};
use crate::state::AppState;

/// The mails of the email flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirmation,
    Invite,
    MagicLink,
    Recovery,
    EmailChange,
    Reauthentication,
}

impl Action {
    fn kind(self) -> EmailKind {
        match self {
            Action::Confirmation => EmailKind::Confirmation,
            Action::Invite => EmailKind::Invite,
            Action::MagicLink => EmailKind::MagicLink,
            Action::Recovery => EmailKind::Recovery,
            Action::EmailChange => EmailKind::EmailChange,
            Action::Reauthentication => EmailKind::Reauthentication,
        }
    }

    /// The `type` of the verification link.
    pub fn link_type(self) -> &'static str {
        match self {
            Action::Confirmation => "signup",
            Action::Invite => "invite",
            Action::MagicLink => "magiclink",
            Action::Recovery => "recovery",
            Action::EmailChange => "email_change",
            Action::Reauthentication => "reauthentication",
        }
    }

    /// The `authentication_method` of the PKCE flow (the amr method of its session).
    pub fn flow_method(self) -> &'static str {
        match self {
            Action::Confirmation => "email/signup",
            Action::Invite => "invite",
            Action::MagicLink => "magiclink",
            Action::Recovery => "recovery",
            Action::EmailChange => "email_change",
            Action::Reauthentication => "reauthentication",
        }
    }

    fn sent_at(self) -> SentAt {
        match self {
            Action::Confirmation => SentAt::Confirmation,
            Action::Invite => SentAt::Invite,
            // Magic links share the recovery slot and its frequency limit, as in GoTrue.
            Action::MagicLink | Action::Recovery => SentAt::Recovery,
            Action::EmailChange => SentAt::EmailChange,
            Action::Reauthentication => SentAt::Reauthentication,
        }
    }

    fn last_sent(self, user: &UserRow) -> Option<chrono::DateTime<Utc>> {
        match self.sent_at() {
            SentAt::Confirmation => user.confirmation_sent_at,
            // Invitations are sent by an admin: no frequency limit.
            SentAt::Invite => None,
            SentAt::Recovery => user.recovery_sent_at,
            SentAt::EmailChange => user.email_change_sent_at,
            SentAt::Reauthentication => user.reauthentication_sent_at,
        }
    }

    fn token_type(self) -> TokenType {
        match self {
            Action::Confirmation | Action::Invite => TokenType::Confirmation,
            Action::MagicLink | Action::Recovery => TokenType::Recovery,
            Action::EmailChange => TokenType::EmailChangeNew,
            Action::Reauthentication => TokenType::Reauthentication,
        }
    }

    fn failure_message(self) -> &'static str {
        match self {
            Action::Confirmation => "Error sending confirmation email",
            Action::Invite => "Error sending invite email",
            Action::MagicLink => "Error sending magic link email",
            Action::Recovery => "Error sending recovery email",
            Action::EmailChange => "Error sending email change email",
            Action::Reauthentication => "Error sending reauthentication email",
        }
    }
}

/// How to send.
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    /// The validated redirect target the link leads to after verification.
    pub redirect_to: &'a str,
    /// PKCE: the link carries a `pkce_` token and verification ends with `?code=`.
    pub pkce: Option<&'a Challenge>,
    /// Enforce `GOTRUE_SMTP_MAX_FREQUENCY` (not for the first mail of a new account).
    pub check_frequency: bool,
}

/// What was sent, for callers that need the token (the admin `generate_link` API).
#[derive(Debug)]
pub struct Sent {
    pub user: UserRow,
    pub otp: String,
    pub token_hash: String,
    pub action_link: Option<String>,
}

/// Issues a token for `action` and mails it. For `EmailChange` the new address must already
/// be pending in `email_change`. Locks the user row for the rest of the transaction. A
/// confirmation or invitation sent this way proves the address alone (see
/// [`send_confirmation`]).
pub async fn send(
    conn: &mut PgConnection,
    state: &AppState,
    user_id: Uuid,
    action: Action,
    out: &Outgoing<'_>,
) -> ApiResult<Sent> {
    send_confirmation(conn, state, user_id, action, out, &Confirms::default()).await
}

/// [`send`] for a confirmation or invitation whose link confirms `confirms` besides the
/// address (`auth::proven_address`); for other actions `confirms` is ignored.
pub async fn send_confirmation(
    conn: &mut PgConnection,
    state: &AppState,
    user_id: Uuid,
    action: Action,
    out: &Outgoing<'_>,
    confirms: &Confirms,
) -> ApiResult<Sent> {
    let user = users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| ApiError::internal("user vanished while sending mail"))?;
    if out.check_frequency
        && let Some(wait) =
            otp::wait_before_resend(action.last_sent(&user), Utc::now(), state.config.smtp_max_frequency)
    {
        return Err(frequency_error(wait));
    }
    let pkce = out.pkce.filter(|_| action != Action::Reauthentication);
    if let Some(challenge) = pkce {
        flow_state::insert(
            &mut *conn,
            &NewFlowState {
                user_id: Some(user.id),
                code_challenge_method: Some(challenge.method.as_str()),
                code_challenge: Some(&challenge.challenge),
                provider_type: "email",
                authentication_method: action.flow_method(),
                referrer: Some(out.redirect_to),
                linking_target_id: None,
            },
        )
        .await?;
    }
    let current = user.email.clone().unwrap_or_default();
    let length = state.config.mailer.otp_length;

    let mut emails = Vec::new();
    let sent = if action == Action::EmailChange {
        let new = user
            .email_change
            .clone()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| ApiError::internal("email change mail without a pending address"))?;
        let (otp_new, hash_new) = issue(
            &mut *conn,
            &user,
            TokenType::EmailChangeNew,
            &new,
            pkce.is_some(),
            length,
            confirms,
        )
        .await?;
        emails.push(render(
            state, action, &new, &current, &new, &otp_new, &hash_new, out, &user,
        ));
        if state.config.mailer.secure_email_change_enabled && !current.is_empty() {
            let (otp_cur, hash_cur) = issue(
                &mut *conn,
                &user,
                TokenType::EmailChangeCurrent,
                &current,
                pkce.is_some(),
                length,
                confirms,
            )
            .await?;
            emails.push(render(
                state, action, &current, &current, &new, &otp_cur, &hash_cur, out, &user,
            ));
        } else {
            one_time_tokens::delete(&mut *conn, user.id, TokenType::EmailChangeCurrent).await?;
        }
        (otp_new, hash_new)
    } else {
        if current.is_empty() {
            return Err(ApiError::internal("email flow for a user without an email address"));
        }
        let pkce_token = pkce.is_some();
        let (otp, hash) = issue(
            &mut *conn,
            &user,
            action.token_type(),
            &current,
            pkce_token,
            length,
            confirms,
        )
        .await?;
        emails.push(render(state, action, &current, &current, "", &otp, &hash, out, &user));
        (otp, hash)
    };
    let user = users::stamp_sent(&mut *conn, user.id, action.sent_at()).await?;

    // GoTrue's global GOTRUE_RATE_LIMIT_EMAIL_SENT: one unit per mail, before sending. A
    // refusal rolls back the caller's transaction, so no token is left without its mail.
    for _ in &emails {
        crate::api::ratelimit::check_email_sent(state)?;
    }
    let results = futures::future::join_all(
        emails
            .iter()
            .map(|(email, _)| mail::send_bounded(&*state.mailer, email)),
    )
    .await;
    for ((email, _), result) in emails.iter().zip(results) {
        if let Err(err) = result {
            tracing::error!(
                kind = email.kind.as_str(),
                to_domain = mail::recipient_domain(&email.to),
                error = %err,
                "sending mail failed"
            );
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                action.failure_message(),
            ));
        }
    }
    let action_link = emails.first().and_then(|(_, link)| link.clone());
    Ok(Sent {
        user,
        otp: sent.0,
        token_hash: sent.1,
        action_link,
    })
}

/// [`send`] for `/recover` and `/resend`: when a mail of this kind went to the user within
/// `GOTRUE_SMTP_MAX_FREQUENCY`, nothing is sent and the answer is `None` instead of GoTrue's
/// 429, which would tell anyone that the address has an account.
pub async fn send_if_due(
    conn: &mut PgConnection,
    state: &AppState,
    user_id: Uuid,
    action: Action,
    out: &Outgoing<'_>,
    confirms: &Confirms,
) -> ApiResult<Option<Sent>> {
    let user = users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| ApiError::internal("user vanished while sending mail"))?;
    let now = Utc::now();
    if otp::wait_before_resend(action.last_sent(&user), now, state.config.smtp_max_frequency).is_some() {
        return Ok(None);
    }
    // The row stays locked until the caller's transaction ends: nothing can send in between.
    send_confirmation(conn, state, user_id, action, out, confirms)
        .await
        .map(Some)
}

/// Issues a token for `action` without mailing it (the admin `generate_link` API): the code,
/// its hash and the link, as GoTrue returns them. `address` is the address the token belongs
/// to (the new one for `email_change_new`); `confirms` is what a confirmation token confirms
/// besides the address (ignored for other tokens).
#[allow(clippy::too_many_arguments)]
pub async fn generate(
    conn: &mut PgConnection,
    state: &AppState,
    user: &UserRow,
    action: Action,
    token_type: TokenType,
    address: &str,
    redirect_to: &str,
    confirms: &Confirms,
) -> ApiResult<Sent> {
    // The user before its token, the order every writer of tokens and `/verify` keep, so a
    // verification running at the same time cannot deadlock with this.
    users::lock(&mut *conn, user.id).await?;
    let length = state.config.mailer.otp_length;
    let (otp, token_hash) = issue(&mut *conn, user, token_type, address, false, length, confirms).await?;
    let user = users::stamp_sent(&mut *conn, user.id, action.sent_at()).await?;
    let action_link = Some(verification_link(
        &state.external_url,
        &token_hash,
        action.link_type(),
        redirect_to,
    ));
    Ok(Sent {
        user,
        otp,
        token_hash,
        action_link,
    })
}

/// GoTrue's per-user send-frequency error.
pub fn frequency_error(wait_seconds: i64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::OverEmailSendRateLimit,
        format!("For security purposes, you can only request this after {wait_seconds} seconds."),
    )
}

/// A new code for `address`, stored as its (flow-prefixed) hash. Returns (otp, stored hash).
/// A confirmation token also records what it confirms: always written, so that a new token
/// never inherits what the one it replaces confirmed.
async fn issue(
    conn: &mut PgConnection,
    user: &UserRow,
    token_type: TokenType,
    address: &str,
    pkce: bool,
    length: usize,
    confirms: &Confirms,
) -> ApiResult<(String, String)> {
    let code = otp::generate_otp(length);
    let hash = otp::with_flow_prefix(&otp::token_hash(address, &code), pkce);
    if token_type == TokenType::Confirmation {
        one_time_tokens::upsert_confirmation(&mut *conn, user.id, &hash, address, confirms).await?;
    } else {
        one_time_tokens::upsert(&mut *conn, user.id, token_type, &hash, address).await?;
    }
    Ok((code, hash))
}

/// The link a mail carries: `<API_EXTERNAL_URL>/verify?token=<hash>&type=<type>&redirect_to=<r>`.
pub fn verification_link(external_url: &Url, token_hash: &str, link_type: &str, redirect_to: &str) -> String {
    let mut url = external_url.clone();
    let path = format!("{}/verify", external_url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_fragment(None);
    url.query_pairs_mut()
        .clear()
        .append_pair("token", token_hash)
        .append_pair("type", link_type)
        .append_pair("redirect_to", redirect_to);
    url.to_string()
}

#[allow(clippy::too_many_arguments)]
fn render(
    state: &AppState,
    action: Action,
    to: &str,
    email: &str,
    new_email: &str,
    code: &str,
    hash: &str,
    out: &Outgoing<'_>,
    user: &UserRow,
) -> (Email, Option<String>) {
    let link = (action != Action::Reauthentication)
        .then(|| verification_link(&state.external_url, hash, action.link_type(), out.redirect_to));
    let site_url = state.config.site_url.to_string();
    let rendered = templates::render(
        action.kind(),
        &state.config.mailer,
        &TemplateData {
            confirmation_url: link.as_deref().unwrap_or(""),
            token: code,
            token_hash: hash,
            site_url: &site_url,
            redirect_to: out.redirect_to,
            email,
            new_email,
            data: Some(&user.raw_user_meta_data),
        },
    );
    (
        Email {
            kind: action.kind(),
            to: to.to_owned(),
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
        },
        link,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_verify_under_the_external_url() {
        let base = Url::parse("https://proj.example.com/auth/v1/").unwrap();
        let link = verification_link(&base, "pkce_abc", "signup", "https://app.example.com/cb?x=1&y=2#f");
        let parsed = Url::parse(&link).unwrap();
        assert_eq!(parsed.path(), "/auth/v1/verify");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("token".into(), "pkce_abc".into()),
                ("type".into(), "signup".into()),
                ("redirect_to".into(), "https://app.example.com/cb?x=1&y=2#f".into()),
            ]
        );
        let root = Url::parse("http://127.0.0.1:9999").unwrap();
        assert!(
            verification_link(&root, "h", "recovery", "x")
                .starts_with("http://127.0.0.1:9999/verify?token=h&type=recovery")
        );
    }
}
