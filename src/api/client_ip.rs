//! Who the client is: the one rule that turns the socket peer, the request headers and the
//! configuration into the client's address. The rate limiter keys on it and the `Client`
//! extractor records it in the audit log and on sessions, so the two cannot disagree.
//!
//! The rule, stricter than GoTrue (which takes the first value of the configured header from
//! anyone, and records `X-Forwarded-For` in the audit log from anyone):
//! - `GOTRUE_RATE_LIMIT_HEADER` is read only when the socket peer is inside
//!   `LATCHKEY_TRUSTED_PROXIES`; without the setting, forwarding headers are ignored.
//! - In the header, entries are read from the right (the proxy next to us appends last) and
//!   the first one outside the trusted ranges is the client: everything left of it was written
//!   by that client and proves nothing. When every entry is trusted, the left-most one counts
//!   (as nginx's `real_ip_recursive` and Rails' `remote_ip` do). A single-value header
//!   (`X-Real-IP`, `CF-Connecting-IP`) is one entry, so its value is taken as it is.
//! - An entry that is not an address, or a header that is not text, makes the whole header
//!   count as absent: the socket address is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::config::RateLimitConfig;

/// A client address and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    pub ip: IpAddr,
    /// `true` when `ip` is the socket peer, `false` when it was read from the header. Only a
    /// socket address can earn the loopback exemption: a header can claim anything.
    pub is_socket_peer: bool,
}

/// The configured rule, and the one-time warnings about forwarding headers it cannot use.
#[derive(Debug)]
pub struct ClientIps {
    header: Option<HeaderName>,
    trusted: Vec<IpNet>,
    /// Forwarding headers seen while `GOTRUE_RATE_LIMIT_HEADER` is unset.
    warned_unconfigured: WarnOnce,
    /// The configured header seen from a peer outside `LATCHKEY_TRUSTED_PROXIES`.
    warned_untrusted: WarnOnce,
}

/// Headers that show a proxy in front of us.
const FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "x-real-ip", "forwarded"];

impl ClientIps {
    pub fn new(config: &RateLimitConfig) -> ClientIps {
        ClientIps {
            header: config.header.clone(),
            trusted: config.trusted_proxies.clone(),
            warned_unconfigured: WarnOnce::default(),
            warned_untrusted: WarnOnce::default(),
        }
    }

    /// The client address of a request; `None` only for in-process callers that have no
    /// socket (`ConnectInfo`).
    pub fn of(&self, parts: &Parts) -> Option<ClientAddress> {
        let socket = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if let Some(message) = self.warning(&parts.headers, socket) {
            tracing::warn!("{message}");
        }
        client_address(&parts.headers, socket, self.header.as_ref(), &self.trusted)
    }

    /// The warning to log for this request, at most once per kind and process.
    fn warning(&self, headers: &HeaderMap, socket: Option<IpAddr>) -> Option<&'static str> {
        match &self.header {
            None if !self.warned_unconfigured.done()
                && FORWARDING_HEADERS.iter().any(|name| headers.contains_key(*name))
                && self.warned_unconfigured.first() =>
            {
                Some(
                    "requests arrive with X-Forwarded-For, X-Real-IP or Forwarded, but \
                     GOTRUE_RATE_LIMIT_HEADER is not set: these headers are ignored, so every \
                     client behind that proxy shares one rate-limit budget and is recorded with \
                     the proxy's address; set GOTRUE_RATE_LIMIT_HEADER to the header the proxy \
                     sets (and LATCHKEY_TRUSTED_PROXIES to the proxy's range if it is not on \
                     loopback or a private network)",
                )
            }
            Some(name)
                if !self.warned_untrusted.done()
                    && headers.contains_key(name)
                    && socket.is_some_and(|peer| !is_trusted(&self.trusted, peer))
                    && self.warned_untrusted.first() =>
            {
                Some(
                    "a request carried the GOTRUE_RATE_LIMIT_HEADER header from a peer outside \
                     LATCHKEY_TRUSTED_PROXIES: the header is ignored and the peer's own address \
                     counts; if that peer is your proxy, add its range to \
                     LATCHKEY_TRUSTED_PROXIES",
                )
            }
            _ => None,
        }
    }
}

