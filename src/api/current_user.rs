//! `GET /user`'s answer and a refresh's, written straight from the row (issue #24). The user
//! is the same object as [`UserResponse`](crate::api::types::UserResponse), byte for byte: the
//! same fields in the same order, the same rules for leaving them out; the session around it
//! is [`SessionResponse`](crate::api::types::SessionResponse)'s. But neither is built. Strings
//! come borrowed from the row, and the JSON columns go from their text into the answer
//! without `serde_json::Value`s. Building those values and writing them out again was most
//! of a `GET /user`'s own work.

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::ser::{Error as _, Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::api::timestamp;
use crate::api::types::FactorResponse;
use crate::auth::session::Tokens;
use crate::db::users::current::{IdentityView, UserView};
use crate::error::Error;

/// A user object takes about 1 KB, more with metadata.
const INITIAL_CAPACITY: usize = 2048;

pub fn response(user: &UserView<'_>) -> Result<Response, Error> {
    written(|serializer| user_object(user, serializer))
}

/// A session (`SessionResponse`'s fields, in its order; a refresh has no weak password or
/// provider tokens) for `user`.
pub fn session_response(tokens: &Tokens, user: &UserView<'_>) -> Result<Response, Error> {
    written(|serializer| {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("access_token", &tokens.access_token)?;
        map.serialize_entry("token_type", "bearer")?;
        map.serialize_entry("expires_in", &tokens.expires_in)?;
        map.serialize_entry("expires_at", &tokens.expires_at)?;
        map.serialize_entry("refresh_token", &tokens.refresh_token)?;
        map.serialize_entry("user", &UserObject(user))?;
        map.end()
    })
}

type BodySerializer<'b> = &'b mut serde_json::Serializer<&'b mut Vec<u8>>;

fn written(write: impl for<'b> FnOnce(BodySerializer<'b>) -> serde_json::Result<()>) -> Result<Response, Error> {
    let mut body = Vec::with_capacity(INITIAL_CAPACITY);
    write(&mut serde_json::Serializer::new(&mut body))
        .map_err(|err| Error::internal(format!("writing the user: {err}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

struct UserObject<'a, 'r>(&'a UserView<'r>);

impl Serialize for UserObject<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        user_object(self.0, serializer)
    }
}

/// The fields of `UserResponse`, in its order.
fn user_object<S: Serializer>(user: &UserView<'_>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    map.serialize_entry("id", &user.id)?;
    map.serialize_entry("aud", user.aud)?;
    map.serialize_entry("role", user.role)?;
    map.serialize_entry("email", user.email.unwrap_or(""))?;
    optional_time(&mut map, "email_confirmed_at", user.email_confirmed_at)?;
    optional_time(&mut map, "invited_at", user.invited_at)?;
    map.serialize_entry("phone", user.phone.unwrap_or(""))?;
    optional_time(&mut map, "phone_confirmed_at", user.phone_confirmed_at)?;
    optional_time(&mut map, "confirmation_sent_at", user.confirmation_sent_at)?;
    optional_time(&mut map, "confirmed_at", user.confirmed_at)?;
    optional_time(&mut map, "recovery_sent_at", user.recovery_sent_at)?;
    if let Some(new_email) = user.email_change.filter(|e| !e.is_empty()) {
        map.serialize_entry("new_email", new_email)?;
    }
    optional_time(&mut map, "email_change_sent_at", user.email_change_sent_at)?;
    if let Some(new_phone) = user.phone_change.filter(|p| !p.is_empty()) {
        map.serialize_entry("new_phone", new_phone)?;
    }
    optional_time(&mut map, "phone_change_sent_at", user.phone_change_sent_at)?;
    optional_time(&mut map, "reauthentication_sent_at", user.reauthentication_sent_at)?;
    optional_time(&mut map, "last_sign_in_at", user.last_sign_in_at)?;
    map.serialize_entry("app_metadata", &Streamed(user.raw_app_meta_data.0))?;
    map.serialize_entry("user_metadata", &Streamed(user.raw_user_meta_data.0))?;
    if !user.factors.is_empty() {
        let factors: Vec<FactorResponse> = user.factors.iter().cloned().map(FactorResponse::from).collect();
        map.serialize_entry("factors", &factors)?;
    }
    map.serialize_entry("identities", &Identities(&user.identities))?;
    map.serialize_entry("created_at", &Time(user.created_at))?;
    map.serialize_entry("updated_at", &Time(user.updated_at))?;
    optional_time(&mut map, "banned_until", user.banned_until)?;
    optional_time(&mut map, "deleted_at", user.deleted_at)?;
    map.serialize_entry("is_anonymous", &user.is_anonymous)?;
    map.end()
}

/// `IdentityResponse`'s fields, in its order.
struct Identities<'a, 'r>(&'a [IdentityView<'r>]);

impl Serialize for Identities<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Identity))
    }
}

