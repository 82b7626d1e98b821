//! Security logic with no HTTP types: passwords, JWTs, refresh tokens, sessions.

pub mod accounts;
pub mod jwt;
pub mod password;
pub mod refresh;
pub mod session;