/// The client address (see the module comment for the rule). IPv4-mapped IPv6 addresses
/// count as the IPv4 address, everywhere.
pub fn client_address(
    headers: &HeaderMap,
    socket: Option<IpAddr>,
    header: Option<&HeaderName>,
    trusted: &[IpNet],
) -> Option<ClientAddress> {
    let peer = socket?.to_canonical();
    let forwarded = header
        .filter(|_| is_trusted(trusted, peer))
        .and_then(|name| forwarded_client(headers, name, trusted));
    Some(match forwarded {
        Some(ip) => ClientAddress {
            ip,
            is_socket_peer: false,
        },
        None => ClientAddress {
            ip: peer,
            is_socket_peer: true,
        },
    })
}

fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// The right-most entry of the header outside the trusted ranges, else the left-most entry.
/// Several lines of the header read as one list, in order.
fn forwarded_client(headers: &HeaderMap, name: &HeaderName, trusted: &[IpNet]) -> Option<IpAddr> {
    let mut leftmost = None;
    for value in headers.get_all(name).iter().rev() {
        for entry in value.to_str().ok()?.rsplit(',') {
            let ip = parse_entry(entry)?.to_canonical();
            if !is_trusted(trusted, ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
    }
    leftmost
}

/// One entry: `203.0.113.7`, `2001:db8::1`, the forms some proxies send (`203.0.113.7:4711`,
/// `[2001:db8::1]:4711`, `[2001:db8::1]`), or an RFC 7239 `Forwarded` element
/// (`for=203.0.113.7;proto=https`, `for="[2001:db8::1]:4711"`).
fn parse_entry(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if raw.contains('=') {
        let node = raw.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim().eq_ignore_ascii_case("for").then_some(value)
        })?;
        return parse_address(node.trim().trim_matches('"'));
    }
    parse_address(raw)
}

