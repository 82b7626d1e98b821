//! The start-up report on variables: `GOTRUE_*` variables that are set but that nothing reads
//! (a GoTrue feature Latchkey does not have, or a misspelt name), one warning each. GoTrue
//! itself ignores both without a word, which is how an operator swapping it for Latchkey
//! would lose, say, phone sign-in without noticing.

use std::collections::{BTreeSet, HashMap};

/// GoTrue's variables (see the file's header for where the list comes from).
const GOTRUE_VARIABLES: &str = include_str!("gotrue_variables.txt");

/// Read only when the feature is on (an SMTP host): supported, so not reported when set with
/// the feature off. `config::tests` checks that each is really read. (A provider's settings
/// are looked up also when it is off, see `config::external`.)
pub(super) const READ_WHEN_ENABLED: &[&str] = &[
    "GOTRUE_SMTP_PORT",
    "GOTRUE_SMTP_USER",
    "GOTRUE_SMTP_PASS",
    "GOTRUE_SMTP_ADMIN_EMAIL",
    "GOTRUE_SMTP_SENDER_NAME",
];

/// A set variable that nothing reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadVariable {
    pub name: String,
    /// GoTrue reads it (a feature Latchkey lacks); otherwise the name is unknown (misspelt?).
    pub known_to_gotrue: bool,
}

impl UnreadVariable {
    /// The warning, naming the variable and never its value (it may be a secret).
    pub fn warning(&self) -> String {
        if self.known_to_gotrue {
            format!(
                "{} is set, but Latchkey does not support this GoTrue setting: it is ignored",
                self.name
            )
        } else {
            format!(
                "{} is set, but it is not a variable GoTrue or Latchkey reads (misspelt?): it is ignored",
                self.name
            )
        }
    }
}

/// The `GOTRUE_*` variables of `vars` that are set and that no lookup in `read` asked for, in
/// name order. Empty values count as unset (as everywhere in the configuration), and so does
/// `false` for a switch (`*_ENABLED`): a feature left off matches Latchkey, which lacks it.
pub(super) fn unread_variables(vars: &HashMap<String, String>, read: &BTreeSet<String>) -> Vec<UnreadVariable> {
    let gotrue: BTreeSet<&str> = gotrue_variables().collect();
    let mut unread: Vec<UnreadVariable> = vars
        .iter()
        .filter(|(name, value)| name.starts_with("GOTRUE_") && is_set(name, value))
        .filter(|(name, _)| !read.contains(*name) && !READ_WHEN_ENABLED.contains(&name.as_str()))
        .map(|(name, _)| UnreadVariable {
            name: name.clone(),
            known_to_gotrue: gotrue.contains(name.as_str()),
        })
        .collect();
    unread.sort_by(|a, b| a.name.cmp(&b.name));
    unread
}

fn is_set(name: &str, value: &str) -> bool {
    let value = value.trim();
    let switched_off = name.ends_with("_ENABLED") && matches!(value.to_ascii_lowercase().as_str(), "false" | "0");
    !value.is_empty() && !switched_off
}

/// GoTrue's variables, for tests and the documentation.
pub fn gotrue_variables() -> impl Iterator<Item = &'static str> {
    GOTRUE_VARIABLES
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn set_unread_gotrue_variables_are_reported_once_each() {
        let read = BTreeSet::from(["GOTRUE_SITE_URL".to_owned()]);
        let unread = unread_variables(
            &vars(&[
                ("GOTRUE_SITE_URL", "http://x"),
                ("GOTRUE_SECURITY_CAPTCHA_PROVIDER", "turnstile"),
                ("GOTRUE_SMTP_HOTS", "mail"),
                ("GOTRUE_EXTERNAL_PHONE_ENABLED", "false"),
                ("GOTRUE_HOOK_SEND_SMS_ENABLED", "true"),
                ("GOTRUE_SMS_TEMPLATE", " "),
                ("GOTRUE_SMTP_USER", "someone"),
                ("PATH", "/bin"),
            ]),
            &read,
        );
        let names: Vec<(&str, bool)> = unread.iter().map(|u| (u.name.as_str(), u.known_to_gotrue)).collect();
        assert_eq!(
            names,
            [
                ("GOTRUE_HOOK_SEND_SMS_ENABLED", true),
                ("GOTRUE_SECURITY_CAPTCHA_PROVIDER", true),
                ("GOTRUE_SMTP_HOTS", false),
            ]
        );
        assert!(unread[1].warning().contains("GOTRUE_SECURITY_CAPTCHA_PROVIDER"));
        assert!(!unread[1].warning().contains("turnstile"), "never the value");
        assert!(unread[2].warning().contains("misspelt"));
    }

    #[test]
    fn the_list_holds_gotrue_names_only() {
        let names: Vec<&str> = gotrue_variables().collect();
        assert!(names.len() > 400, "{}", names.len());
        assert!(names.iter().all(|name| name.starts_with("GOTRUE_")));
        for known in [
            "GOTRUE_SMS_PROVIDER",
            "GOTRUE_METRICS_ENABLED",
            "GOTRUE_API_REQUEST_ID_HEADER",
        ] {
            assert!(names.contains(&known), "{known}");
        }
    }
}
