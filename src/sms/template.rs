//! The text of a code message: a Go `text/template` (`GOTRUE_SMS_TEMPLATE`,
//! `GOTRUE_MFA_PHONE_TEMPLATE`) executed with `.Code`, as GoTrue's `generateSMSFromTemplate`.

use std::collections::BTreeMap;

use gotmpl::Value;

/// A parsed SMS template.
#[derive(Clone)]
pub struct SmsTemplate(gotmpl::Template);

impl std::fmt::Debug for SmsTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsTemplate")
    }
}

impl SmsTemplate {
    /// Parses `source` (checked once already by the configuration, so this fails only on a
    /// template built elsewhere).
    pub fn new(source: &str) -> anyhow::Result<SmsTemplate> {
        let parsed = gotmpl::Template::new("sms")
            .parse(source)
            .map_err(|err| anyhow::anyhow!("SMS template: {err}"))?;
        Ok(SmsTemplate(parsed))
    }

    /// The message carrying `code`.
    pub fn render(&self, code: &str) -> anyhow::Result<String> {
        let data = Value::from(BTreeMap::from([("Code".to_owned(), Value::from(code))]));
        self.0
            .execute_to_string(&data)
            .map_err(|err| anyhow::anyhow!("SMS template: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gotrues_default_and_custom_templates() {
        let default = SmsTemplate::new(crate::config::DEFAULT_SMS_TEMPLATE).unwrap();
        assert_eq!(default.render("123456").unwrap(), "Your code is 123456");
        let custom = SmsTemplate::new("{{ .Code }} is your Acme code. <b>{{.Code}}</b>").unwrap();
        assert_eq!(
            custom.render("0042").unwrap(),
            "0042 is your Acme code. <b>0042</b>",
            "text, not HTML: no escaping"
        );
    }
}
