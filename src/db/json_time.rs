//! Timestamps inside the JSON that Postgres builds (`json_agg` over rows with `timestamptz`
//! columns, as `identities_json!` does), read without chrono's general parser. Postgres
//! writes them one way, `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` in a UTC session, and chrono's
//! `Deserialize` took about 0.3 µs for each: three per identity on every `GET /user` and
//! refresh (issue #24). Anything else (another offset, `Z`, years past 9999) is left to
//! chrono, so the result is always the instant chrono would give.
//!
//! For `#[serde(deserialize_with = "json_time::one")]` and `"json_time::opt"`.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::Deserializer;
use serde::de::{Error, Visitor};

pub fn one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(Timestamp)
}

pub fn opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    deserializer.deserialize_option(OptionalTimestamp)
}

struct Timestamp;

impl Visitor<'_> for Timestamp {
    type Value = DateTime<Utc>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an RFC 3339 timestamp")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<Self::Value, E> {
        match postgres_utc(text) {
            Some(at) => Ok(at),
            None => text
                .parse::<DateTime<FixedOffset>>()
                .map(|at| at.with_timezone(&Utc))
                .map_err(E::custom),
        }
    }
}

struct OptionalTimestamp;

impl<'de> Visitor<'de> for OptionalTimestamp {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an RFC 3339 timestamp or null")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        one(deserializer).map(Some)
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, then a fraction of 1 to 9 digits or none, then `+00:00`; `None`
/// for anything else, or for a date or time that does not exist.
fn postgres_utc(text: &str) -> Option<DateTime<Utc>> {
    let local = text.as_bytes().strip_suffix(b"+00:00")?;
    let (fixed, fraction) = local.split_at_checked(19)?;
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(position, separator)| fixed[position] != separator)
    {
        return None;
    }
    let field = |start: usize, len: usize| number(&fixed[start..start + len]);
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => number(digits)? * 10u32.pow(9 - digits.len() as u32),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(field(0, 4)? as i32, field(5, 2)?, field(8, 2)?)?;
    // `from_hms_nano_opt` would take a leap second as 59 s and 1e9 ns; those go to chrono.
    let time = NaiveTime::from_hms_nano_opt(field(11, 2)?, field(14, 2)?, field(17, 2)?, nanos)?;
    Some(date.and_time(time).and_utc())
}

/// At most 9 ASCII digits as a number.
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |value, &digit| {
        digit.is_ascii_digit().then(|| value * 10 + u32::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Stamped {
        #[serde(deserialize_with = "one")]
        at: DateTime<Utc>,
        #[serde(default, deserialize_with = "opt")]
        maybe: Option<DateTime<Utc>>,
    }

    fn read(text: &str) -> Result<DateTime<Utc>, String> {
        let json = serde_json::json!({ "at": text }).to_string();
        serde_json::from_str::<Stamped>(&json)
            .map(|s| s.at)
            .map_err(|e| e.to_string())
    }

    fn chrono_reads(text: &str) -> Result<DateTime<Utc>, String> {
        let json = serde_json::json!(text).to_string();
        serde_json::from_str::<DateTime<Utc>>(&json).map_err(|e| e.to_string())
    }

    /// Postgres trims a fraction's trailing zeros and leaves it out when it is zero.
    fn as_postgres_writes(at: DateTime<Utc>) -> String {
        let text = at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text}+00:00")
    }

    #[test]
    fn reads_what_postgres_writes_as_chrono_does() {
        let mut at = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        // Steps that are not round in any unit, so every field and fraction length varies.
        for _ in 0..20_000 {
            let text = as_postgres_writes(at);
            assert!(postgres_utc(&text).is_some(), "{text}");
            assert_eq!(read(&text), chrono_reads(&text), "{text}");
            assert_eq!(read(&text).unwrap(), at, "{text}");
            at += Duration::microseconds(86_400_000_000 * 3 + 3_601_234_567);
        }
    }

    #[test]
    fn other_shapes_are_chronos_to_read() {
        let texts = [
            "2026-12-05T15:41:23Z",
            "2026-12-05T15:41:23.5+02:00",
            "2026-12-05T15:41:23.123456789+00:00",
            "2026-12-05 15:41:23+00:00",
            "2016-12-31T23:59:60+00:00",
            "2026-02-30T00:00:00+00:00",
            "2026-12-05T24:00:00+00:00",
            "2026-12-05T15:41:23.+00:00",
            "2026-12-05T15:41:23.1234567890+00:00",
            "+2026-12-05T15:41:23+00:00",
            "2026-1a-05T15:41:23+00:00",
            "",
            "not a time",
        ];
        for text in texts {
            assert_eq!(read(text).ok(), chrono_reads(text).ok(), "{text}");
        }
    }

    #[test]
    fn optional_ones_take_null() {
        let stamped: Stamped = serde_json::from_str(r#"{"at": "2026-12-05T15:41:23+00:00", "maybe": null}"#).unwrap();
        assert_eq!(stamped.maybe, None);
        let stamped: Stamped =
            serde_json::from_str(r#"{"at": "2026-12-05T15:41:23+00:00", "maybe": "2026-12-05T15:41:24.5+00:00"}"#)
                .unwrap();
        assert_eq!(stamped.maybe, Some(stamped.at + Duration::milliseconds(1500)));
    }
}
