//! Timestamps in responses, written exactly as chrono's own `Serialize` writes them (RFC 3339
//! in UTC with `Z` and 0, 3, 6 or 9 fraction digits, `SecondsFormat::AutoSi`), but digit by
//! digit into a stack buffer. chrono goes through `fmt` one character at a time, and the ten or
//! so timestamps of a user object cost 3 % of a `GET /user` that way (issue #24). Years outside
//! 0–9999 and leap seconds, which the fast path does not handle, are left to chrono.
//!
//! For `#[serde(serialize_with = "timestamp::one")]` and `"timestamp::opt"`.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

pub fn one<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match rfc3339(at, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

pub fn opt<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => one(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`, or `None` where chrono must write it.
fn rfc3339<'a>(at: &DateTime<Utc>, buf: &'a mut [u8; 30]) -> Option<&'a str> {
    let year = at.year();
    let nanos = at.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    write_digits(&mut buf[..4], year as u32);
    // Fixed positions: YYYY-MM-DDTHH:MM:SS
    let fields = [
        (4, b'-', at.month()),
        (7, b'-', at.day()),
        (10, b'T', at.hour()),
        (13, b':', at.minute()),
        (16, b':', at.second()),
    ];
    for (position, separator, value) in fields {
        buf[position] = separator;
        write_digits(&mut buf[position + 1..position + 3], value);
    }
    let mut len = 19;
    let fraction = if nanos == 0 {
        None
    } else if nanos.is_multiple_of(1_000_000) {
        Some((nanos / 1_000_000, 3))
    } else if nanos.is_multiple_of(1_000) {
        Some((nanos / 1_000, 6))
    } else {
        Some((nanos, 9))
    };
    if let Some((value, digits)) = fraction {
        buf[len] = b'.';
        write_digits(&mut buf[len + 1..len + 1 + digits], value);
        len += 1 + digits;
    }
    buf[len] = b'Z';
    std::str::from_utf8(&buf[..len + 1]).ok()
}

/// `value` in decimal, zero-padded to fill `out`.
fn write_digits(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn ours(at: &DateTime<Utc>) -> String {
        one(at, serde_json::value::Serializer)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn writes_what_chrono_writes() {
        let mut at = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..20_000u64 {
            let chrono = serde_json::to_value(at).unwrap();
            assert_eq!(ours(&at), chrono.as_str().unwrap(), "{at:?}");
            // Steps of every size, with whole, milli, micro and nano fractions.
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let nanos = match i % 4 {
                0 => 0,
                1 => (seed >> 40) % 1000 * 1_000_000,
                2 => (seed >> 40) % 1_000_000 * 1_000,
                _ => (seed >> 34) % 1_000_000_000,
            };
            let seconds = (seed >> 20) % (400 * 24 * 3600);
            at = Utc
                .timestamp_opt((at.timestamp() + seconds as i64) % 253_402_300_799, nanos as u32)
                .unwrap();
        }
    }

    #[test]
    fn edges_fall_back_to_chrono() {
        let cases = [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 1, 12, 0, 0).unwrap(),
            // A leap second: chrono keeps it in the nanoseconds.
            Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59)
                .unwrap()
                .with_nanosecond(1_500_000_000)
                .unwrap(),
        ];
        for at in cases {
            let chrono = serde_json::to_value(at).unwrap();
            assert_eq!(ours(&at), chrono.as_str().unwrap(), "{at:?}");
        }
        assert_eq!(
            opt(&None, serde_json::value::Serializer).unwrap(),
            serde_json::Value::Null
        );
    }
}
