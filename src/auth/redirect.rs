//! `redirect_to` judging (GoTrue's `utilities.IsRedirectURLValid`), done on the URL as a
//! browser will parse it: the WHATWG parser of the `url` crate. A redirect is followed only
//! back to the site (same scheme, host and port; any port on localhost), to a loopback IP, or
//! to an address matching a `GOTRUE_URI_ALLOW_LIST` glob. Anything else falls back to the site
//! URL, so email links and OAuth callbacks can never be turned into open redirects.
//!
//! What is handed on (stored in the flow state, put in mail links and `Location` headers) is
//! the parsed URL serialised again, never the raw string: what the browser reads is exactly
//! what was judged.
//!
//! Stricter than GoTrue, which judged a mix of Go's parser, a hand-split host and a glob over
//! the raw string: any input the WHATWG parser reports a syntax violation for is refused, as
//! is any backslash, control or whitespace character, credentials (`user@`), a
//! percent-encoded or non-ASCII host, a host not written the way the parser serialises it
//! (`127.1`, `0x7f.0.0.1`, `[0:0::1]`) and the `javascript:`, `data:`, `vbscript:` and `file:`
//! schemes whatever the allow list says.

mod glob;
#[cfg(test)]
mod hostile;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use url::{Host, Position, Url};

pub use glob::{Glob, GlobError};

/// Schemes never followed, even when an allow-list pattern would match.
const FORBIDDEN_SCHEMES: [&str; 4] = ["javascript", "data", "vbscript", "file"];

/// The site URL and the compiled allow list: built once at start-up.
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    site_url: Url,
    allow_list: Vec<Glob>,
}

/// A `GOTRUE_URI_ALLOW_LIST` entry that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: GlobError,
}

impl RedirectPolicy {
    pub fn new(site_url: Url, allow_list: &[String]) -> Result<RedirectPolicy, PatternError> {
        let allow_list = allow_list
            .iter()
            .map(|pattern| {
                Glob::compile(&normalise_pattern(pattern)).map_err(|reason| PatternError {
                    pattern: pattern.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(RedirectPolicy { site_url, allow_list })
    }

    pub fn site_url(&self) -> &Url {
        &self.site_url
    }

    /// The first of `candidates` that may be followed, re-serialised; else the site URL.
    pub fn choose<'a>(&self, candidates: impl IntoIterator<Item = Option<&'a str>>) -> Url {
        candidates
            .into_iter()
            .flatten()
            .find_map(|candidate| self.judge(candidate))
            .unwrap_or_else(|| self.site_url.clone())
    }

    /// The parsed `candidate` when it may be followed.
    pub fn judge(&self, candidate: &str) -> Option<Url> {
        let target = parse_strictly(candidate)?;
        self.is_allowed(&target).then_some(target)
    }

    fn is_allowed(&self, target: &Url) -> bool {
        if is_same_site(target, &self.site_url) {
            return true;
        }
        let is_http = matches!(target.scheme(), "http" | "https");
        match target.host() {
            // GoTrue's rule: an IP address is followed only when it is loopback; the allow
            // list is not consulted for IP addresses.
            Some(Host::Ipv4(ip)) => return is_http && ip.is_loopback(),
            Some(Host::Ipv6(ip)) => return is_http && ip.is_loopback(),
            Some(Host::Domain(domain)) if is_http && !is_regular_hostname(domain) => return false,
            _ => {}
        }
        match_forms(target).any(|form| self.allow_list.iter().any(|glob| glob.is_match(form)))
    }
}

/// `raw` parsed as a browser parses it, or `None` when it is malformed, ambiguous or of a
/// kind that is never followed.
fn parse_strictly(raw: &str) -> Option<Url> {
    if raw.is_empty()
        || raw.starts_with('/')
        || raw.contains('\\')
        || raw.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let violated = std::cell::Cell::new(false);
    let report = |_| violated.set(true);
    let url = Url::options()
        .syntax_violation_callback(Some(&report))
        .parse(raw)
        .ok()?;
    if violated.get() || FORBIDDEN_SCHEMES.contains(&url.scheme()) {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    if matches!(url.scheme(), "http" | "https") && url.host().is_none() {
        return None;
    }
    is_written_as_parsed(raw, &url).then_some(url)
}

/// The authority as written must be plain ASCII without `%` or `@`, and the host as written
/// must be the host the parser produced (up to ASCII case). This refuses percent-encoded and
/// international hosts (`evil%2Ecom`, full-width dots) and the numeric IPv4 and long IPv6
/// forms (`2130706433`, `0x7f.1`, `[0:0:0:0:0:0:0:1]`) that different parsers read differently.
fn is_written_as_parsed(raw: &str, url: &Url) -> bool {
    let Some(parsed_host) = url.host_str() else {
        return true;
    };
    // No violation, no backslash and a host: the input is `scheme://authority...`.
    let Some((_, rest)) = raw.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if !authority.is_ascii() || authority.contains(['%', '@']) {
        return false;
    }
    let written_host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    written_host.eq_ignore_ascii_case(parsed_host)
}

fn is_same_site(target: &Url, site: &Url) -> bool {
    target.scheme() == site.scheme()
        && target.host().is_some()
        && target.host() == site.host()
        && (target.port_or_known_default() == site.port_or_known_default() || is_localhost(target))
}

/// Native apps may listen on any port of the loopback interface (RFC 8252, section 7.3).
fn is_localhost(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// GoTrue's `^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$` for http(s) hosts: no trailing dot,
/// no `_`, none of the punctuation WHATWG lets through in a domain.
fn is_regular_hostname(host: &str) -> bool {
    let bytes = host.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
}

/// The strings the allow list is matched against: the re-serialised URL without its
/// fragment (query included, as GoTrue matches the raw string up to `#`), and, when the path
/// is just the `/` the parser adds after a host, the same without it, so that a pattern
/// written `https://app.example.com` still matches.
fn match_forms(url: &Url) -> impl Iterator<Item = &str> {
    let full = &url[..Position::AfterQuery];
    let without_root_slash =
        (url.has_host() && url.path() == "/" && url.query().is_none()).then(|| &url[..Position::BeforePath]);
    std::iter::once(full).chain(without_root_slash)
}

/// The parser lower-cases every scheme and the hosts of http(s) URLs, so a pattern is
/// compared in the same case: its scheme, and for http(s) its authority, are lower-cased.
fn normalise_pattern(pattern: &str) -> String {
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return pattern.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let rest = if matches!(scheme.as_str(), "http" | "https") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        format!(
            "{}{}",
            rest[..authority_end].to_ascii_lowercase(),
            &rest[authority_end..]
        )
    } else {
        rest.to_owned()
    };
    format!("{scheme}://{rest}")
}
