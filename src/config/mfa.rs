//! Multi-factor authentication: GoTrue's `GOTRUE_MFA_*` variables, for TOTP and phone factors
//! (WebAuthn factors do not exist here); the rate limit of challenges and verifications is with the other limits
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
    /// `GOTRUE_MFA_PHONE_ENROLL_ENABLED` (off): `POST /factors` with `factor_type: phone`.
    pub phone_enroll_enabled: bool,
    /// `GOTRUE_MFA_PHONE_VERIFY_ENABLED` (off): challenges and verifications of phone factors.
    pub phone_verify_enabled: bool,
    /// `GOTRUE_MFA_PHONE_OTP_LENGTH` (6 to 10 digits, 6).
    pub phone_otp_length: usize,
    /// `GOTRUE_MFA_PHONE_MAX_FREQUENCY` (1 min): one challenge of a phone factor at most this
    /// often.
    pub phone_max_frequency: Duration,
    /// `GOTRUE_MFA_PHONE_TEMPLATE` (GoTrue's "Your code is {{ .Code }}").
    pub phone_template: String,
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
        phone_enroll_enabled: env.bool_or(&["GOTRUE_MFA_PHONE_ENROLL_ENABLED"], false)?,
        phone_verify_enabled: env.bool_or(&["GOTRUE_MFA_PHONE_VERIFY_ENABLED"], false)?,
        phone_otp_length: phone_otp_length(env)?,
        // GoTrue: zero means the default.
        phone_max_frequency: match env.duration_or(&["GOTRUE_MFA_PHONE_MAX_FREQUENCY"], Duration::ZERO)? {
            Duration::ZERO => Duration::from_secs(60),
            set => set,
        },
        phone_template: phone_template(env)?,
    })
}

fn phone_otp_length(env: &Env) -> Result<usize, ConfigError> {
    let length = env.parse_or(&["GOTRUE_MFA_PHONE_OTP_LENGTH"], 6usize)?;
    if !(6..=10).contains(&length) {
        return Err(ConfigError {
            var: "GOTRUE_MFA_PHONE_OTP_LENGTH".into(),
            message: format!("{length} is out of range (6 to 10)"),
        });
    }
    Ok(length)
}

fn phone_template(env: &Env) -> Result<String, ConfigError> {
    let template = env.string_or(&["GOTRUE_MFA_PHONE_TEMPLATE"], super::DEFAULT_SMS_TEMPLATE);
    super::sms::check_template(&template).map_err(|message| ConfigError {
        var: "GOTRUE_MFA_PHONE_TEMPLATE".into(),
        message,
    })?;
    Ok(template)
}

/// WebAuthn factors are off by default in GoTrue and do not exist here yet: an operator who
/// switches them on expects them to work, so say so at start-up instead of answering
/// `mfa_webauthn_*_not_enabled` to every client.
fn refuse_unsupported(env: &Env) -> Result<(), ConfigError> {
    for var in [
        "GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED",
        "GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED",
    ] {
        if env.bool_or(&[var], false)? {
            return Err(ConfigError {
                var: var.into(),
                message: "Latchkey has no WebAuthn factors yet (TOTP and phone only); leave it unset or false".into(),
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
            ("GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED", "true"),
            ("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "sure"),
            ("GOTRUE_MFA_PHONE_OTP_LENGTH", "4"),
            ("GOTRUE_MFA_PHONE_MAX_FREQUENCY", "often"),
            ("GOTRUE_MFA_PHONE_TEMPLATE", "{{ .Code "),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
        assert!(config(&[("GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED", "false")]).is_ok());
    }

    #[test]
    fn phone_factors_are_read() {
        let c = config(&[]).unwrap();
        assert!(
            !c.phone_enroll_enabled && !c.phone_verify_enabled,
            "off by default, as in GoTrue"
        );
        assert_eq!(
            (c.phone_otp_length, c.phone_max_frequency),
            (6, Duration::from_secs(60))
        );
        assert_eq!(c.phone_template, "Your code is {{ .Code }}");
        let c = config(&[
            ("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "true"),
            ("GOTRUE_MFA_PHONE_VERIFY_ENABLED", "true"),
            ("GOTRUE_MFA_PHONE_OTP_LENGTH", "8"),
            ("GOTRUE_MFA_PHONE_MAX_FREQUENCY", "5s"),
            ("GOTRUE_MFA_PHONE_TEMPLATE", "Acme: {{ .Code }}"),
            ("GOTRUE_HOOK_SEND_SMS_ENABLED", "true"),
            ("GOTRUE_HOOK_SEND_SMS_URI", "pg-functions://postgres/public/send_sms"),
        ])
        .unwrap();
        assert!(c.phone_enroll_enabled && c.phone_verify_enabled);
        assert_eq!((c.phone_otp_length, c.phone_max_frequency), (8, Duration::from_secs(5)));
        assert_eq!(c.phone_template, "Acme: {{ .Code }}");
        // Without a provider or the hook, no code could go out.
        for var in ["GOTRUE_MFA_PHONE_ENROLL_ENABLED", "GOTRUE_MFA_PHONE_VERIFY_ENABLED"] {
            assert_eq!(config(&[(var, "true")]).unwrap_err().var, var);
        }
    }
}
