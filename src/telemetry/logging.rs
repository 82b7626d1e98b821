//! The log subscriber. On a terminal (or with `LATCHKEY_LOG_FORMAT=text`) readable lines; off
//! one (a container, a pipe) or with `LATCHKEY_LOG_FORMAT=json`, one JSON object a line with
//! GoTrue's field names, which Supabase's log pipeline (Vector into Logflare) and Studio read:
//! `level` (logrus's names: `warning`, not `warn`), `msg`, `time` (RFC 3339, UTC, seconds, as
//! GoTrue's formatter writes it), `component`, and every field of the event and of the request
//! it belongs to (`request_id`, `method`, `path`, `remote_addr`, see `api::observe`).

use std::io::IsTerminal;

use json_subscriber::JsonLayer;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

/// Installs the process's log subscriber (once; later calls do nothing). `RUST_LOG`, when
/// set, replaces the level filter.
pub fn init(config: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn", config.level)));
    let json = match config.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(json_layer()).try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
}

fn json_layer<S>() -> JsonLayer<S, fn() -> std::io::Stderr>
where
    S: tracing::Subscriber + for<'lookup> tracing_subscriber::registry::LookupSpan<'lookup>,
{
    let mut layer = JsonLayer::stderr();
    layer.add_dynamic_field("level", |event, _| Some(logrus_level(*event.metadata().level())));
    layer.with_timer("time", GoTrueTime);
    layer.add_dynamic_field("component", |event, _| Some(component(event.metadata().target())));
    // The request's fields (request_id, method, path, remote_addr) on every line it logs, as
    // GoTrue's request-scoped logger does.
    layer.with_top_level_flattened_span_list();
    layer.with_flattened_event_with_renames(|name, _| if name == "message" { "msg" } else { name }, ());
    layer
}

/// logrus's level names, which GoTrue's JSON carries.
fn logrus_level(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// GoTrue names the part of the server a line comes from (`api`, `sql`, ...): here the module
/// below the crate (`latchkey::api::observe` → `api`), `sql` for the database driver, and the
/// crate's name for other libraries.
fn component(target: &str) -> &str {
    let mut parts = target.split("::");
    match (parts.next(), parts.next()) {
        (Some("latchkey"), Some(module)) => module,
        (Some("sqlx"), _) => "sql",
        (Some(krate), _) => krate,
        (None, _) => "",
    }
}

/// RFC 3339 in UTC to the second (`2026-12-05T10:00:00Z`), GoTrue's `time`.
struct GoTrueTime;

impl FormatTime for GoTrueTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = chrono::Utc::now();
        write!(w, "{}", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_name_the_module() {
        assert_eq!(component("latchkey::api::observe"), "api");
        assert_eq!(component("latchkey::startup"), "startup");
        assert_eq!(component("sqlx::query"), "sql");
        assert_eq!(component("hyper_util::server"), "hyper_util");
        assert_eq!(logrus_level(Level::WARN), "warning");
    }
}
