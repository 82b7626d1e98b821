//! The one integration-test binary: every test starts the real server on 127.0.0.1:0 against
//! a fresh database (see `helpers`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod account_takeover;
mod accounts;
mod admin;
mod admin_links;
mod cleanup;
mod email;
mod email_change;
mod email_pkce;
mod email_verify;
mod fake_providers;
mod foundation;
mod fuzz_regressions;
mod helpers;
mod hot_pool;
mod oauth;
mod oauth_linking;
mod openapi;
mod ratelimit;
mod rls;
mod sessions;
mod smtp_sink;
