//! The admin API's users (`/admin/users`): list, read, create, update and delete, each
//! change in one transaction with its audit entry.

use crate::db::Pool;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::accounts::{self, AccountRules, AdminAccount};
use crate::auth::password::{self, Hasher};
use crate::auth::phone;
use crate::config::{PasswordConfig, parse_duration};
use crate::db::audit::{self, Action};
use crate::db::identities::{self, IdentityRow};
use crate::db::users::{self, AdminChanges, UserRow};
use crate::db::{mfa_factors, sessions};
use crate::error::{Error, ErrorCode, Result};

/// What the admin use cases need.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub hasher: &'a Hasher,
    /// The password policy (`GOTRUE_PASSWORD_*`).
    pub policy: &'a PasswordConfig,
    /// The defaults of new users (`aud`, `role`).
    pub accounts: &'a AccountRules,
}

/// Who acts, for the audit log: the admin token's `sub` (nil for a service key), its role,
/// and the client's address.
pub struct AdminActor<'a> {
    pub id: Uuid,
    pub role: &'a str,
    pub ip: String,
}

impl AdminActor<'_> {
    /// Records `action` with `traits`, as GoTrue does for admin actions.
    pub async fn record(&self, conn: &mut sqlx::PgConnection, action: Action, traits: Value) -> Result<()> {
        audit::insert(
            conn,
            audit::Entry::by_admin(self.id, self.role, action, traits, &self.ip),
        )
        .await?;
        Ok(())
    }
}

/// A user as the admin API sets it (`POST /admin/users`, `PUT /admin/users/{id}`); `None`
/// and blank values leave a field alone (update) or take the default (create).
#[derive(Debug, Default)]
pub struct UserFields<'a> {
    /// The new user's id, as given (only `POST` reads it; checked there as GoTrue checks it).
    pub id: Option<&'a str>,
    pub aud: Option<&'a str>,
    pub role: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub password: Option<&'a str>,
    /// An imported bcrypt or argon2 hash.
    pub password_hash: Option<&'a str>,
    pub email_confirm: bool,
    pub phone_confirm: bool,
    pub user_metadata: Option<&'a Value>,
    pub app_metadata: Option<&'a Value>,
    /// A duration such as `24h`, or `none` to lift a ban.
    pub ban_duration: Option<&'a str>,
}

/// The fields checked before any hashing or writing, in GoTrue's order: the addresses, then
/// the password (`password::check_new`, as on every path that sets one), the new user's id,
/// then the ban.
struct Checked<'a> {
    /// Only when creating.
    id: Option<Uuid>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<NewPassword<'a>>,
    /// `Some(None)` lifts a ban.
    banned_until: Option<Option<DateTime<Utc>>>,
}

enum NewPassword<'a> {
    Plain(&'a str),
    Imported(&'a str),
}

impl<'a> Checked<'a> {
    fn new(policy: &PasswordConfig, fields: &UserFields<'a>, creating: bool) -> Result<Checked<'a>> {
        let email = accounts::optional_email(fields.email)?;
        let phone = phone::optional(fields.phone)?;
        if creating && email.is_none() && phone.is_none() {
            return Err(Error::validation(
                "Cannot create a user without either an email or phone",
            ));
        }
        let password = new_password(policy, fields)?;
        let id = match creating {
            true => fields
                .id
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(new_user_id)
                .transpose()?,
            false => None,
        };
        let banned_until = fields.ban_duration.map(ban_until).transpose()?;
        Ok(Checked {
            id,
            email,
            phone,
            password,
            banned_until,
        })
    }

    /// The hash to store: a new argon2id hash, or the imported one.
    async fn password_hash(&self, hasher: &Hasher) -> Result<Option<String>> {
        match self.password {
            Some(NewPassword::Plain(password)) => Ok(Some(hasher.hash(password).await.map_err(Error::internal)?)),
            Some(NewPassword::Imported(hash)) => Ok(Some(hash.to_owned())),
            None => Ok(None),
        }
    }
}

fn new_password<'a>(policy: &PasswordConfig, fields: &UserFields<'a>) -> Result<Option<NewPassword<'a>>> {
    let password = fields.password.filter(|p| !p.is_empty());
    let imported = fields.password_hash.filter(|h| !h.is_empty());
    match (password, imported) {
        (Some(_), Some(_)) => Err(Error::validation(
            "Only a password or a password hash should be provided",
        )),
        (Some(password), None) => {
            password::check_new(policy, password)?;
            Ok(Some(NewPassword::Plain(password)))
        }
        (None, Some(hash)) => {
            // Stored only if it can be verified, at a bounded cost. It is not a password the
            // server sees, so there is no policy to apply (as in GoTrue).
            password::check_imported_hash(hash)?;
            Ok(Some(NewPassword::Imported(hash)))
        }
        (None, None) => Ok(None),
    }
}

