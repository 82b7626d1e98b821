//! The `user` of a hook's input for a user that exists: GoTrue's user object (`models.User`
//! as its API shows it), with identities and factors, never a password hash or a token.

use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use crate::db::identities::{self, IdentityRow};
use crate::db::users::UserRow;
use crate::error::Result;

/// `user` as GoTrue serialises it, its identities read on `conn` (the request's transaction,
/// so a user written in it is seen with its identity).
pub async fn load(conn: &mut PgConnection, user: &UserRow) -> Result<Value> {
    let identities = identities::for_user(&mut *conn, user.id).await?;
    Ok(user_object(user, &identities))
}

/// GoTrue's `omitempty` fields are left out when unset, as in its JSON.
pub fn user_object(user: &UserRow, identities: &[IdentityRow]) -> Value {
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            object.insert(key.to_owned(), value);
        }
    };
    put("id", json!(user.id));
    put("aud", json!(user.aud));
    put("role", json!(user.role));
    put("email", json!(user.email_or_empty()));
    put("email_confirmed_at", json!(user.email_confirmed_at));
    put("invited_at", json!(user.invited_at));
    put("phone", json!(user.phone.as_deref().unwrap_or_default()));
    put("phone_confirmed_at", json!(user.phone_confirmed_at));
    put("confirmation_sent_at", json!(user.confirmation_sent_at));
    put("confirmed_at", json!(user.confirmed_at));
    put("recovery_sent_at", json!(user.recovery_sent_at));
    put(
        "new_email",
        json!(user.email_change.as_deref().filter(|e| !e.is_empty())),
    );
    put("email_change_sent_at", json!(user.email_change_sent_at));
    put(
        "new_phone",
        json!(user.phone_change.as_deref().filter(|p| !p.is_empty())),
    );
    put("phone_change_sent_at", json!(user.phone_change_sent_at));
    put("reauthentication_sent_at", json!(user.reauthentication_sent_at));
    put("last_sign_in_at", json!(user.last_sign_in_at));
    put("app_metadata", user.raw_app_meta_data.clone());
    put("user_metadata", user.raw_user_meta_data.clone());
    if !user.factors.is_empty() {
        let factors: Vec<Value> = user
            .factors
            .iter()
            .map(|factor| {
                json!({
                    "id": factor.id,
                    "created_at": factor.created_at,
                    "updated_at": factor.updated_at,
                    "status": factor.status,
                    "friendly_name": factor.friendly_name,
                    "factor_type": factor.factor_type,
                    "phone": factor.phone.as_deref().unwrap_or_default(),
                    "last_challenged_at": factor.last_challenged_at,
                })
            })
            .collect();
        put("factors", Value::Array(factors));
    }
    let identities: Vec<Value> = identities.iter().map(identity_object).collect();
    put("identities", Value::Array(identities));
    put("created_at", json!(user.created_at));
    put("updated_at", json!(user.updated_at));
    put("banned_until", json!(user.banned_until));
    put("deleted_at", json!(user.deleted_at));
    put("is_anonymous", json!(user.is_anonymous));
    Value::Object(object)
}

/// GoTrue's identity object: `identity_id` is the row, `id` the provider's subject.
fn identity_object(identity: &IdentityRow) -> Value {
    let mut object = json!({
        "identity_id": identity.id,
        "id": identity.provider_id,
        "user_id": identity.user_id,
        "identity_data": identity.identity_data,
        "provider": identity.provider,
        "created_at": identity.created_at,
        "updated_at": identity.updated_at,
    });
    if let Some(last) = identity.last_sign_in_at {
        object["last_sign_in_at"] = json!(last);
    }
    if let Some(email) = &identity.email {
        object["email"] = json!(email);
    }
    object
}
