//! Logs, metrics and request ids: `GOTRUE_LOG_LEVEL`, `LATCHKEY_LOG_FORMAT`,
//! `GOTRUE_METRICS_*` (with GoTrue's Prometheus host and port variables) and
//! `GOTRUE_API_REQUEST_ID_HEADER`.

use axum::http::HeaderName;

use super::{ConfigError, Env};

/// How log lines are written (`LATCHKEY_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal (a container, a pipe, a file), text on one.
    Auto,
    /// One JSON object a line with GoTrue's field names, as Supabase's log pipeline reads them.
    Json,
    /// Readable text.
    Text,
}

/// `GOTRUE_LOG_LEVEL` and `LATCHKEY_LOG_FORMAT`: what `main` needs before anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// tracing's name for the level (`error`, `warn`, `info`, `debug`, `trace`).
    pub level: &'static str,
    pub format: LogFormat,
}

/// The Prometheus endpoint (`GOTRUE_METRICS_ENABLED` with `GOTRUE_METRICS_EXPORTER=prometheus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `false` also when metrics were asked for with an exporter Latchkey does not have.
    pub enabled: bool,
    /// The listener's own address, apart from the API's.
    pub host: String,
    pub port: u16,
}

pub(super) fn log_config(env: &Env) -> Result<LogConfig, ConfigError> {
    let level = match env.get(&["GOTRUE_LOG_LEVEL", "LOG_LEVEL"]) {
        None => "info",
        // logrus's level names (GoTrue's), mapped onto tracing's.
        Some((var, value)) => match value.to_ascii_lowercase().as_str() {
            "panic" | "fatal" | "error" => "error",
            "warn" | "warning" => "warn",
            "info" => "info",
            "debug" => "debug",
            "trace" => "trace",
            _ => {
                return Err(ConfigError {
                    var,
                    message: format!("{value:?} is not a level (error, warning, info, debug, trace)"),
                });
            }
        },
    };
    let format = match env.get(&["LATCHKEY_LOG_FORMAT"]) {
        None => LogFormat::Auto,
        Some((var, value)) => match value.to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            _ => {
                return Err(ConfigError {
                    var,
                    message: format!("{value:?} is neither json nor text"),
                });
            }
        },
    };
    Ok(LogConfig { level, format })
}

/// GoTrue's exporters; it defaults to `opentelemetry`, which Latchkey does not have, so unset
/// means the one it has.
pub(super) fn metrics_config(
    env: &Env,
    api_host: &str,
    warnings: &mut Vec<String>,
) -> Result<MetricsConfig, ConfigError> {
    let asked = env.bool_or(&["GOTRUE_METRICS_ENABLED"], false)?;
    let exporter = env.get(&["GOTRUE_METRICS_EXPORTER"]);
    let prometheus = match &exporter {
        None => true,
        Some((_, value)) if value.eq_ignore_ascii_case("prometheus") => true,
        Some((_, value)) if value.eq_ignore_ascii_case("opentelemetry") => false,
        Some((var, value)) => {
            return Err(ConfigError {
                var: var.clone(),
                message: format!("{value:?} is not an exporter (prometheus)"),
            });
        }
    };
    if asked && !prometheus {
        warnings.push(
            "GOTRUE_METRICS_EXPORTER=opentelemetry is not supported by Latchkey: metrics are off; \
             set it to prometheus for a /metrics endpoint"
                .into(),
        );
    }
    // GoTrue reads its prefixed key first, then the bare OpenTelemetry name.
    let host_names = [
        "GOTRUE_METRICS_OTEL_EXPORTER_PROMETHEUS_HOST",
        "OTEL_EXPORTER_PROMETHEUS_HOST",
    ];
    let port_names = [
        "GOTRUE_METRICS_OTEL_EXPORTER_PROMETHEUS_PORT",
        "OTEL_EXPORTER_PROMETHEUS_PORT",
    ];
    Ok(MetricsConfig {
        enabled: asked && prometheus,
        // GoTrue listens on 0.0.0.0; here the API's host is the default, so a laptop's metrics
        // stay on loopback while a container (GOTRUE_API_HOST=0.0.0.0) can be scraped.
        host: env.string_or(&host_names, api_host),
        port: env.parse_or(&port_names, 9100u16)?,
    })
}

/// `GOTRUE_API_REQUEST_ID_HEADER`: the header a proxy in front puts its request id in. Unset,
/// every request gets a fresh id and the client's `X-Request-Id` is not believed.
pub(super) fn request_id_header(env: &Env) -> Result<Option<HeaderName>, ConfigError> {
    match env.get(&["GOTRUE_API_REQUEST_ID_HEADER", "REQUEST_ID_HEADER"]) {
        None => Ok(None),
        Some((var, value)) => HeaderName::from_bytes(value.as_bytes())
            .map(Some)
            .map_err(|_| ConfigError {
                var,
                message: format!("{value:?} is not a header name"),
            }),
    }
}