/// A chosen id for a new user: any UUID but the nil one, which GoTrue refuses (nothing may
/// stand for "no user").
fn new_user_id(raw: &str) -> Result<Uuid> {
    let id = Uuid::parse_str(raw).map_err(|_| Error::validation("ID must conform to the uuid v4 format"))?;
    if id.is_nil() {
        return Err(Error::validation("ID cannot be a nil uuid"));
    }
    Ok(id)
}

/// `ban_duration`: `none` lifts a ban (`None`); a duration bans until now + duration.
fn ban_until(raw: &str) -> Result<Option<DateTime<Utc>>> {
    if raw.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let duration = parse_duration(raw)
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .ok_or_else(|| Error::validation(format!("invalid format for ban duration: {raw:?}")))?;
    Ok(Some(Utc::now() + duration))
}

/// GoTrue's traits of the admin entries.
fn traits(user: &UserRow) -> Value {
    json!({ "user_id": user.id, "user_email": user.email_or_empty(), "user_phone": user.phone })
}

/// The user `raw_id` names: a UUID of an existing user, else 404.
/// The user `raw_id` names, with GoTrue's 404s for a bad or unknown id.
pub async fn find(db: &Pool, raw_id: &str) -> Result<UserRow> {
    let id = Uuid::parse_str(raw_id)
        .map_err(|_| Error::not_found(ErrorCode::ValidationFailed, "user_id must be an UUID"))?;
    users::find_by_id(db, id)
        .await?
        .ok_or_else(|| Error::not_found(ErrorCode::UserNotFound, "User not found"))
}

/// One user with their identities.
pub async fn get(db: &Pool, raw_id: &str) -> Result<(UserRow, Vec<IdentityRow>)> {
    let user = find(db, raw_id).await?;
    let identities = identities::for_user(db, user.id).await?;
    Ok((user, identities))
}

/// One page of users, each with their identities, and how many match `filter` in all.
pub async fn list(
    db: &Pool,
    filter: Option<&str>,
    ascending: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<(UserRow, Vec<IdentityRow>)>, i64)> {
    let rows = users::list(db, filter, ascending, limit, offset).await?;
    let total = users::count(db, filter).await?;
    let ids: Vec<Uuid> = rows.iter().map(|u| u.id).collect();
    let mut all_identities = identities::for_users(db, &ids).await?;
    let page = rows
        .into_iter()
        .map(|user| {
            let (mine, rest): (Vec<_>, Vec<_>) = all_identities.drain(..).partition(|i| i.user_id == user.id);
            all_identities = rest;
            (user, mine)
        })
        .collect();
    Ok((page, total))
}

/// `POST /admin/users`: a user with an identity for each of email and phone, confirmed as
/// asked; no mail is sent.
pub async fn create(
    deps: &Deps<'_>,
    actor: &AdminActor<'_>,
    fields: UserFields<'_>,
) -> Result<(UserRow, Vec<IdentityRow>)> {
    let checked = Checked::new(deps.policy, &fields, true)?;
    let password_hash = checked.password_hash(deps.hasher).await?;
    let object_or_empty = |value: Option<&Value>| value.filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({}));
    let mut tx = deps.db.begin().await?;
    let (mut user, identities) = accounts::create_admin_user(
        &mut tx,
        deps.accounts,
        AdminAccount {
            id: checked.id.unwrap_or_else(Uuid::new_v4),
            aud: fields.aud.unwrap_or(&deps.accounts.aud),
            role: fields.role.unwrap_or(&deps.accounts.role),
            email: checked.email.as_deref(),
            phone: checked.phone.as_deref(),
            password_hash: password_hash.as_deref(),
            email_confirmed: fields.email_confirm,
            phone_confirmed: fields.phone_confirm,
            user_metadata: object_or_empty(fields.user_metadata),
            app_metadata: object_or_empty(fields.app_metadata),
        },
    )
    .await?;
    // `none` on a new user: nothing to lift.
    if let Some(Some(until)) = checked.banned_until {
        let changes = AdminChanges {
            banned_until: Some(Some(until)),
            ..Default::default()
        };
        user = users::apply_admin_changes(&mut *tx, user.id, &changes).await?;
    }
    actor.record(&mut tx, Action::UserSignedUp, traits(&user)).await?;
    tx.commit().await?;
    Ok((user, identities))
}

