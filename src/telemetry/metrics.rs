//! Prometheus metrics: the recorder behind the `metrics` facade, the names and help texts of
//! everything Latchkey records, and the gauges read at each scrape (database pools, the
//! password-hashing queue).
//!
//! Why `metrics` + `metrics-exporter-prometheus` rather than `prometheus` or OpenTelemetry:
//! the facade lets any module (auth, the rate limiter, a Redis store) record with one macro
//! and no handle to pass around, costs nothing when no recorder is installed, and the
//! exporter renders the Prometheus text format that GoTrue's `GOTRUE_METRICS_EXPORTER=
//! prometheus` serves. Labels are always from small fixed sets (route templates, GoTrue error
//! codes, methods), never raw paths or client data, so the series stay bounded.

use std::sync::OnceLock;

use anyhow::Context;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::auth::password::Hasher;
use crate::config::EmailKind;
use crate::db::hot::HotPool;

pub const HTTP_REQUESTS: &str = "latchkey_http_requests_total";
pub const HTTP_DURATION: &str = "latchkey_http_request_duration_seconds";
pub const AUTH_FAILURES: &str = "latchkey_auth_failures_total";
pub const SIGN_INS: &str = "latchkey_sign_ins_total";
pub const SIGN_UPS: &str = "latchkey_sign_ups_total";
pub const REFRESHES: &str = "latchkey_token_refreshes_total";
pub const RATE_LIMITED: &str = "latchkey_rate_limit_refusals_total";
pub const EMAILS_SENT: &str = "latchkey_emails_sent_total";
pub const EMAILS_FAILED: &str = "latchkey_emails_failed_total";
pub const SMS_SENT: &str = crate::sms::SENT_METRIC;
pub const SMS_FAILED: &str = crate::sms::FAILED_METRIC;
pub const DB_CONNECTIONS: &str = "latchkey_db_connections";
pub const DB_WAITING: &str = "latchkey_db_acquires_waiting";
pub const HASHES_QUEUED: &str = "latchkey_password_hashes_queued";
/// Recorded by the Redis rate-limit store when Redis cannot be reached.
pub const REDIS_FAILURES: &str = "latchkey_rate_limit_redis_failures_total";

/// Request latency buckets, in seconds: from a cached `GET /user` to the request timeout.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Whether the recorder is installed: without it nothing is recorded, and the per-request
/// code skips building labels for nothing.
pub fn installed() -> bool {
    HANDLE.get().is_some()
}

/// The recorder, installed for the process on first use (servers started later in the same
/// process, as in the tests, share it).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .context("histogram buckets")?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("another metrics recorder is installed")?;
    describe();
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// Help texts, and a zero for the counters that may not move for a long time (so dashboards
/// show 0 rather than no data).
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency, by method, route template and status"
    );
    describe_counter!(
        AUTH_FAILURES,
        "Requests refused with a 4xx, by route template and GoTrue error code"
    );
    describe_counter!(
        SIGN_INS,
        "Sessions started, by sign-in method (password, otp, oauth, anonymous, ...)"
    );
    describe_counter!(SIGN_UPS, "Users created, by how (email, anonymous, oauth, admin)");
    describe_counter!(REFRESHES, "Refresh-token grants that handed out a session");
    describe_counter!(RATE_LIMITED, "Requests refused with 429, by rate-limit group");
    describe_counter!(EMAILS_SENT, "Emails handed to the mail server, by kind");
    describe_counter!(EMAILS_FAILED, "Emails that could not be sent, by kind");
    describe_counter!(SMS_SENT, "Texts handed to the SMS provider, by provider");
    describe_counter!(
        SMS_FAILED,
        "Texts the SMS provider refused or did not answer in time, by provider"
    );
    describe_gauge!(
        DB_CONNECTIONS,
        "Database connections, by pool (main, hot) and state (in_use, idle)"
    );
    describe_gauge!(DB_WAITING, "Requests waiting for a connection of the hot-path pool");
    describe_gauge!(HASHES_QUEUED, "Password hashes waiting for a hashing thread");
    describe_counter!(REDIS_FAILURES, "Rate-limit checks that could not reach Redis");
    for name in [SMS_SENT, SMS_FAILED] {
        metrics::counter!(name).absolute(0);
    }
}

/// What the gauges are read from at each scrape.
#[derive(Clone, Debug)]
pub struct Sources {
    pub db: PgPool,
    pub hot: HotPool,
    pub hasher: Hasher,
}

impl Sources {
    /// Sets the gauges to the current state.
    pub fn refresh(&self) {
        let size = self.db.size() as f64;
        let idle = self.db.num_idle() as f64;
        metrics::gauge!(DB_CONNECTIONS, "pool" => "main", "state" => "in_use").set((size - idle).max(0.0));
        metrics::gauge!(DB_CONNECTIONS, "pool" => "main", "state" => "idle").set(idle);
        let hot = self.hot.stats();
        metrics::gauge!(DB_CONNECTIONS, "pool" => "hot", "state" => "in_use").set(hot.in_use as f64);
        metrics::gauge!(DB_CONNECTIONS, "pool" => "hot", "state" => "idle").set(hot.idle as f64);
        metrics::gauge!(DB_WAITING, "pool" => "hot").set(hot.waiting as f64);
        metrics::gauge!(HASHES_QUEUED).set(self.hasher.queue_depth() as f64);
    }
}

/// The label of a mail kind: `confirmation`, `magic_link`, ... (its variable suffix).
pub fn email_kind(kind: EmailKind) -> String {
    kind.env_suffix().to_ascii_lowercase()
}
