//! The admin's links: `POST /invite` (an invitation mailed) and `POST /admin/generate_link`
//! (a verification link and code returned, nothing sent), each in one transaction.

use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::auth::accounts::{self, AccountRules, NewEmailAccount};
use crate::auth::admin_users::AdminActor;
use crate::auth::email::{self, Action, Outgoing, Sent};
use crate::auth::outbox::Outbox;
use crate::auth::password::{self, Hasher};
use crate::auth::proven_address;
use crate::auth::user_hooks;
use crate::config::PasswordConfig;
use crate::db::Pool;
use crate::db::audit::{self, Action as AuditAction};
use crate::db::identities::{self, IdentityRow};
use crate::db::one_time_tokens::{self, Confirms, TokenType};
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

/// What the link use cases need.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub outbox: &'a Outbox,
    pub accounts: &'a AccountRules,
    pub hasher: &'a Hasher,
    /// The password policy, for `signup` links of new users.
    pub policy: &'a PasswordConfig,
}

/// `POST /invite`: the account is created unconfirmed (or, still unconfirmed, found) and the
/// invitation mailed; verifying it (`type=invite`) signs the invitee in.
pub async fn invite(
    deps: &Deps<'_>,
    actor: &AdminActor<'_>,
    raw_email: &str,
    data: Option<&Value>,
    redirect_to: &str,
) -> Result<(UserRow, Vec<IdentityRow>)> {
    let email = accounts::normalize_email(raw_email)?;
    let mut tx = deps.db.begin().await?;
    let Invitee {
        user,
        confirms,
        created,
    } = invitee(&mut tx, deps.accounts, &email, data).await?;
    let out = Outgoing {
        redirect_to,
        pkce: None,
        check_frequency: false,
    };
    let sent = email::send_confirmation(&mut tx, deps.outbox, user.id, Action::Invite, &out, &confirms).await?;
    record_invitation(&mut tx, actor, &user, &email).await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    if created {
        user_hooks::after_user_created(deps.db, deps.accounts.after_user_created.as_ref(), user.id).await?;
    }
    Ok((sent.user, identities))
}

async fn record_invitation(conn: &mut PgConnection, actor: &AdminActor<'_>, user: &UserRow, email: &str) -> Result<()> {
    let traits = json!({ "user_id": user.id, "user_email": email });
    actor.record(conn, AuditAction::UserInvited, traits).await
}

/// The invited account: a new unconfirmed one, or the existing one while still unconfirmed.
struct Invitee {
    user: UserRow,
    /// What accepting the invitation confirms. An admin made a new account, so it is
    /// confirmed as it is; an existing one may hold what anyone put there, so accepting
    /// proves the address alone (`auth::proven_address`).
    confirms: Confirms,
    /// Made by this request (the after-user-created hook follows the commit).
    created: bool,
}

async fn invitee(conn: &mut PgConnection, rules: &AccountRules, email: &str, data: Option<&Value>) -> Result<Invitee> {
    match users::find_by_email(&mut *conn, email).await? {
        Some(user) if user.email_confirmed_at.is_some() => Err(accounts::email_exists()),
        Some(user) => Ok(Invitee {
            user,
            confirms: Confirms::default(),
            created: false,
        }),
        None => {
            let account = NewEmailAccount {
                email,
                password_hash: None,
                user_metadata: data.filter(|d| d.is_object()).cloned().unwrap_or_else(|| json!({})),
                confirmed: false,
                identity_in_metadata: false,
            };
            let user = accounts::create_email_user(&mut *conn, rules, account).await?.0;
            Ok(Invitee {
                user,
                confirms: Confirms::Account,
                created: true,
            })
        }
    }
}

/// The `type` of a generated link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Signup,
    Invite,
    MagicLink,
    Recovery,
    EmailChangeCurrent,
    EmailChangeNew,
}

