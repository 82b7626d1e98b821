//! The one integration-test binary: every test starts the real server on 127.0.0.1:0 against
//! a fresh database (see `helpers`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod account_takeover;
mod accounts;
mod admin;
mod admin_links;
mod cleanup;
mod current_password;
mod email;
mod email_change;
mod email_pkce;
mod email_verify;
mod fake_providers;
mod foundation;
mod fuzz_regressions;
mod google_keys;
mod gotrue;
mod hardening;
mod helpers;
mod hot_pool;
mod jwt_secret;
mod layers;
mod oauth;
mod oauth_linking;
mod one_time_codes;
mod openapi;
mod otp_attempts;
mod otp_nonce;
mod password_limits;
mod password_policy;
mod ratelimit;
mod ratelimit_trust;
mod recover_enumeration;
mod redirects;
mod rls;
mod sessions;
mod shapes;
mod slow_clients;
mod smtp_sink;
