//! The custom access token hook (`GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_*`): before an access
//! token is signed, the hook gets `{user_id, claims, authentication_method}` and answers
//! `{claims}`, which are signed instead. What it answers is checked against GoTrue's minimum
//! schema first: a token missing `sub` or with a string `exp` would break every client and
//! every RLS policy, so such an answer is an error and no token (and no session) is issued.

use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use crate::auth::jwt::AccessClaims;
use crate::error::Error;
use crate::hooks::Hook;

/// The claims to sign for `claims`, as the hook changes them.
pub async fn customize(
    hook: &Hook,
    conn: &mut PgConnection,
    claims: &AccessClaims,
    authentication_method: &str,
) -> Result<Map<String, Value>, Error> {
    let input = json!({
        "user_id": claims.sub,
        "claims": claims,
        "authentication_method": authentication_method,
    });
    let output = hook.call(conn, input).await?;
    let claims = match output.get("claims") {
        Some(Value::Object(claims)) => claims.clone(),
        Some(_) => return Err(invalid("output claims field is not an object".into())),
        None => return Err(invalid("output claims field is missing".into())),
    };
    check_claims(&claims).map_err(|problems| {
        invalid(format!(
            "output claims do not conform to the expected schema: \n{}",
            problems.iter().map(|p| format!("- {p}\n")).collect::<String>()
        ))
    })?;
    Ok(claims)
}

/// GoTrue answers a bad hook result with a 500 carrying the reason, which the operator needs
/// to fix the hook; it names claims, never their values.
fn invalid(message: String) -> Error {
    Error::internal_with_message(message, "custom access token hook returned unusable claims")
}

/// The claims every token must carry (GoTrue's `MinimumViableTokenSchema`).
const REQUIRED: &[&str] = &[
    "aud",
    "exp",
    "iat",
    "sub",
    "email",
    "phone",
    "role",
    "aal",
    "session_id",
    "is_anonymous",
];

/// What GoTrue's schema says of each claim it knows, one problem a line.
pub fn check_claims(claims: &Map<String, Value>) -> Result<(), Vec<String>> {
    let mut problems: Vec<String> = REQUIRED
        .iter()
        .filter(|name| !claims.contains_key(**name))
        .map(|name| format!("{name} is required"))
        .collect();
    for (name, value) in claims {
        let expected = match name.as_str() {
            "aud" if value.is_string() || value.is_array() => continue,
            "aud" => "string or array",
            "exp" | "iat" | "nbf" if is_integer(value) => continue,
            "exp" | "iat" | "nbf" => "integer",
            "jti" | "iss" | "sub" | "email" | "phone" | "role" | "aal" | "session_id" | "client_id"
                if value.is_string() =>
            {
                continue;
            }
            "jti" | "iss" | "sub" | "email" | "phone" | "role" | "aal" | "session_id" | "client_id" => "string",
            "app_metadata" | "user_metadata" if value.is_object() => continue,
            "app_metadata" | "user_metadata" => "object",
            "amr"
                if value
                    .as_array()
                    .is_some_and(|items| items.iter().all(|i| i.is_string() || i.is_object())) =>
            {
                continue;
            }
            "amr" => "array of strings or objects",
            _ => continue,
        };
        problems.push(format!("{name}: Invalid type. Expected: {expected}"));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// JSON Schema's integer: any number without a fractional part (`1.0` too).
fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Map<String, Value> {
        let value = json!({
            "aud": "authenticated", "exp": 2, "iat": 1, "sub": "u", "email": "", "phone": "",
            "role": "authenticated", "aal": "aal1", "session_id": "s", "is_anonymous": false,
            "amr": [{"method": "password", "timestamp": 1}], "app_metadata": {}, "user_metadata": {},
            "tenant_id": "acme", "scopes": ["read", "write"],
        });
        value.as_object().unwrap().clone()
    }

    #[test]
    fn gotrues_claims_plus_extra_ones_pass() {
        assert_eq!(check_claims(&valid()), Ok(()));
        let mut claims = valid();
        claims.insert("aud".into(), json!(["authenticated", "api"]));
        claims.insert("exp".into(), json!(2.0));
        claims.insert("amr".into(), json!(["password"]));
        assert_eq!(check_claims(&claims), Ok(()));
    }

    /// Each row: a change to a valid set of claims, and the problem it must be reported as.
    #[test]
    fn missing_or_mistyped_claims_are_named() {
        let cases: &[(&str, Option<Value>, &str)] = &[
            ("sub", None, "sub is required"),
            ("role", None, "role is required"),
            ("is_anonymous", None, "is_anonymous is required"),
            ("session_id", None, "session_id is required"),
            ("exp", Some(json!("2")), "exp: Invalid type. Expected: integer"),
            ("exp", Some(json!(2.5)), "exp: Invalid type. Expected: integer"),
            ("iat", Some(json!(null)), "iat: Invalid type. Expected: integer"),
            ("sub", Some(json!(12)), "sub: Invalid type. Expected: string"),
            ("role", Some(json!(["admin"])), "role: Invalid type. Expected: string"),
            ("aud", Some(json!(1)), "aud: Invalid type. Expected: string or array"),
            (
                "app_metadata",
                Some(json!("x")),
                "app_metadata: Invalid type. Expected: object",
            ),
            (
                "amr",
                Some(json!([1])),
                "amr: Invalid type. Expected: array of strings or objects",
            ),
        ];
        for (name, value, problem) in cases {
            let mut claims = valid();
            match value {
                Some(value) => claims.insert((*name).into(), value.clone()),
                None => claims.remove(*name),
            };
            assert_eq!(check_claims(&claims), Err(vec![(*problem).to_owned()]), "{name}");
        }
    }
}