/// `PUT /admin/users/{id}`: the fields given, as given. A new password or a ban ends all of
/// the user's sessions.
pub async fn update(
    deps: &Deps<'_>,
    actor: &AdminActor<'_>,
    raw_id: &str,
    fields: UserFields<'_>,
) -> Result<(UserRow, Vec<IdentityRow>)> {
    let user = find(deps.db, raw_id).await?;
    let checked = Checked::new(deps.policy, &fields, false)?;
    let password_hash = checked.password_hash(deps.hasher).await?;
    let mut tx = deps.db.begin().await?;
    let changes = AdminChanges {
        email: checked.email.as_deref(),
        phone: checked.phone.as_deref(),
        role: fields.role.filter(|r| !r.is_empty()),
        confirm_email: fields.email_confirm,
        confirm_phone: fields.phone_confirm,
        banned_until: checked.banned_until,
    };
    let mut updated = apply_changes(&mut tx, user.id, &changes).await?;
    if let Some(metadata) = fields.user_metadata.filter(|m| m.is_object()) {
        updated = users::merge_user_metadata(&mut *tx, user.id, metadata).await?;
    }
    if let Some(metadata) = fields.app_metadata.filter(|m| m.is_object()) {
        updated = users::merge_app_metadata(&mut *tx, user.id, metadata).await?;
    }
    if let Some(hash) = &password_hash {
        updated = users::set_password(&mut *tx, user.id, hash).await?;
    }
    if password_hash.is_some() || updated.is_banned(Utc::now()) {
        sessions::delete_all_for_user(&mut *tx, user.id).await?;
    }
    actor.record(&mut tx, Action::UserModified, traits(&updated)).await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok((updated, identities))
}

/// The address, number, role, confirmations and ban, with the email identity following the
/// new address. A taken address or number is GoTrue's 422, whether the check sees it or a
/// concurrent update takes it between the check and the write (the unique index says so).
async fn apply_changes(conn: &mut sqlx::PgConnection, id: Uuid, changes: &AdminChanges<'_>) -> Result<UserRow> {
    if let Some(email) = changes.email
        && users::email_taken(&mut *conn, email, id).await?
    {
        return Err(accounts::email_exists());
    }
    if let Some(phone) = changes.phone
        && users::phone_taken(&mut *conn, phone, id).await?
    {
        return Err(accounts::phone_exists());
    }
    let updated = users::apply_admin_changes(&mut *conn, id, changes)
        .await
        .map_err(accounts::address_taken)?;
    if let Some(email) = changes.email {
        identities::set_email(&mut *conn, id, email, updated.email_confirmed_at.is_some()).await?;
    }
    Ok(updated)
}

/// `DELETE /admin/users/{id}`: the user and with it every session and refresh token; a soft
/// delete keeps the row (emails and phone freed, sign-in impossible).
pub async fn delete(deps: &Deps<'_>, actor: &AdminActor<'_>, raw_id: &str, soft: bool) -> Result<()> {
    let user = find(deps.db, raw_id).await?;
    let mut tx = deps.db.begin().await?;
    if soft {
        sessions::delete_all_for_user(&mut *tx, user.id).await?;
        identities::delete_for_user(&mut *tx, user.id).await?;
        // GoTrue hard-deletes a soft-deleted user's factors (a hard delete cascades).
        mfa_factors::delete_for_user(&mut *tx, user.id).await?;
        users::soft_delete(&mut *tx, user.id).await?;
    } else {
        users::delete(&mut *tx, user.id).await?;
    }
    actor.record(&mut tx, Action::UserDeleted, traits(&user)).await?;
    tx.commit().await?;
    Ok(())
}
