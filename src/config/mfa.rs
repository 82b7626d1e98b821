//! Multi-factor authentication: GoTrue's `GOTRUE_MFA_*` variables. Only TOTP factors exist
//! here; the rate limit of challenges and verifications is with the other limits
//! (`GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY`, `config::rate_limit`).

use std::time::Duration;

use super::{ConfigError, Env};

/// GoTrue's floor for both expiry durations: shorter values are raised to it
/// (`conf.ApplyDefaults`), so a typo cannot make MFA unusable.
const MIN_EXPIRY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct MfaConfig {
    /// `GOTRUE_MFA_TOTP_ENROLL_ENABLED` (on): `POST /factors` with `factor_type: totp`.
    pub totp_enroll_enabled: bool,
    /// `GOTRUE_MFA_TOTP_VERIFY_ENABLED` (on): challenges and verifications of TOTP factors.
    pub totp_verify_enabled: bool,
    /// `GOTRUE_MFA_MAX_ENROLLED_FACTORS` (10): factors of one user, verified or not.
    pub max_enrolled_factors: u32,
    /// `GOTRUE_MFA_MAX_VERIFIED_FACTORS` (10).
    pub max_verified_factors: u32,
    /// `GOTRUE_MFA_FACTOR_EXPIRY_DURATION` (300 s, at least 300 s): an unverified factor never
    /// challenged is deleted once this old.
    pub factor_expiry: Duration,
    /// `GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION` (300 s, at least 300 s): how long a challenge
    /// may wait for its code.
    pub challenge_expiry: Duration,
}

pub(super) fn from_env(env: &Env) -> Result<MfaConfig, ConfigError> {
    refuse_unsupported(env)?;
    Ok(MfaConfig {
        totp_enroll_enabled: env.bool_or(&["GOTRUE_MFA_TOTP_ENROLL_ENABLED"], true)?,
        totp_verify_enabled: env.bool_or(&["GOTRUE_MFA_TOTP_VERIFY_ENABLED"], true)?,
        max_enrolled_factors: env.parse_or(&["GOTRUE_MFA_MAX_ENROLLED_FACTORS"], 10u32)?,
        max_verified_factors: env.parse_or(&["GOTRUE_MFA_MAX_VERIFIED_FACTORS"], 10u32)?,
        factor_expiry: env
            .duration_or(&["GOTRUE_MFA_FACTOR_EXPIRY_DURATION"], MIN_EXPIRY)?
            .max(MIN_EXPIRY),
        challenge_expiry: env
            .duration_or(&["GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION"], MIN_EXPIRY)?
            .max(MIN_EXPIRY),
    })
}

/// Phone and WebAuthn factors are off by default in GoTrue and do not exist here yet: an
/// operator who switches them on expects them to work, so say so at start-up instead of
/// answering `mfa_*_not_enabled` to every client.
fn refuse_unsupported(env: &Env) -> Result<(), ConfigError> {
    for var in [
        "GOTRUE_MFA_PHONE_ENROLL_ENABLED",
        "GOTRUE_MFA_PHONE_VERIFY_ENABLED",
        "GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED",
        "GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED",
    ] {
        if env.bool_or(&[var], false)? {
            return Err(ConfigError {
                var: var.into(),
                message: "Latchkey has no phone or WebAuthn factors yet (only TOTP); leave it unset or false".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config::Config;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<MfaConfig, ConfigError> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(vars).map(|c| c.mfa)
    }

    #[test]
    fn defaults_are_gotrues() {
        let c = config(&[]).unwrap();
        assert!(c.totp_enroll_enabled && c.totp_verify_enabled);
        assert_eq!((c.max_enrolled_factors, c.max_verified_factors), (10, 10));
        assert_eq!(c.factor_expiry, Duration::from_secs(300));
        assert_eq!(c.challenge_expiry, Duration::from_secs(300));
    }

    #[test]
    fn values_are_read_and_expiries_have_gotrues_floor() {
        let c = config(&[
            ("GOTRUE_MFA_TOTP_ENROLL_ENABLED", "false"),
            ("GOTRUE_MFA_TOTP_VERIFY_ENABLED", "false"),
            ("GOTRUE_MFA_MAX_ENROLLED_FACTORS", "3"),
            ("GOTRUE_MFA_MAX_VERIFIED_FACTORS", "1"),
            ("GOTRUE_MFA_FACTOR_EXPIRY_DURATION", "1h"),
            ("GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION", "60"),
        ])
        .unwrap();
        assert!(!c.totp_enroll_enabled && !c.totp_verify_enabled);
        assert_eq!((c.max_enrolled_factors, c.max_verified_factors), (3, 1));
        assert_eq!(c.factor_expiry, Duration::from_secs(3600));
        assert_eq!(
            c.challenge_expiry,
            Duration::from_secs(300),
            "raised to GoTrue's minimum"
        );
    }

    #[test]
    fn bad_values_and_unsupported_factors_name_the_variable() {
        for (var, value) in [
            ("GOTRUE_MFA_TOTP_ENROLL_ENABLED", "perhaps"),
            ("GOTRUE_MFA_MAX_ENROLLED_FACTORS", "-1"),
            ("GOTRUE_MFA_MAX_VERIFIED_FACTORS", "many"),
            ("GOTRUE_MFA_FACTOR_EXPIRY_DURATION", "soon"),
            ("GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION", "5 minutes"),
            ("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "true"),
            ("GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED", "true"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
        assert!(config(&[("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "false")]).is_ok());
    }
}
