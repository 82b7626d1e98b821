//! The one integration-test binary: every test starts the real server on 127.0.0.1:0 against
//! a fresh database (see `helpers`).

mod accounts;
mod email;
mod email_change;
mod email_pkce;
mod email_verify;
mod foundation;
mod helpers;
mod sessions;
mod smtp_sink;
