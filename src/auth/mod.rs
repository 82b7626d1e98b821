//! Security logic with no HTTP types: passwords, JWTs, refresh tokens, sessions, one-time
//! codes and the email flows, PKCE, redirect validation, identity linking and unlinking.

pub mod access_token_hook;
pub mod accounts;
pub mod admin_users;
pub mod attempt_hooks;
pub mod codes;
pub mod custom_providers;
pub mod email;
pub mod email_verify;
pub mod external;
pub mod id_token;
pub mod identities;
pub mod jwt;
pub mod links;
pub mod magic_link;
pub mod mfa;
pub mod oauth_link;
pub mod oauth_providers;
pub mod outbox;
pub mod password;
pub mod phone;
pub mod pkce;
pub mod proven_address;
pub mod recovery;
pub mod redirect;
pub mod refresh;
pub mod send_timing;
pub mod session;
pub mod sign_in;
pub mod signup;
pub mod sms_hook;
pub mod unlink;
pub mod user_hooks;
pub mod user_update;
pub mod verification;
