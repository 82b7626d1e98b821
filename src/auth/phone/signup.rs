//! Phone sign-up (`POST /signup` with `phone` and `password`) and sign-in by code
//! (`POST /otp` with `phone`), which signs unknown numbers up first, as in GoTrue.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::send::{self, SentText, Text};
use crate::auth::accounts::{self, AccountRules, SignedUp, count_sign_up};
use crate::auth::outbox::{Outbox, PhoneUse};
use crate::auth::session::{self, Client, Sessions};
use crate::auth::user_hooks;
use crate::db::Pool;
use crate::db::audit::{self, Action};
use crate::db::identities::{self, IdentityRow};
use crate::db::one_time_tokens::Confirms;
use crate::db::users::{self, NewUser, UserRow};
use crate::error::{Error, ErrorCode, Result};
use crate::sms::Channel;

/// What the phone flows that may create a user need.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub accounts: &'a AccountRules,
    pub outbox: &'a Outbox,
    pub sessions: &'a Sessions,
}

/// A phone sign-up; the password is already checked against the policy and hashed.
pub struct PhoneSignUp<'a> {
    pub phone: &'a str,
    pub password_hash: &'a str,
    pub data: Option<&'a Value>,
    pub channel: Option<&'a str>,
}

/// `POST /signup` with a phone number (GoTrue's `Signup`, phone provider).
pub async fn sign_up(deps: &Deps<'_>, client: &Client, request: &PhoneSignUp<'_>) -> Result<SignedUp> {
    deps.outbox.sms(PhoneUse::SignUp)?;
    let phone = super::normalize(request.phone)?;
    let channel = super::channel(request.channel)?;
    let autoconfirm = deps.outbox.sms_settings().autoconfirm;
    let mut tx = deps.db.begin().await?;
    let existing = users::find_by_phone(&mut *tx, &phone).await?;
    let ip = client.ip_string();
    let signed_up = match existing {
        Some(user) if user.phone_confirmed_at.is_some() || autoconfirm => {
            // GoTrue: taken numbers are refused under autoconfirm; otherwise the answer is
            // a made-up user, so that sign-up does not tell which numbers are registered.
            record(&mut tx, &user, Action::UserRepeatedSignup, &ip).await?;
            tx.commit().await?;
            if autoconfirm || deps.accounts.autoconfirm {
                return Err(Error::unprocessable(
                    ErrorCode::UserAlreadyExists,
                    "User already registered",
                ));
            }
            return Ok(SignedUp::Pending {
                user: made_up_user(deps.accounts, &user, request.data),
                identities: Vec::new(),
            });
        }
        Some(user) => {
            // Never confirmed: the code goes again, and proves the number alone. Whoever
            // verifies it gets the account with this sign-up's password; what someone else
            // set before is dropped (`auth::phone::verify`).
            let confirms = Confirms::Address {
                password_hash: Some(request.password_hash.to_owned()),
            };
            let sent = send_confirmation(&mut tx, deps.outbox, &user, &phone, channel, &confirms).await?;
            let identities = identities::for_user(&mut *tx, sent.user.id).await?;
            SignedUp::Pending {
                user: sent.user,
                identities,
            }
        }
        None => {
            let (user, identities) = create_phone_user(
                &mut tx,
                deps.accounts,
                &phone,
                Some(request.password_hash),
                request.data,
                autoconfirm,
            )
            .await?;
            record(&mut tx, &user, Action::UserSignedUp, &ip).await?;
            if autoconfirm {
                let (tokens, user, identities) =
                    session::start(&mut tx, deps.sessions, &user, "password", client).await?;
                tx.commit().await?;
                return Ok(SignedUp::Session {
                    tokens,
                    user,
                    identities,
                });
            }
            // The code confirms the account as this sign-up made it.
            let sent = send_confirmation(&mut tx, deps.outbox, &user, &phone, channel, &Confirms::Account).await?;
            SignedUp::Pending {
                user: sent.user,
                identities,
            }
        }
    };
    tx.commit().await?;
    Ok(signed_up)
}

/// A request for a sign-in code by text message.
pub struct OtpRequest<'a> {
    pub phone: &'a str,
    pub channel: Option<&'a str>,
    pub create_user: bool,
    pub data: Option<&'a Value>,
}

