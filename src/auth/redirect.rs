//! `redirect_to` validation (GoTrue's `utilities.IsRedirectURLValid`): a redirect is
//! followed only back to the site (same scheme, host and port; any port on loopback), to a
//! loopback IP, or to an address matching a `GOTRUE_URI_ALLOW_LIST` glob. Anything else
//! falls back to the site URL, so email links can never be turned into open redirects.

use std::net::IpAddr;

use url::{Host, Url};

/// The redirect target to use: the first of `candidates` that is allowed, else the site URL.
pub fn choose<'a>(
    candidates: impl IntoIterator<Item = Option<&'a str>>,
    site_url: &Url,
    allow_list: &[String],
) -> String {
    candidates
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|candidate| is_allowed(candidate, site_url, allow_list))
        .map(str::to_owned)
        .unwrap_or_else(|| site_url.to_string())
}

pub fn is_allowed(redirect: &str, site_url: &Url, allow_list: &[String]) -> bool {
    if redirect.is_empty() {
        return false;
    }
    let Ok(target) = Url::parse(redirect) else {
        return false;
    };
    let raw_host = raw_hostname(redirect);
    if target.scheme() == site_url.scheme()
        && target.host_str().is_some()
        && target.host_str() == site_url.host_str()
        && (target.port_or_known_default() == site_url.port_or_known_default() || is_loopback(&target))
    {
        return true;
    }
    let is_http = matches!(target.scheme(), "http" | "https");
    if !raw_host.is_empty() && raw_host.bytes().all(|b| b.is_ascii_digit()) {
        // A host like 2130706433 is an IP address in decimal form: never followed.
        return false;
    }
    match target.host() {
        Some(Host::Ipv4(ip)) => return ip.is_loopback(),
        Some(Host::Ipv6(ip)) => return ip.is_loopback(),
        _ => {}
    }
    if is_http && !is_regular_hostname(&raw_host) {
        return false;
    }
    let without_fragment = redirect.split('#').next().unwrap_or("");
    allow_list.iter().any(|pattern| glob_matches(pattern, without_fragment))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The host exactly as written (the URL parser normalises decimal and hex IPv4 forms).
fn raw_hostname(raw: &str) -> String {
    let Some((_, rest)) = raw.split_once("://") else {
        return String::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
            .to_owned();
    }
    host_port.split(':').next().unwrap_or("").to_owned()
}

/// `^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$`
fn is_regular_hostname(host: &str) -> bool {
    let bytes = host.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
}

/// Glob matching as gobwas/glob compiles GoTrue's allow list, with `.` and `/` as
/// separators: `*` matches within a label or path segment, `**` across them, `?` one
/// non-separator character, `{a,b}` alternatives, `\` escapes. Character classes are not
/// supported (taken literally).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    expand_braces(pattern)
        .iter()
        .any(|p| match_from(&p.chars().collect::<Vec<_>>(), &text.chars().collect::<Vec<_>>()))
}

fn is_separator(c: char) -> bool {
    c == '.' || c == '/'
}

fn match_from(pattern: &[char], text: &[char]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('*') if pattern.get(1) == Some(&'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|skip| match_from(rest, &text[skip..]))
        }
        Some('*') => {
            let rest = &pattern[1..];
            let run = text.iter().take_while(|c| !is_separator(**c)).count();
            (0..=run).any(|skip| match_from(rest, &text[skip..]))
        }
        Some('?') => text.first().is_some_and(|c| !is_separator(*c)) && match_from(&pattern[1..], &text[1..]),
        Some('\\') if pattern.len() > 1 => text.first() == Some(&pattern[1]) && match_from(&pattern[2..], &text[1..]),
        Some(c) => text.first() == Some(c) && match_from(&pattern[1..], &text[1..]),
    }
}

/// `a{b,c}d` → `abd`, `acd` (nested braces are expanded recursively).
fn expand_braces(pattern: &str) -> Vec<String> {
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_owned()];
    };
    let mut depth = 0;
    let mut close = None;
    let mut splits = Vec::new();
    for (i, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => splits.push(open + i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_owned()];
    };
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(splits);
    bounds.push(close);
    bounds
        .windows(2)
        .flat_map(|w| expand_braces(&format!("{prefix}{}{suffix}", &pattern[w[0] + 1..w[1]])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Url {
        Url::parse("https://app.example.com").unwrap()
    }

    #[test]
    fn the_site_itself_is_allowed() {
        assert!(is_allowed("https://app.example.com/welcome?x=1", &site(), &[]));
        assert!(
            !is_allowed("http://app.example.com/welcome", &site(), &[]),
            "scheme differs"
        );
        assert!(
            !is_allowed("https://app.example.com:8443/", &site(), &[]),
            "port differs"
        );
        assert!(!is_allowed("https://evil.com/app.example.com", &site(), &[]));
        assert!(!is_allowed("https://app.example.com.evil.com/", &site(), &[]));
        assert!(!is_allowed("https://app.example.com@evil.com/", &site(), &[]));
    }

    #[test]
    fn localhost_ignores_the_port_and_loopback_ips_are_allowed() {
        let local = Url::parse("http://localhost:3000").unwrap();
        assert!(is_allowed("http://localhost:5173/cb", &local, &[]));
        assert!(is_allowed("http://127.0.0.1:8080/cb", &site(), &[]));
        assert!(is_allowed("http://[::1]:8080/cb", &site(), &[]));
        assert!(!is_allowed("http://2130706433/", &site(), &[]), "decimal IP");
        assert!(
            !is_allowed("http://10.0.0.1/", &site(), &["**".into()]),
            "non-loopback IP"
        );
    }

    #[test]
    fn allow_list_globs() {
        let allow = vec![
            "https://*.example.org/**".to_owned(),
            "myapp://callback".to_owned(),
            "http://localhost:3000/*".to_owned(),
        ];
        assert!(is_allowed("https://preview.example.org/a/b?c=d", &site(), &allow));
        assert!(
            !is_allowed("https://a.b.example.org/", &site(), &allow),
            "* stays in one label"
        );
        assert!(!is_allowed("https://example.org.evil.com/", &site(), &allow));
        assert!(is_allowed("myapp://callback", &site(), &allow));
        assert!(is_allowed("myapp://callback#frag", &site(), &allow));
        assert!(!is_allowed("https://evil.com/?https://x.example.org/", &site(), &allow));
        assert!(!is_allowed("https://ev!l.com/", &site(), &["**".into()]));
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_matches("a*c", "abc"));
        assert!(!glob_matches("a*c", "a/c/c"));
        assert!(glob_matches("a**c", "a/b.c"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "a.c"));
        assert!(glob_matches("https://{a,b}.x.io", "https://b.x.io"));
        assert!(!glob_matches("https://{a,b}.x.io", "https://c.x.io"));
        assert!(glob_matches("a\\*", "a*"));
        assert!(!glob_matches("a\\*", "ab"));
    }

    #[test]
    fn choose_falls_back_to_the_site() {
        let allow = vec![];
        assert_eq!(
            choose([Some("https://evil.com")], &site(), &allow),
            "https://app.example.com/"
        );
        assert_eq!(
            choose(
                [Some("https://evil.com"), Some("https://app.example.com/from-referer")],
                &site(),
                &allow
            ),
            "https://app.example.com/from-referer"
        );
        assert_eq!(choose([None, None], &site(), &allow), "https://app.example.com/");
    }
}
