//! Mail settings: SMTP, the sender, one-time-token lifetime and length, link paths, subjects
//! and templates, and the folder mail goes to without SMTP.

mod templates;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Env};
pub use templates::{LinkPath, TemplateFetch, TemplateSource};

/// The kinds of mail the email flows send; each has a subject and a template an operator may
/// configure (`GOTRUE_MAILER_SUBJECTS_*`, `GOTRUE_MAILER_TEMPLATES_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailKind {
    Confirmation,
    Invite,
    Recovery,
    MagicLink,
    EmailChange,
    Reauthentication,
}

impl EmailKind {
    pub const ALL: [EmailKind; 6] = [
        EmailKind::Confirmation,
        EmailKind::Invite,
        EmailKind::Recovery,
        EmailKind::MagicLink,
        EmailKind::EmailChange,
        EmailKind::Reauthentication,
    ];

    /// The suffix of `GOTRUE_MAILER_SUBJECTS_*` and `GOTRUE_MAILER_TEMPLATES_*`.
    pub fn env_suffix(self) -> &'static str {
        match self {
            EmailKind::Confirmation => "CONFIRMATION",
            EmailKind::Invite => "INVITE",
            EmailKind::Recovery => "RECOVERY",
            EmailKind::MagicLink => "MAGIC_LINK",
            EmailKind::EmailChange => "EMAIL_CHANGE",
            EmailKind::Reauthentication => "REAUTHENTICATION",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Confirmation => "confirmation",
            EmailKind::Invite => "invite",
            EmailKind::Recovery => "recovery",
            EmailKind::MagicLink => "magic link",
            EmailKind::EmailChange => "email change",
            EmailKind::Reauthentication => "reauthentication",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MailerConfig {
    /// `None` when `GOTRUE_SMTP_HOST` is unset: mail goes to the log (recipient domain and
    /// kind only, never the message, which carries tokens).
    pub smtp: Option<SmtpConfig>,
    /// `GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED`: an email change must be confirmed from
    /// both the current and the new address.
    pub secure_email_change_enabled: bool,
    /// `GOTRUE_MAILER_OTP_EXP`: lifetime of email OTPs and links.
    pub otp_exp: Duration,
    /// `GOTRUE_MAILER_OTP_LENGTH` (6 to 10 digits).
    pub otp_length: usize,
    /// `LATCHKEY_OTP_MAX_ATTEMPTS` (at least 1, default 5): wrong codes typed in for a
    /// one-time token (or the reauthentication nonce) before it dies. Not in GoTrue.
    pub otp_max_attempts: i32,
    /// `GOTRUE_EXTERNAL_EMAIL_MAGIC_LINK_ENABLED`.
    pub magic_link_enabled: bool,
    /// The sender of every mail (`GOTRUE_SMTP_ADMIN_EMAIL`, `GOTRUE_SMTP_SENDER_NAME`).
    pub sender: Sender,
    /// `GOTRUE_MAILER_URLPATHS_*`: where a mail's link points, resolved against
    /// `API_EXTERNAL_URL` as GoTrue does. Unset: `verify` under `API_EXTERNAL_URL`'s path.
    pub url_paths: HashMap<LinkPath, String>,
    /// `GOTRUE_MAILER_SUBJECTS_*` overrides.
    pub subjects: HashMap<EmailKind, String>,
    /// `GOTRUE_MAILER_TEMPLATES_*` overrides: an http(s) URL (fetched and cached, as GoTrue
    /// does) or a local file (read at start-up; Latchkey's addition).
    pub templates: HashMap<EmailKind, TemplateSource>,
    /// `GOTRUE_MAILER_TEMPLATE_*`: the size, cache lifetime and retry interval of fetched
    /// templates.
    pub template_fetch: TemplateFetch,
    /// Where mail is written, one `.eml` file each, when no SMTP host is configured:
    /// `LATCHKEY_MAIL_DIR`, or `.latchkey/mail` in the zero-setup mode (set by `Config`).
    /// `None`: mail is only noted in the log.
    pub folder: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Sender {
    /// `GOTRUE_SMTP_ADMIN_EMAIL` (default `admin@localhost`).
    pub address: String,
    /// `GOTRUE_SMTP_SENDER_NAME`.
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    /// 465 means implicit TLS; any other port uses STARTTLS when the server offers it.
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<SecretString>,
}

pub(super) fn from_env(env: &Env) -> Result<MailerConfig, ConfigError> {
    let smtp = smtp(env)?;
    let otp_length: usize = env.parse_or(&["GOTRUE_MAILER_OTP_LENGTH"], 6usize)?;
    if !(6..=10).contains(&otp_length) {
        return Err(ConfigError {
            var: "GOTRUE_MAILER_OTP_LENGTH".into(),
            message: format!("{otp_length} is out of range (6 to 10)"),
        });
    }
    let otp_exp = env.duration_or(&["GOTRUE_MAILER_OTP_EXP"], Duration::from_secs(86_400))?;
    if otp_exp.is_zero() {
        return Err(ConfigError {
            var: "GOTRUE_MAILER_OTP_EXP".into(),
            message: "must be positive".into(),
        });
    }
    // Stored as a Postgres `integer`, hence the i32.
    let otp_max_attempts: u32 = env.parse_or(&["LATCHKEY_OTP_MAX_ATTEMPTS"], 5u32)?;
    let otp_max_attempts = i32::try_from(otp_max_attempts)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ConfigError {
            var: "LATCHKEY_OTP_MAX_ATTEMPTS".into(),
            message: format!("{otp_max_attempts} is out of range (1 to {})", i32::MAX),
        })?;
    Ok(MailerConfig {
        smtp,
        secure_email_change_enabled: env.bool_or(&["GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED"], true)?,
        otp_exp,
        otp_length,
        otp_max_attempts,
        magic_link_enabled: env.bool_or(&["GOTRUE_EXTERNAL_EMAIL_MAGIC_LINK_ENABLED"], true)?,
        sender: Sender {
            address: env.string_or(&["GOTRUE_SMTP_ADMIN_EMAIL", "SMTP_ADMIN_EMAIL"], "admin@localhost"),
            name: env
                .get(&["GOTRUE_SMTP_SENDER_NAME", "SMTP_SENDER_NAME"])
                .map(|(_, v)| v),
        },
        url_paths: templates::url_paths(env)?,
        subjects: templates::subjects(env),
        templates: templates::sources(env)?,
        template_fetch: templates::fetch_settings(env)?,
        folder: env.get(&["LATCHKEY_MAIL_DIR"]).map(|(_, dir)| PathBuf::from(dir)),
    })
}

/// `GOTRUE_SMTP_*`; `None` without a host (mail goes to the log).
fn smtp(env: &Env) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some((_, host)) = env.get(&["GOTRUE_SMTP_HOST", "SMTP_HOST"]) else {
        return Ok(None);
    };
    Ok(Some(SmtpConfig {
        host,
        port: env.parse_or(&["GOTRUE_SMTP_PORT", "SMTP_PORT"], 587u16)?,
        user: env.get(&["GOTRUE_SMTP_USER", "SMTP_USER"]).map(|(_, v)| v),
        pass: env
            .get(&["GOTRUE_SMTP_PASS", "SMTP_PASS"])
            .map(|(_, v)| SecretString::from(v)),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config::Config;

    fn with(var: &str, value: &str) -> Result<Config, super::ConfigError> {
        Config::from_vars(HashMap::from([(var.to_owned(), value.to_owned())]))
    }

    #[test]
    fn mail_goes_to_a_folder_in_the_zero_setup_mode_or_when_asked() {
        let laptop = Config::from_vars(HashMap::new()).unwrap();
        assert_eq!(
            laptop.mailer.folder.as_deref(),
            Some(std::path::Path::new(".latchkey/mail"))
        );
        let database = "postgres://x@db/app";
        let server = Config::from_vars(HashMap::from([("DATABASE_URL".to_owned(), database.to_owned())])).unwrap();
        assert_eq!(server.mailer.folder, None, "outside the zero-setup mode: the log only");
        let asked = Config::from_vars(HashMap::from([
            ("DATABASE_URL".to_owned(), database.to_owned()),
            ("LATCHKEY_MAIL_DIR".to_owned(), "/var/lib/latchkey/mail".to_owned()),
        ]))
        .unwrap();
        assert_eq!(
            asked.mailer.folder.as_deref(),
            Some(std::path::Path::new("/var/lib/latchkey/mail"))
        );
    }

    #[test]
    fn otp_attempts_default_to_five_and_must_be_positive() {
        let config = Config::from_vars(HashMap::new()).unwrap();
        assert_eq!(config.mailer.otp_max_attempts, 5);
        assert_eq!(
            with("LATCHKEY_OTP_MAX_ATTEMPTS", "2").unwrap().mailer.otp_max_attempts,
            2
        );
        for bad in ["0", "-1", "many", "2147483648"] {
            let err = with("LATCHKEY_OTP_MAX_ATTEMPTS", bad).unwrap_err();
            assert_eq!(err.var, "LATCHKEY_OTP_MAX_ATTEMPTS", "{bad}: {err}");
        }
    }
}