impl LinkType {
    pub fn parse(raw: &str) -> Result<LinkType> {
        Ok(match raw {
            "signup" => LinkType::Signup,
            "invite" => LinkType::Invite,
            "magiclink" => LinkType::MagicLink,
            "recovery" => LinkType::Recovery,
            "email_change_current" => LinkType::EmailChangeCurrent,
            "email_change_new" => LinkType::EmailChangeNew,
            other => {
                return Err(Error::validation(format!(
                    "Invalid email action link type requested: {other}"
                )));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Signup => "signup",
            LinkType::Invite => "invite",
            LinkType::MagicLink => "magiclink",
            LinkType::Recovery => "recovery",
            LinkType::EmailChangeCurrent => "email_change_current",
            LinkType::EmailChangeNew => "email_change_new",
        }
    }
}

/// What `POST /admin/generate_link` asks for.
#[derive(Debug, Default)]
pub struct LinkRequest<'a> {
    /// As sent; an unknown type is a 400.
    pub link_type: &'a str,
    pub email: &'a str,
    pub new_email: Option<&'a str>,
    /// Required for `signup` links of new users.
    pub password: Option<&'a str>,
    pub data: Option<&'a Value>,
    /// The validated target the link leads to.
    pub redirect_to: &'a str,
}

/// The generated link: the token as issued, the user with their identities, and the type
/// the link verifies (a `magiclink` for an unknown address becomes a `signup`).
pub struct GeneratedLink {
    pub sent: Sent,
    pub identities: Vec<IdentityRow>,
    pub link_type: LinkType,
}

/// `POST /admin/generate_link`: a verification link and code, without sending mail (for
/// custom email delivery).
pub async fn generate_link(deps: &Deps<'_>, actor: &AdminActor<'_>, request: LinkRequest<'_>) -> Result<GeneratedLink> {
    let email = accounts::normalize_email(request.email)?;
    let mut link_type = LinkType::parse(request.link_type)?;
    let mut tx = deps.db.begin().await?;
    let existing = users::find_by_email(&mut *tx, &email).await?;
    let token = match (link_type, existing) {
        // GoTrue turns it into a sign-up with a random password nobody knows.
        (LinkType::MagicLink, None) => {
            link_type = LinkType::Signup;
            let password = random_password();
            signup_token(&mut tx, deps, None, &email, Some(&password), request.data).await?
        }
        (LinkType::Recovery | LinkType::EmailChangeCurrent | LinkType::EmailChangeNew, None) => {
            return Err(Error::not_found(
                ErrorCode::UserNotFound,
                "User with this email not found",
            ));
        }
        (LinkType::MagicLink | LinkType::Recovery, Some(user)) => {
            recovery_token(&mut tx, actor, user, link_type, &email).await?
        }
        (LinkType::Invite, _) => invite_token(&mut tx, deps.accounts, actor, &email, request.data).await?,
        (LinkType::Signup, existing) => {
            signup_token(&mut tx, deps, existing, &email, request.password, request.data).await?
        }
        (LinkType::EmailChangeCurrent | LinkType::EmailChangeNew, Some(user)) => {
            email_change_token(&mut tx, deps.outbox, user, link_type, request.new_email).await?
        }
    };
    let sent = email::generate(
        &mut tx,
        deps.outbox,
        &token.user,
        token.action,
        token.token_type,
        &token.address,
        request.redirect_to,
        &token.confirms,
    )
    .await?;
    let identities = identities::for_user(&mut *tx, sent.user.id).await?;
    tx.commit().await?;
    if token.created {
        user_hooks::after_user_created(deps.db, deps.accounts.after_user_created.as_ref(), sent.user.id).await?;
    }
    Ok(GeneratedLink {
        sent,
        identities,
        link_type,
    })
}

/// The token a link carries: for whom, of what type, for which address, confirming what.
struct Token {
    user: UserRow,
    action: Action,
    token_type: TokenType,
    address: String,
    confirms: Confirms,
    /// The user was made by this request.
    created: bool,
}

/// A `magiclink` or `recovery` link for an existing user (both are recovery tokens, as in
/// GoTrue), recorded as a recovery request by the user.
async fn recovery_token(
    conn: &mut PgConnection,
    actor: &AdminActor<'_>,
    user: UserRow,
    link_type: LinkType,
    email: &str,
) -> Result<Token> {
    let entry = audit::Entry::by_user(&user, AuditAction::UserRecoveryRequested, None, &actor.ip);
    audit::insert(&mut *conn, entry).await?;
    Ok(Token {
        user,
        action: if link_type == LinkType::MagicLink {
            Action::MagicLink
        } else {
            Action::Recovery
        },
        token_type: TokenType::Recovery,
        address: email.to_owned(),
        confirms: Confirms::default(),
        created: false,
    })
}

async fn invite_token(
    conn: &mut PgConnection,
    rules: &AccountRules,
    actor: &AdminActor<'_>,
    email: &str,
    data: Option<&Value>,
) -> Result<Token> {
    let Invitee {
        user,
        confirms,
        created,
    } = invitee(&mut *conn, rules, email, data).await?;
    record_invitation(&mut *conn, actor, &user, email).await?;
    Ok(Token {
        user,
        action: Action::Invite,
        token_type: TokenType::Confirmation,
        address: email.to_owned(),
        confirms,
        created,
    })
}

/// A `signup` link: for an unconfirmed user (metadata updated) or a new one with a password;
/// with what following it confirms. A new account is the admin's making, confirmed as it is;
/// for an existing one the link confirms what the pending confirmation did
/// (`auth::proven_address`).
async fn signup_token(
    conn: &mut PgConnection,
    deps: &Deps<'_>,
    existing: Option<UserRow>,
    email: &str,
    password: Option<&str>,
    data: Option<&Value>,
) -> Result<Token> {
    let data = data.filter(|d| d.is_object());
    let created = existing.is_none();
    let (user, confirms) = match existing {
        Some(user) if user.email_confirmed_at.is_some() => return Err(accounts::email_exists()),
        Some(user) => {
            let confirms = proven_address::confirms_again(&mut *conn, user.id).await?;
            let user = match data {
                Some(data) => users::merge_user_metadata(&mut *conn, user.id, data).await?,
                None => user,
            };
            (user, confirms)
        }
        None => {
            let password = password
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::validation("Signup requires a valid password"))?;
            password::check_new(deps.policy, password)?;
            let hash = deps.hasher.hash(password).await.map_err(Error::internal)?;
            let account = NewEmailAccount {
                email,
                password_hash: Some(&hash),
                user_metadata: data.cloned().unwrap_or_else(|| json!({})),
                confirmed: false,
                identity_in_metadata: false,
            };
            let user = accounts::create_email_user(&mut *conn, deps.accounts, account).await?.0;
            (user, Confirms::Account)
        }
    };
    Ok(Token {
        user,
        action: Action::Confirmation,
        token_type: TokenType::Confirmation,
        address: email.to_owned(),
        confirms,
        created,
    })
}

