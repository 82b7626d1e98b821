//! Reading the variables: aliases, defaults, and errors that name the variable.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use url::Url;

use super::ConfigError;

/// Parses GoTrue durations: a plain number of seconds (`10`) or Go's form (`10s`, `1m30s`,
/// `1h`, `500ms`).
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        // `try_`: a huge value (`1e300`) is an error, not a panic.
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut total = Duration::ZERO;
    let mut rest = raw;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(split);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => value / 1e9,
            "us" | "µs" => value / 1e6,
            "ms" => value / 1e3,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return None,
        };
        total = total.checked_add(Duration::try_from_secs_f64(seconds).ok()?)?;
        rest = next;
    }
    Some(total)
}

/// The variables, with helpers that try several names (GoTrue accepts aliases) and turn a bad
/// value into an error naming the variable. Every name asked for is remembered, so that the
/// start-up report can name the variables that are set but read by nothing.
pub(super) struct Env {
    vars: HashMap<String, String>,
    read: RefCell<BTreeSet<String>>,
}

impl Env {
    pub(super) fn new(vars: HashMap<String, String>) -> Env {
        Env {
            vars,
            read: RefCell::default(),
        }
    }

    /// Every variable name looked up so far.
    pub(super) fn names_read(&self) -> BTreeSet<String> {
        self.read.borrow().clone()
    }

    /// The variables themselves.
    pub(super) fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    /// The first non-empty variable among `names`, with the name that matched.
    pub(super) fn get(&self, names: &[&str]) -> Option<(String, String)> {
        self.read
            .borrow_mut()
            .extend(names.iter().map(|name| (*name).to_owned()));
        names.iter().find_map(|name| {
            self.vars
                .get(*name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| ((*name).to_owned(), v.to_owned()))
        })
    }

    pub(super) fn string_or(&self, names: &[&str], default: &str) -> String {
        self.get(names).map(|(_, v)| v).unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn parse_or<T: std::str::FromStr>(&self, names: &[&str], default: T) -> Result<T, ConfigError> {
        match self.get(names) {
            None => Ok(default),
            Some((var, value)) => value.parse().map_err(|_| ConfigError {
                var,
                message: format!("{value:?} is not a valid {}", short_type_name::<T>()),
            }),
        }
    }

    pub(super) fn bool_or(&self, names: &[&str], default: bool) -> Result<bool, ConfigError> {
        match self.get(names) {
            None => Ok(default),
            Some((var, value)) => match value.to_ascii_lowercase().as_str() {
                "1" | "t" | "true" | "yes" | "on" => Ok(true),
                "0" | "f" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError {
                    var,
                    message: format!("{value:?} is not a boolean (true/false)"),
                }),
            },
        }
    }

    pub(super) fn duration_or(&self, names: &[&str], default: Duration) -> Result<Duration, ConfigError> {
        match self.get(names) {
            None => Ok(default),
            Some((var, value)) => parse_duration(&value).ok_or_else(|| ConfigError {
                var,
                message: format!("{value:?} is not a duration (seconds, or like 10s, 5m, 1h)"),
            }),
        }
    }

    /// [`Env::duration_or`] for a duration that must not be zero.
    pub(super) fn positive_duration_or(&self, names: &[&str], default: Duration) -> Result<Duration, ConfigError> {
        let value = self.duration_or(names, default)?;
        if value.is_zero() {
            return Err(ConfigError {
                var: self.get(names).map_or_else(|| names[0].to_owned(), |(var, _)| var),
                message: "must be positive".into(),
            });
        }
        Ok(value)
    }

    pub(super) fn url_opt(&self, names: &[&str]) -> Result<Option<Url>, ConfigError> {
        match self.get(names) {
            None => Ok(None),
            Some((var, value)) => match Url::parse(&value) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
                _ => Err(ConfigError {
                    var,
                    message: format!("{value:?} is not an http(s) URL"),
                }),
            },
        }
    }

    pub(super) fn list(&self, names: &[&str]) -> Vec<String> {
        self.get(names)
            .map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name {
        "u16" | "u32" | "u64" | "usize" => "non-negative whole number",
        "i64" => "whole number",
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_go_syntax() {
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("1e300"), None, "too large: an error, not a panic");
        assert_eq!(parse_duration("1e300h"), None);
    }
}