struct Identity<'a, 'r>(&'a IdentityView<'r>);

impl Serialize for Identity<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let identity = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("identity_id", &identity.id)?;
        map.serialize_entry("id", &identity.provider_id)?;
        map.serialize_entry("user_id", &identity.user_id)?;
        map.serialize_entry("identity_data", &Streamed(identity.identity_data))?;
        map.serialize_entry("provider", &identity.provider)?;
        optional_time(&mut map, "last_sign_in_at", identity.last_sign_in_at)?;
        map.serialize_entry("created_at", &Time(identity.created_at))?;
        map.serialize_entry("updated_at", &Time(identity.updated_at))?;
        if let Some(email) = &identity.email {
            map.serialize_entry("email", email)?;
        }
        map.end()
    }
}

fn optional_time<M: SerializeMap>(map: &mut M, key: &'static str, at: Option<DateTime<Utc>>) -> Result<(), M::Error> {
    match at {
        Some(at) => map.serialize_entry(key, &Time(at)),
        None => Ok(()),
    }
}

struct Time(DateTime<Utc>);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        timestamp::one(&self.0, serializer)
    }
}

/// JSON text written as a `serde_json::Value` parsed from it would be: compact, with the
/// serializer's escapes and numbers, and object keys sorted (as Go writes a map, and as
/// GoTrue's clients get them). A column is an object of mostly scalars (`email`, `sub`,
/// `provider`), so only its top level is split into borrowed keys, written sorted, and its
/// scalars re-written token by token (`serde_transcode`). Nested objects and arrays go
/// through a `Value`. So does an object whose keys hold an escape, which cannot be borrowed.
/// Splitting nested levels the same way would parse each level again, a cost that grows with
/// the depth the user chose.
struct Streamed<'r>(&'r RawValue);

impl Serialize for Streamed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.get();
        if let Some(b'{') = first_byte(text)
            && let Ok(object) = serde_json::from_str::<BTreeMap<&str, &RawValue>>(text)
        {
            return serializer.collect_map(object.into_iter().map(|(key, value)| (key, Member(value))));
        }
        Member(self.0).serialize(serializer)
    }
}

/// A value inside a column: a scalar re-written as it is, a container through a `Value`.
struct Member<'r>(&'r RawValue);

impl Serialize for Member<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.get();
        match first_byte(text) {
            Some(b'{' | b'[') => serde_json::from_str::<Value>(text)
                .map_err(S::Error::custom)?
                .serialize(serializer),
            _ => {
                let mut tokens = serde_json::Deserializer::from_str(text);
                serde_transcode::transcode(&mut tokens, serializer).map_err(S::Error::custom)
            }
        }
    }
}

fn first_byte(text: &str) -> Option<u8> {
    text.trim_start().as_bytes().first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(text: &str) -> String {
        let raw = serde_json::from_str::<&RawValue>(text).unwrap();
        serde_json::to_string(&Streamed(raw)).unwrap()
    }

    /// What the answer held before: the text parsed into a `Value` and written out.
    fn as_value(text: &str) -> String {
        serde_json::to_string(&serde_json::from_str::<Value>(text).unwrap()).unwrap()
    }

    #[test]
    fn json_columns_come_out_as_a_value_writes_them() {
        // As Postgres writes jsonb: spaces after ':' and ',', shorter keys first.
        let stored = [
            r#"{"a": 1, "xs": [1, 2.50, -3, 1e2, 18446744073709551615, 1.5e300], "say": "a, b: {c}", "deep": {"t": true, "k": null, "b": [{"z": 1, "y": "\u00e9"}]}}"#,
            r#"{"quote \" key": "value", "a": "\u0001\t/"}"#,
            r#"[{"b": 1, "a": 2}, [], {}, "x", null]"#,
            r#"{}"#,
            r#"  "just a string"  "#,
            r#"{"provider": "email", "providers": ["email", "phone"]}"#,
        ];
        // Deep nesting, which the user chooses: still one `Value` for all of it.
        let deep = format!(
            "{}{}",
            r#"{"b": 1, "a": "#.repeat(100),
            "{}".to_owned() + &"}".repeat(100)
        );
        let stored = stored.iter().map(|text| text.to_string()).chain([deep]);
        for text in stored {
            assert_eq!(streamed(&text), as_value(&text), "{text}");
        }
    }
}
