//! The send-email hook (`GOTRUE_HOOK_SEND_EMAIL_*`): when enabled, every mail of the email
//! flows goes to the hook instead of SMTP, as GoTrue's `{user, email_data}` input. The hook
//! runs inside the request's transaction (`auth::email::send_confirmation`), after the codes
//! are written: an error from it is the client's error and rolls everything back, a sign-up
//! included, as GoTrue's does.

use serde_json::{Value, json};
use sqlx::PgConnection;
use url::Url;

use crate::auth::codes::Issued;
use crate::auth::hook_user;
use crate::db::users::UserRow;
use crate::error::Result;
use crate::hooks::Hook;
use crate::mail::templates::site_url_text;

/// The hook, and what GoTrue puts in `email_data.site_url`: the API's external URL (where
/// `/verify` is), not `GOTRUE_SITE_URL`.
#[derive(Debug, Clone)]
pub struct EmailHook {
    hook: Hook,
    api_url: String,
    /// `GOTRUE_SITE_URL`: GoTrue's `redirect_to` when the request judged none (a
    /// reauthentication).
    site_url: String,
}

/// One request's mail, as the email flows wrote it.
#[derive(Debug)]
pub struct HookMail<'a> {
    /// GoTrue's `email_action_type`: `signup`, `invite`, `magiclink`, `recovery`,
    /// `email_change`, `reauthentication`.
    pub action_type: &'static str,
    /// The judged redirect target (the site URL when none was asked for; empty for mails
    /// that carry no link).
    pub redirect_to: &'a str,
    /// The code of the request's first mail: the user's address, or for an email change the
    /// new address.
    pub first: &'a Issued,
    /// An email change's code for the current address (secure email change).
    pub current_address: Option<&'a Issued>,
}

impl EmailHook {
    pub fn new(hook: Hook, external_url: &Url, site_url: &Url) -> EmailHook {
        EmailHook {
            hook,
            api_url: site_url_text(external_url),
            site_url: site_url_text(site_url),
        }
    }

    /// Calls the hook once for the request's mail(s), on `conn` (the request's transaction).
    /// `user` is the addressee as it was before this mail was stamped as sent.
    pub async fn send(&self, conn: &mut PgConnection, user: &UserRow, mail: &HookMail<'_>) -> Result<()> {
        let input = json!({
            "user": hook_user::load(&mut *conn, user).await?,
            "email_data": self.email_data(mail),
        });
        self.hook.call(conn, input).await?;
        Ok(())
    }

    /// GoTrue's `EmailData`, every field present (it has no `omitempty`). For a secure email
    /// change GoTrue swaps the pairs: `token` is the current address's code but `token_hash`
    /// the new address's hash, and `token_new` the new address's code but `token_hash_new`
    /// the current address's hash. Receivers written for Supabase rely on this, so it is
    /// kept; the README spells it out.
    fn email_data(&self, mail: &HookMail<'_>) -> Value {
        let (token, token_new, token_hash_new) = match mail.current_address {
            Some(current) => (current.code.as_str(), mail.first.code.as_str(), current.hash.as_str()),
            None => (mail.first.code.as_str(), "", ""),
        };
        json!({
            "token": token,
            "token_hash": mail.first.hash,
            "redirect_to": match mail.redirect_to {
                "" => self.site_url.clone(),
                // As written in links: a URL without a path has no `/` after its host.
                judged => Url::parse(judged).map_or_else(|_| judged.to_owned(), |url| site_url_text(&url)),
            },
            "email_action_type": mail.action_type,
            "site_url": self.api_url,
            "token_new": token_new,
            "token_hash_new": token_hash_new,
            // Fields of GoTrue's notification mails, which Latchkey does not send.
            "old_email": "",
            "old_phone": "",
            "provider": "",
            "factor_type": "",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(code: &str, hash: &str) -> Issued {
        Issued {
            code: code.into(),
            hash: hash.into(),
        }
    }

    fn email_hook() -> EmailHook {
        let config = crate::config::HookConfig {
            kind: crate::config::HookKind::SendEmail,
            target: crate::config::HookTarget::Postgres {
                function: "\"public\".\"f\"".into(),
            },
        };
        EmailHook::new(
            Hook::new(&config).unwrap(),
            &Url::parse("http://localhost:9999").unwrap(),
            &Url::parse("http://localhost:3000").unwrap(),
        )
    }

    #[test]
    fn secure_email_change_swaps_the_pairs_as_gotrue_does() {
        let (new, current) = (issued("111111", "hash-of-new"), issued("222222", "hash-of-current"));
        let mail = HookMail {
            action_type: "email_change",
            redirect_to: "http://localhost:3000",
            first: &new,
            current_address: Some(&current),
        };
        let data = email_hook().email_data(&mail);
        assert_eq!(data["token"], "222222");
        assert_eq!(data["token_hash"], "hash-of-new");
        assert_eq!(data["token_new"], "111111");
        assert_eq!(data["token_hash_new"], "hash-of-current");
        assert_eq!(data["site_url"], "http://localhost:9999");
    }

    #[test]
    fn other_mails_carry_one_pair() {
        let code = issued("333333", "pkce_abc");
        let mail = HookMail {
            action_type: "recovery",
            redirect_to: "https://app.example.com/reset",
            first: &code,
            current_address: None,
        };
        let data = email_hook().email_data(&mail);
        assert_eq!(
            (&data["token"], &data["token_hash"]),
            (&json!("333333"), &json!("pkce_abc"))
        );
        assert_eq!((&data["token_new"], &data["token_hash_new"]), (&json!(""), &json!("")));
        assert_eq!(data["email_action_type"], "recovery");
        assert_eq!(data["redirect_to"], "https://app.example.com/reset");
    }
}