fn parse_address(raw: &str) -> Option<IpAddr> {
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

/// A flag that lets a warning through once.
#[derive(Debug, Default)]
struct WarnOnce(AtomicBool);

impl WarnOnce {
    /// A cheap look before the work of deciding whether to warn.
    fn done(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `true` for exactly one caller, however many race.
    fn first(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn default_trusted() -> Vec<IpNet> {
        crate::config::Config::from_vars(Default::default())
            .unwrap()
            .rate_limit
            .trusted_proxies
    }

    /// What `headers` resolve to from `peer` with `X-Forwarded-For` configured: the address
    /// and whether it is the socket's.
    fn through(peer: &str, pairs: &[(&'static str, &str)]) -> (IpAddr, bool) {
        let found = client_address(&headers(pairs), Some(ip(peer)), Some(&XFF), &default_trusted()).unwrap();
        (found.ip, found.is_socket_peer)
    }

    #[test]
    fn without_a_configured_header_the_socket_address_counts() {
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9"), ("x-real-ip", "203.0.113.9")]);
        let found = client_address(&spoofed, Some(ip("10.0.0.2")), None, &default_trusted());
        assert_eq!(
            found,
            Some(ClientAddress {
                ip: ip("10.0.0.2"),
                is_socket_peer: true
            })
        );
        // In process, without a socket: no address at all.
        assert_eq!(client_address(&spoofed, None, Some(&XFF), &default_trusted()), None);
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_peer() {
        let claim = [("x-forwarded-for", "203.0.113.9")];
        for peer in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(through(peer, &claim), (ip("203.0.113.9"), false), "{peer}");
        }
        for peer in ["198.51.100.1", "172.32.0.1", "2001:db8::1"] {
            assert_eq!(through(peer, &claim).0, ip(peer).to_canonical(), "{peer}");
        }
        // Another header than the configured one is never read.
        assert_eq!(through("10.0.0.2", &[("x-real-ip", "203.0.113.9")]).0, ip("10.0.0.2"));
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        for (value, expected) in [
            // The client wrote the left part; the proxy appended what it saw.
            ("1.2.3.4, 203.0.113.9", "203.0.113.9"),
            ("127.0.0.1, 203.0.113.9", "203.0.113.9"),
            // A chain of trusted proxies is skipped.
            ("203.0.113.9, 10.0.0.3, 192.168.0.7", "203.0.113.9"),
            // All trusted: the furthest one.
            ("10.0.0.5, 10.0.0.3", "10.0.0.5"),
            ("203.0.113.9", "203.0.113.9"),
            (" 203.0.113.9 ", "203.0.113.9"),
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            // Garbage left of the client does not matter.
            ("unknown, 203.0.113.9", "203.0.113.9"),
        ] {
            assert_eq!(
                through("10.0.0.2", &[("x-forwarded-for", value)]),
                (ip(expected), false),
                "{value}"
            );
        }
        // Several header lines are one list, in order.
        let lines = [("x-forwarded-for", "203.0.113.1"), ("x-forwarded-for", "203.0.113.2")];
        assert_eq!(through("10.0.0.2", &lines).0, ip("203.0.113.2"));
    }

    #[test]
    fn an_unreadable_header_counts_as_absent() {
        for value in ["203.0.113.9, unknown", "", "not an address", "203.0.113.9,"] {
            assert_eq!(
                through("10.0.0.2", &[("x-forwarded-for", value)]),
                (ip("10.0.0.2"), true),
                "{value:?}"
            );
        }
        let mut binary = HeaderMap::new();
        binary.insert(XFF, HeaderValue::from_bytes(b"203.0.113.\xff").unwrap());
        let found = client_address(&binary, Some(ip("10.0.0.2")), Some(&XFF), &default_trusted()).unwrap();
        assert!(found.is_socket_peer);
    }

    #[test]
    fn rfc_7239_forwarded_elements_are_read() {
        let forwarded = HeaderName::from_static("forwarded");
        let resolve = |value: &str| {
            client_address(
                &headers(&[("forwarded", value)]),
                Some(ip("10.0.0.2")),
                Some(&forwarded),
                &default_trusted(),
            )
            .unwrap()
            .ip
        };
        assert_eq!(resolve("for=192.0.2.60;proto=http;by=203.0.113.43"), ip("192.0.2.60"));
        assert_eq!(resolve(r#"for="[2001:db8:cafe::17]:4711""#), ip("2001:db8:cafe::17"));
        assert_eq!(resolve("For=192.0.2.43, for=198.51.100.17"), ip("198.51.100.17"));
        assert_eq!(resolve("proto=https;for=192.0.2.43"), ip("192.0.2.43"));
        // Obfuscated or unknown nodes: the socket address.
        assert_eq!(resolve("for=unknown"), ip("10.0.0.2"));
        assert_eq!(
            resolve("for=_hidden, for=192.0.2.1;proto=https;by=x, for=_x"),
            ip("10.0.0.2")
        );
        assert_eq!(resolve("proto=https"), ip("10.0.0.2"));
    }

    fn client_ips(header: Option<&'static str>) -> ClientIps {
        let mut vars = std::collections::HashMap::new();
        if let Some(header) = header {
            vars.insert("GOTRUE_RATE_LIMIT_HEADER".to_owned(), header.to_owned());
        }
        ClientIps::new(&crate::config::Config::from_vars(vars).unwrap().rate_limit)
    }

    #[test]
    fn forwarding_headers_without_the_setting_are_reported_once() {
        let ips = client_ips(None);
        let peer = Some(ip("10.0.0.2"));
        assert_eq!(ips.warning(&HeaderMap::new(), peer), None);
        let first = ips
            .warning(&headers(&[("x-forwarded-for", "203.0.113.9")]), peer)
            .unwrap();
        assert!(first.contains("GOTRUE_RATE_LIMIT_HEADER") && first.contains("LATCHKEY_TRUSTED_PROXIES"));
        assert!(first.contains("shares one rate-limit budget"));
        for name in FORWARDING_HEADERS {
            assert_eq!(ips.warning(&headers(&[(name, "203.0.113.9")]), peer), None, "{name}");
        }
        // Each of the three headers triggers it.
        for name in FORWARDING_HEADERS {
            assert!(
                client_ips(None).warning(&headers(&[(name, "x")]), peer).is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_header_from_an_untrusted_peer_is_reported_once() {
        let ips = client_ips(Some("X-Forwarded-For"));
        let claim = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // From a trusted peer, or without the header: nothing to say.
        assert_eq!(ips.warning(&claim, Some(ip("10.0.0.2"))), None);
        assert_eq!(ips.warning(&HeaderMap::new(), Some(ip("198.51.100.1"))), None);
        assert_eq!(
            ips.warning(&headers(&[("x-real-ip", "1.2.3.4")]), Some(ip("198.51.100.1"))),
            None
        );
        let first = ips.warning(&claim, Some(ip("198.51.100.1"))).unwrap();
        assert!(first.contains("LATCHKEY_TRUSTED_PROXIES"));
        assert_eq!(ips.warning(&claim, Some(ip("198.51.100.2"))), None);
    }

    #[test]
    fn warn_once_lets_exactly_one_through() {
        let once = WarnOnce::default();
        assert!(!once.done());
        assert!(once.first());
        assert!(once.done());
        assert!(!once.first());
        assert!(!once.first());
    }
}
