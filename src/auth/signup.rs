//! `POST /signup`: email/password sign-up, a repeated sign-up of a registered address,
//! phone/password sign-up (`auth::phone::signup`), and anonymous sign-in when neither email
//! nor phone is given.

use serde_json::{Value, json};
use sqlx::Connection;

pub use crate::auth::accounts::SignedUp;
use crate::auth::accounts::{self, AccountRules, NewEmailAccount};
use crate::auth::email::{self, Action as MailAction, Outgoing};
use crate::auth::outbox::Outbox;
use crate::auth::password::{self, Hasher};
use crate::auth::phone::signup::{self as phone_signup, PhoneSignUp};
use crate::auth::pkce;
use crate::auth::session::{self, Client, Sessions};
use crate::auth::user_hooks;
use crate::config::PasswordConfig;
use crate::db::Pool;
use crate::db::audit::{self, Action};
use crate::db::hot::HotPool;
use crate::db::identities;
use crate::db::one_time_tokens::Confirms;
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

/// What sign-up needs.
pub struct Deps<'a> {
    pub db: &'a Pool,
    /// Connections for the hot path (a new email account).
    pub hot: &'a HotPool,
    /// Whether sign-ups of each kind are allowed, autoconfirm, and the new users' `aud`.
    pub accounts: &'a AccountRules,
    pub outbox: &'a Outbox,
    pub sessions: &'a Sessions,
    pub hasher: &'a Hasher,
    /// The password policy (`GOTRUE_PASSWORD_*`).
    pub policy: &'a PasswordConfig,
}

/// A sign-up request; `email` and `phone` trimmed, `None` when blank (neither means an
/// anonymous sign-in).
#[derive(Debug, Default)]
pub struct SignUp<'a> {
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub password: Option<&'a str>,
    /// Becomes `user_metadata`.
    pub data: Option<&'a Value>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    /// `sms` or `whatsapp`, for the code of a phone sign-up.
    pub channel: Option<&'a str>,
    /// The validated target of the confirmation link.
    pub redirect_to: &'a str,
}

pub async fn sign_up(deps: &Deps<'_>, client: &Client, request: &SignUp<'_>) -> Result<SignedUp> {
    if deps.accounts.signup_disabled {
        return Err(Error::unprocessable(
            ErrorCode::SignupDisabled,
            "Signups not allowed for this instance",
        ));
    }
    let challenge = pkce::parse_params(request.code_challenge, request.code_challenge_method)?;
    let data = request.data.filter(|d| !d.is_null());
    if data.is_some_and(|d| !d.is_object()) {
        return Err(Error::validation("data must be a JSON object"));
    }
    if request.email.is_none() && request.phone.is_none() {
        return sign_in_anonymously(deps, client, data).await;
    }
    // GoTrue checks the password before anything else about an email or phone sign-up
    // (`validateSignupParams`), so a weak one is named as such whichever provider was asked
    // for, even a disabled one.
    let password = request
        .password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::validation("Signup requires a valid password"))?;
    password::check_new(deps.policy, password)?;
    match (request.email, request.phone) {
        (Some(_), Some(_)) => Err(Error::validation(
            "Only an email address or phone number should be provided on signup.",
        )),
        // A phone number: neither (anonymous) was handled above.
        (None, Some(phone)) => sign_up_with_phone(deps, client, phone, password, data, request.channel).await,
        // Handled above, before the password check; kept whole for the compiler.
        (None, None) => sign_in_anonymously(deps, client, data).await,
        (Some(email), None) => {
            let mail = Outgoing {
                redirect_to: request.redirect_to,
                pkce: challenge.as_ref(),
                check_frequency: false,
            };
            sign_up_with_email(deps, client, email, password, data, mail).await
        }
    }
}

async fn sign_up_with_phone(
    deps: &Deps<'_>,
    client: &Client,
    phone: &str,
    password: &str,
    data: Option<&Value>,
    channel: Option<&str>,
) -> Result<SignedUp> {
    // Refused before the (slow) hashing when phones are off or the number is bad.
    deps.outbox.sms(crate::auth::outbox::PhoneUse::SignUp)?;
    crate::auth::phone::normalize(phone)?;
    let password_hash = deps.hasher.hash(password).await.map_err(Error::internal)?;
    let phone_deps = phone_signup::Deps {
        db: deps.db,
        accounts: deps.accounts,
        outbox: deps.outbox,
        sessions: deps.sessions,
    };
    let request = PhoneSignUp {
        phone,
        password_hash: &password_hash,
        data,
        channel,
    };
    phone_signup::sign_up(&phone_deps, client, &request).await
}

async fn sign_in_anonymously(deps: &Deps<'_>, client: &Client, data: Option<&Value>) -> Result<SignedUp> {
    if !deps.accounts.anonymous_enabled {
        return Err(Error::unprocessable(
            ErrorCode::AnonymousProviderDisabled,
            "Anonymous sign-ins are disabled",
        ));
    }
    let mut tx = deps.db.begin().await?;
    let user = accounts::create_anonymous_user(&mut tx, deps.accounts, metadata(data)).await?;
    record(&mut tx, &user, Action::UserSignedUp, "anonymous", client).await?;
    let (tokens, user, identities) = session::start(&mut tx, deps.sessions, &user, "anonymous", client).await?;
    tx.commit().await?;
    user_hooks::after_user_created(deps.db, deps.accounts.after_user_created.as_ref(), user.id).await?;
    Ok(SignedUp::Session {
        tokens,
        user,
        identities,
    })
}

