//! The one integration-test binary: every test starts the real server on 127.0.0.1:0 against
//! a fresh database (see `helpers`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod account_takeover;
mod accounts;
mod admin;
mod admin_links;
mod admin_list;
mod binary;
mod cleanup;
mod current_password;
mod custom_providers;
mod deploy;
mod email;
mod email_change;
mod email_pkce;
mod email_verify;
mod fake_oauth;
mod fake_providers;
mod fake_sms;
mod foundation;
mod fuzz_regressions;
mod google_keys;
mod gotrue;
mod hardening;
mod helpers;
mod hooks;
mod hot_pool;
mod id_token;
mod jwt_secret;
mod layers;
mod mail_folder;
mod mail_templates;
mod mfa;
mod oauth;
mod oauth_linking;
mod observability;
mod one_time_codes;
mod openapi;
mod operations;
mod otp_attempts;
mod otp_nonce;
mod password_limits;
mod password_policy;
mod pgbouncer;
mod phone;
mod providers;
mod ratelimit;
mod ratelimit_redis;
mod ratelimit_trust;
mod recover_enumeration;
mod redirects;
mod refresh_tokens;
mod replicas;
mod rls;
mod sessions;
mod shapes;
mod signing_keys;
mod slow_clients;
mod sms;
mod smtp_sink;
mod stale_state;
mod wire_compat;
