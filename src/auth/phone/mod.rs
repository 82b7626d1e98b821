//! Phone sign-in (issue #19): numbers as GoTrue reads and stores them, the channel a code
//! travels by, and the flows that send ([`send`]) and check ([`verify`]) codes by text
//! message. The flows that start from a phone number (sign-up, `/otp`, `/resend`, a phone
//! change, reauthentication) are in [`signup`] and [`resend`].

pub mod resend;
pub mod send;
pub mod signup;
pub mod verify;

use crate::error::{Error, Result};
use crate::sms::Channel;

/// GoTrue's phone check (`validatePhone`): one leading `+` and every space dropped, then 2 to
/// 15 digits not starting with `0` (E.164), stored as such. Dashes, brackets and dots are
/// refused, as GoTrue refuses them; Latchkey also trims surrounding whitespace, as every field
/// it reads.
pub fn normalize(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    let digits: String = trimmed.strip_prefix('+').unwrap_or(trimmed).replace(' ', "");
    let valid =
        (2..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
    if valid {
        Ok(digits)
    } else {
        Err(Error::validation("Invalid phone number format (E.164 required)"))
    }
}

/// An optional phone number: blank means none, anything else must be valid.
pub fn optional(raw: Option<&str>) -> Result<Option<String>> {
    raw.filter(|p| !p.trim().is_empty()).map(normalize).transpose()
}

/// GoTrue's message for a `channel` it does not take.
pub const INVALID_CHANNEL: &str = "Invalid channel, supported values are 'sms' or 'whatsapp'. 'whatsapp' is only \
                                   supported if Twilio or Twilio Verify is used as the provider.";

/// The `channel` of a request: `sms` when absent or blank, else `sms` or `whatsapp`.
/// Whether the configured gateway can use it is the sender's to say ([`send`]).
pub fn channel(raw: Option<&str>) -> Result<Channel> {
    match raw.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(Channel::Sms),
        Some(name) => Channel::parse(name).ok_or_else(|| Error::validation(INVALID_CHANNEL)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_gotrue_reads_them() {
        for (raw, stored) in [
            ("+14155550100", "14155550100"),
            ("14155550100", "14155550100"),
            ("+44 20 7946 0958", "442079460958"),
            ("  +4915112345678 ", "4915112345678"),
            ("12", "12"),
            ("123456789012345", "123456789012345"),
        ] {
            assert_eq!(normalize(raw).unwrap(), stored, "{raw}");
        }
        for bad in [
            "",
            "+",
            "1",
            "0123456789",
            "+0123456789",
            "1234567890123456",
            "+1-415-555-0100",
            "(415) 555 0100",
            "415.555.0100",
            "++14155550100",
            "+1415555010x",
            "١٢٣٤٥٦٧٨",
            "+1\u{a0}4155550100",
        ] {
            let err = normalize(bad).unwrap_err();
            assert_eq!(err.message(), "Invalid phone number format (E.164 required)", "{bad:?}");
        }
    }

    #[test]
    fn blank_numbers_are_none() {
        assert_eq!(optional(None).unwrap(), None);
        assert_eq!(optional(Some("  ")).unwrap(), None);
        assert_eq!(
            optional(Some("+1 415 555 0100")).unwrap().as_deref(),
            Some("14155550100")
        );
        assert!(optional(Some("abc")).is_err());
    }

    #[test]
    fn channels_are_gotrues() {
        assert_eq!(channel(None).unwrap(), Channel::Sms);
        assert_eq!(channel(Some("")).unwrap(), Channel::Sms);
        assert_eq!(channel(Some("sms")).unwrap(), Channel::Sms);
        assert_eq!(channel(Some("whatsapp")).unwrap(), Channel::Whatsapp);
        assert_eq!(channel(Some("telegram")).unwrap_err().message(), INVALID_CHANNEL);
    }
}
