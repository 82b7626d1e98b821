//! Security logic with no HTTP types: passwords, JWTs, refresh tokens, sessions.

pub mod jwt;
pub mod password;
pub mod refresh;
