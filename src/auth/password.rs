//! Passwords: hashing (`hasher`, on threads of their own), the limits checked before any
//! hashing (`limits`), and GoTrue's policy for new passwords (`policy`).

mod hasher;
mod limits;
mod policy;

pub use hasher::{HashError, Hasher, Verification};
pub use limits::{
    MAX_BCRYPT_COST, MAX_NEW_PASSWORD_BYTES, MAX_PRESENTED_PASSWORD_BYTES, PasswordUse, bcrypt_cost,
    check_imported_hash, check_length,
};
pub use policy::{WeakPassword, check_new, check_policy};
