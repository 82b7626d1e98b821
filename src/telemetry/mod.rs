//! What the server tells its operator: logs (JSON lines with GoTrue's field names, or text),
//! Prometheus metrics on their own listener, and the mail counter that feeds them.
//!
//! Metrics are recorded through the `metrics` facade (`metrics::counter!` and friends), so any
//! module records without depending on this one; without `GOTRUE_METRICS_ENABLED` no recorder
//! is installed and recording costs nothing. The names are listed (with their help text) in
//! [`metrics::describe`].

pub mod logging;
mod mailer;
pub mod metrics;

pub use mailer::CountingMailer;
