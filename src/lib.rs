//! Latchkey: a GoTrue-compatible (Supabase Auth) authentication server on PostgreSQL.

pub mod api; // HTTP routes, extractors, middleware
pub mod auth; // security logic without HTTP types
pub mod cleanup; // background removal of stale sessions, tokens and flow states
pub mod config; // typed configuration from GoTrue's environment variables
pub mod db; // all SQL
pub mod devdb; // private PostgreSQL cluster for zero-setup runs and tests
pub mod error; // the one error type, with GoTrue's error codes
pub mod gotrue; // import-gotrue / export-gotrue: users between GoTrue's tables and Latchkey's
pub mod hooks; // auth hooks: the pg-functions and signed-HTTP transports
pub mod mail; // outgoing mail: SMTP or log, templates
pub mod providers; // OAuth/OIDC providers behind one registry, the shared ID-token verifier
pub mod ratelimit; // rate-limit groups, the Limiter trait, the in-memory store
pub mod rls; // run SQL as a token's role with its claims, the way PostgREST does
pub mod sms; // outgoing text messages: the SMS gateways (none yet)
pub mod startup; // build, bind, serve, shut down
pub mod telemetry; // logs (JSON with GoTrue's fields, or text), Prometheus metrics