/// `POST /otp` with a phone number (GoTrue's `SmsOtp`): a confirmed number gets a code; an
/// unknown one is signed up (without a password) unless `create_user` is false, and gets the
/// confirmation code, which signs in just the same. Returns the gateway's message id (empty
/// for a new user, as GoTrue answers `{}` then).
pub async fn send_otp(deps: &Deps<'_>, client: &Client, request: &OtpRequest<'_>) -> Result<String> {
    deps.outbox.sms(PhoneUse::SendCode)?;
    let phone = super::normalize(request.phone)?;
    let channel = super::channel(request.channel)?;
    let autoconfirm = deps.outbox.sms_settings().autoconfirm;
    let ip = client.ip_string();
    let mut tx = deps.db.begin().await?;
    let user = match users::find_by_phone(&mut *tx, &phone).await? {
        // Like GoTrue, this says that the number is unknown: the caller asked not to sign up.
        None if !request.create_user => {
            return Err(Error::unprocessable(
                ErrorCode::OtpDisabled,
                "Signups not allowed for otp",
            ));
        }
        None => {
            if deps.accounts.signup_disabled {
                return Err(Error::unprocessable(
                    ErrorCode::SignupDisabled,
                    "Signups not allowed for this instance",
                ));
            }
            let (user, _) = create_phone_user(&mut tx, deps.accounts, &phone, None, request.data, autoconfirm).await?;
            record(&mut tx, &user, Action::UserSignedUp, &ip).await?;
            if !autoconfirm {
                send_confirmation(&mut tx, deps.outbox, &user, &phone, channel, &Confirms::Account).await?;
                tx.commit().await?;
                return Ok(String::new());
            }
            user
        }
        Some(user) => user,
    };
    // A number never confirmed: its code proves the number alone, and the account goes to
    // whoever verifies it, without a password someone else may have set.
    let confirms = match user.phone_confirmed_at {
        Some(_) => Confirms::Account,
        None => Confirms::Address { password_hash: None },
    };
    let traits = json!({ "channel": channel_name(channel) });
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(&user, Action::UserRecoveryRequested, Some(traits), &ip),
    )
    .await?;
    let sent = send_confirmation(&mut tx, deps.outbox, &user, &phone, channel, &confirms).await?;
    tx.commit().await?;
    Ok(sent.message_id)
}

async fn send_confirmation(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user: &UserRow,
    phone: &str,
    channel: Channel,
    confirms: &Confirms,
) -> Result<SentText> {
    send::send_code(conn, outbox, user.id, Text::Confirmation, phone, channel, confirms).await
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "sms",
        Channel::Whatsapp => "whatsapp",
    }
}

/// A phone user with its `phone` identity; `app_metadata` names the provider, and the
/// identity's claims go into `user_metadata` over `data`, as GoTrue's sign-up does.
pub async fn create_phone_user(
    conn: &mut PgConnection,
    rules: &AccountRules,
    phone: &str,
    password_hash: Option<&str>,
    data: Option<&Value>,
    confirmed: bool,
) -> Result<(UserRow, Vec<IdentityRow>)> {
    let id = Uuid::new_v4();
    let claims = json!({
        "sub": id.to_string(),
        "phone": phone,
        "email_verified": false,
        "phone_verified": false,
    });
    let mut user_metadata = match data {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let mut identity_data = user_metadata.clone();
    if let Value::Object(claims) = &claims {
        for (key, value) in claims {
            user_metadata.insert(key.clone(), value.clone());
            identity_data.insert(key.clone(), value.clone());
        }
    }
    let app_metadata = json!({ "provider": "phone", "providers": ["phone"] });
    let new_user = NewUser {
        id,
        aud: &rules.aud,
        role: &rules.role,
        email: None,
        phone: Some(phone),
        encrypted_password: password_hash,
        email_confirmed: false,
        phone_confirmed: confirmed,
        confirmation_sent: false,
        app_metadata: &app_metadata,
        user_metadata: &Value::Object(user_metadata),
        is_anonymous: false,
    };
    user_hooks::before_user_created(conn, rules.before_user_created.as_ref(), &new_user).await?;
    let user = users::insert(&mut *conn, &new_user).await.map_err(|err| {
        // Two sign-ups of one number racing: the loser sees the unique index.
        if crate::db::is_unique_violation(&err, "_auth_users_phone_key") {
            Error::unprocessable(ErrorCode::UserAlreadyExists, "User already registered")
        } else {
            err.into()
        }
    })?;
    let identity_data = Value::Object(identity_data);
    let identity = identities::insert(&mut *conn, user.id, "phone", &user.id.to_string(), &identity_data).await?;
    count_sign_up("phone");
    Ok((user, vec![identity]))
}

/// GoTrue's `sanitizeUser` for a number that is already registered: the made-up user of
/// `accounts::obfuscated_user`, shaped like a new phone user.
fn made_up_user(rules: &AccountRules, existing: &UserRow, data: Option<&Value>) -> UserRow {
    let mut fake = accounts::obfuscated_user(rules, existing, data);
    fake.email = None;
    fake.phone = existing.phone.clone();
    fake.phone_change = None;
    fake.phone_change_sent_at = None;
    fake.raw_app_meta_data = json!({ "provider": "phone", "providers": ["phone"] });
    fake
}

async fn record(conn: &mut PgConnection, user: &UserRow, action: Action, ip: &str) -> Result<()> {
    let traits = json!({ "provider": "phone" });
    audit::insert(conn, audit::Entry::by_user(user, action, Some(traits), ip)).await?;
    Ok(())
}