/// An email-change link for one side: the current address or the new one. The change
/// completes when that token is verified (the other side has no token waiting).
async fn email_change_token(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user: UserRow,
    link_type: LinkType,
    new_email: Option<&str>,
) -> Result<Token> {
    let current_side = link_type == LinkType::EmailChangeCurrent;
    if current_side && !outbox.settings().secure_email_change_enabled {
        return Err(Error::validation(
            "Enable secure email change to generate link for current email",
        ));
    }
    let new_email = accounts::normalize_email(new_email.unwrap_or(""))?;
    if users::email_taken(&mut *conn, &new_email, user.id).await? {
        return Err(accounts::email_exists());
    }
    let user = users::set_email_change(&mut *conn, user.id, &new_email).await?;
    let (token_type, other, address) = if current_side {
        let current = user.email.clone().unwrap_or_default();
        (TokenType::EmailChangeCurrent, TokenType::EmailChangeNew, current)
    } else {
        (TokenType::EmailChangeNew, TokenType::EmailChangeCurrent, new_email)
    };
    // Only this side's token exists: drop any left from an earlier change.
    one_time_tokens::delete(&mut *conn, user.id, other).await?;
    Ok(Token {
        user,
        action: Action::EmailChange,
        token_type,
        address,
        confirms: Confirms::default(),
        created: false,
    })
}

fn random_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}
