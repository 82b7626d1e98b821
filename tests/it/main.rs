//! The one integration-test binary: every test starts the real server on 127.0.0.1:0 against
//! a fresh database (see `helpers`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod accounts;
mod admin;
mod foundation;
mod fuzz_regressions;
mod helpers;
mod openapi;
mod ratelimit;
mod rls;
mod sessions;
