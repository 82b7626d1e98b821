//! The two transports of GoTrue's auth hooks, behind one call: a Postgres function run in the
//! request's transaction (`pg-functions://`), or a POST signed per Standard Webhooks
//! (`https://`, `http://` on the local machine). Both take the hook's JSON input and give back
//! its JSON output; a hook that answers `{"error": {"http_code", "message"}}` becomes the
//! client's error. What each hook's input and output mean is for `auth::hooks`.

mod http;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::config::{HookConfig, HookKind, HookTarget};
use crate::db;
use crate::error::{Error, ErrorCode, Kind};

pub use http::HttpLimits;

/// GoTrue's statement timeout for `pg-functions://` hooks (`v0pgfunc.defaultTimeout`).
pub const POSTGRES_TIMEOUT: Duration = Duration::from_secs(2);

/// One enabled hook, ready to be called.
#[derive(Debug, Clone)]
pub struct Hook {
    kind: HookKind,
    transport: Transport,
}

#[derive(Debug, Clone)]
enum Transport {
    Postgres { function: String },
    Http(http::HttpHook),
}

impl Hook {
    pub fn new(config: &HookConfig) -> anyhow::Result<Hook> {
        Hook::with_limits(config, HttpLimits::default())
    }

    /// [`Hook::new`] with other HTTP timeouts (tests of the timeout and retry rules).
    pub fn with_limits(config: &HookConfig, limits: HttpLimits) -> anyhow::Result<Hook> {
        let transport = match &config.target {
            HookTarget::Postgres { function } => Transport::Postgres {
                function: function.clone(),
            },
            HookTarget::Http { url, secrets } => Transport::Http(http::HttpHook::new(url.clone(), secrets, limits)?),
        };
        Ok(Hook {
            kind: config.kind,
            transport,
        })
    }

    pub fn kind(&self) -> HookKind {
        self.kind
    }

    /// Calls the hook with `input` (a JSON object; GoTrue's `metadata` is added) and returns
    /// its output object. `conn` is the request's connection or transaction: a Postgres hook
    /// runs there, so its writes and the request's commit or roll back together. An output
    /// carrying `error` is turned into that error.
    pub async fn call(&self, conn: &mut PgConnection, mut input: Value) -> Result<Value, Error> {
        if let Some(object) = input.as_object_mut() {
            object.insert("metadata".into(), metadata(self.kind));
        }
        let started = Instant::now();
        let output = match &self.transport {
            Transport::Postgres { function } => call_postgres(conn, function, &input).await,
            Transport::Http(hook) => hook.call(&input).await,
        };
        let elapsed_us = started.elapsed().as_micros() as u64;
        let output = match output {
            Ok(output) => output,
            Err(err) => {
                tracing::warn!(hook = self.kind.wire_name(), duration_us = elapsed_us, error = %err, "hook failed");
                return Err(err);
            }
        };
        tracing::debug!(hook = self.kind.wire_name(), duration_us = elapsed_us, "hook ran");
        metrics::histogram!("latchkey_hook_duration_seconds", "hook" => self.kind.wire_name())
            .record(elapsed_us as f64 / 1e6);
        match output {
            Value::Null => Ok(json!({})),
            Value::Object(object) => {
                let output = Value::Object(object);
                match hook_error(&output) {
                    Some(err) => Err(err),
                    None => Ok(output),
                }
            }
            _ => Err(Error::internal_with_message(
                "Hook output is not a JSON object",
                format!("{} hook returned a non-object", self.kind.wire_name()),
            )),
        }
    }
}

/// GoTrue's `metadata` of every hook input.
fn metadata(kind: HookKind) -> Value {
    json!({
        "uuid": uuid::Uuid::new_v4(),
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "name": kind.wire_name(),
    })
}

async fn call_postgres(conn: &mut PgConnection, function: &str, input: &Value) -> Result<Value, Error> {
    match db::hooks::call_function(conn, function, input, POSTGRES_TIMEOUT).await {
        Ok(output) => Ok(output.unwrap_or(Value::Null)),
        // query_canceled: the statement timeout fired.
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("57014") => Err(Error::unprocessable(
            ErrorCode::HookTimeout,
            format!(
                "Failed to reach hook within maximum time of {:.6} seconds",
                POSTGRES_TIMEOUT.as_secs_f64()
            ),
        )),
        // A function that raises, is missing or may not be executed: the operator's hook is
        // broken. The client gets GoTrue's message; the cause goes to the log.
        Err(sqlx::Error::Database(err)) => Err(Error::internal_with_message("Error running hook URI", err)),
        Err(err) => Err(err.into()),
    }
}

/// `{"error": {"http_code": 403, "message": "..."}}`: the hook refuses. GoTrue's rule: an
/// error with a message is an error; `http_code` 0 (or missing) is a 500.
fn hook_error(output: &Value) -> Option<Error> {
    let error = output.get("error")?;
    let message = error.get("message").and_then(Value::as_str).filter(|m| !m.is_empty())?;
    let code = error.get("http_code").and_then(Value::as_u64).unwrap_or(0);
    let kind = match code {
        400 => Kind::BadRequest,
        401 => Kind::Unauthorized,
        403 => Kind::Forbidden,
        404 => Kind::NotFound,
        409 => Kind::Conflict,
        422 => Kind::Unprocessable,
        429 => Kind::TooManyRequests,
        402..=499 => Kind::BadRequest,
        _ => {
            return Some(Error::internal_with_message(
                message.to_owned(),
                format!("hook answered an error with http_code {code}"),
            ));
        }
    };
    Some(Error::new(kind, ErrorCode::UnexpectedFailure, message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_errors_follow_gotrues_shape() {
        let err = hook_error(&json!({"error": {"http_code": 403, "message": "Tenant suspended"}})).unwrap();
        assert_eq!((err.kind(), err.message()), (Kind::Forbidden, "Tenant suspended"));
        let err = hook_error(&json!({"error": {"http_code": 418, "message": "no"}})).unwrap();
        assert_eq!(err.kind(), Kind::BadRequest);
        let err = hook_error(&json!({"error": {"message": "broken"}})).unwrap();
        assert_eq!((err.kind(), err.message()), (Kind::Internal, "broken"));
        let err = hook_error(&json!({"error": {"http_code": 502, "message": "upstream"}})).unwrap();
        assert_eq!(err.kind(), Kind::Internal);
        // No message: not an error (GoTrue's IsError).
        assert!(hook_error(&json!({"error": {"http_code": 403}})).is_none());
        assert!(hook_error(&json!({"error": {"http_code": 403, "message": ""}})).is_none());
        assert!(hook_error(&json!({"claims": {}})).is_none());
        assert!(hook_error(&json!({"error": "text"})).is_none());
    }
}