async fn sign_up_with_email(
    deps: &Deps<'_>,
    client: &Client,
    raw_email: &str,
    password: &str,
    data: Option<&Value>,
    mail: Outgoing<'_>,
) -> Result<SignedUp> {
    if !deps.accounts.email_enabled {
        return Err(Error::bad_request(
            ErrorCode::EmailProviderDisabled,
            "Email signups are disabled",
        ));
    }
    let email = accounts::normalize_email(raw_email)?;

    let mut conn = deps.hot.acquire().await?;
    let existing = users::find_by_email(&mut *conn, &email).await?;
    conn.release().await?;
    match existing {
        Some(existing) => repeated_sign_up(deps, client, existing, password, data, mail).await,
        None => new_email_account(deps, client, &email, password, data, mail).await,
    }
}

/// A new email account, signed in at once with autoconfirm, else waiting for confirmation.
async fn new_email_account(
    deps: &Deps<'_>,
    client: &Client,
    email: &str,
    password: &str,
    data: Option<&Value>,
    mail: Outgoing<'_>,
) -> Result<SignedUp> {
    let hash = deps.hasher.hash(password).await.map_err(Error::internal)?;
    let confirmed = deps.accounts.autoconfirm;
    let account = NewEmailAccount {
        email,
        password_hash: Some(&hash),
        user_metadata: metadata(data),
        confirmed,
        identity_in_metadata: true,
    };
    let mut conn = deps.hot.acquire().await?;
    let mut tx = conn.begin().await?;
    let (user, identities) = accounts::create_email_user(&mut tx, deps.accounts, account).await?;
    let user_id = user.id;
    record(&mut tx, &user, Action::UserSignedUp, "email", client).await?;
    let signed_up = if confirmed {
        let (tokens, user, _) = session::start(&mut tx, deps.sessions, &user, "password", client).await?;
        SignedUp::Session {
            tokens,
            user,
            identities,
        }
    } else {
        // Until the address is confirmed the user cannot sign in. The mail goes out inside
        // the transaction: if sending fails, the sign-up is rolled back and can be retried.
        // Its link confirms the account as this sign-up made it, password and metadata.
        let confirms = Confirms::Account;
        let action = MailAction::Confirmation;
        let sent = email::send_confirmation(&mut tx, deps.outbox, user.id, action, &mail, &confirms).await?;
        SignedUp::Pending {
            user: sent.user,
            identities,
        }
    };
    tx.commit().await?;
    conn.release().await?;
    user_hooks::after_user_created(deps.db, deps.accounts.after_user_created.as_ref(), user_id)
        .await
        .map_err(user_hooks::signup_hook_failed)?;
    Ok(signed_up)
}

/// Sign-up of an address that already has an account. With autoconfirm GoTrue says so
/// (`422 user_already_exists`); without it, it answers with a made-up user so that sign-up
/// does not reveal which emails are registered.
async fn repeated_sign_up(
    deps: &Deps<'_>,
    client: &Client,
    existing: UserRow,
    password: &str,
    data: Option<&Value>,
    mail: Outgoing<'_>,
) -> Result<SignedUp> {
    let autoconfirm = deps.accounts.autoconfirm;
    let unconfirmed = !autoconfirm && existing.email_confirmed_at.is_none();
    // Hashed before the transaction, as for a new account (hashing is slow).
    let password_hash = if unconfirmed {
        Some(deps.hasher.hash(password).await.map_err(Error::internal)?)
    } else {
        None
    };
    let mut tx = deps.db.begin().await?;
    record(&mut tx, &existing, Action::UserRepeatedSignup, "email", client).await?;
    if autoconfirm {
        tx.commit().await?;
        return Err(Error::unprocessable(
            ErrorCode::UserAlreadyExists,
            "User already registered",
        ));
    }
    if !unconfirmed {
        tx.commit().await?;
        return Ok(SignedUp::Pending {
            user: accounts::obfuscated_user(deps.accounts, &existing, data),
            identities: Vec::new(),
        });
    }
    // Unconfirmed: GoTrue sends the confirmation again, no more often than
    // GOTRUE_SMTP_MAX_FREQUENCY, and returns the user as stored. Nothing changes until the
    // link is followed: then the account is handed to the mailbox owner, with the password
    // given here (`auth::proven_address`). Whoever signed up before never proved the address,
    // so their password, identities and metadata go. GoTrue keeps the first password instead
    // and drops this one: the owner would need a password reset.
    let mail = Outgoing {
        check_frequency: true,
        ..mail
    };
    let confirms = Confirms::Address { password_hash };
    let action = MailAction::Confirmation;
    let sent = email::send_confirmation(&mut tx, deps.outbox, existing.id, action, &mail, &confirms).await?;
    let identities = identities::for_user(&mut *tx, existing.id).await?;
    tx.commit().await?;
    Ok(SignedUp::Pending {
        user: sent.user,
        identities,
    })
}

/// `data` as `user_metadata`: the object given, or `{}`.
fn metadata(data: Option<&Value>) -> Value {
    data.cloned().unwrap_or_else(|| json!({}))
}

async fn record(
    conn: &mut sqlx::PgConnection,
    user: &UserRow,
    action: Action,
    provider: &str,
    client: &Client,
) -> Result<()> {
    let traits = json!({ "provider": provider });
    audit::insert(
        conn,
        audit::Entry::by_user(user, action, Some(traits), &client.ip_string()),
    )
    .await?;
    Ok(())
}
