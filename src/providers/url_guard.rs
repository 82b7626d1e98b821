//! Server-side request forgery rules for the URLs of custom providers (GoTrue's
//! `utilities.ValidateOAuthURL`): an admin gives Latchkey URLs it will then call from inside
//! the network (discovery, keys, token, userinfo), so they must be `https://` and reach only
//! public addresses: not loopback, private, link-local (cloud metadata at 169.254.169.254),
//! shared, multicast, reserved or documentation ranges, whatever form the address takes
//! (`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`, 6to4 or NAT64 wrappings of such an address).
//!
//! A name is judged by what it resolves to, every time: once when the admin saves the URL
//! ([`check_resolved`]) and again on every connection ([`PublicOnlyResolver`], the DNS resolver
//! of the custom providers' HTTP client), so a name that resolves to a public address when
//! saved and to 127.0.0.1 later (DNS rebinding) reaches nothing. The client follows no
//! redirects and uses no proxy, so neither can lead it elsewhere.
//!
//! `LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS=true` lifts all of this (also `http://`), for local
//! development and tests against fakes on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use ipnet::IpNet;
use url::{Host, Url};

/// Why a URL was refused; the text is GoTrue's message (shown to the admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("Invalid URL format")]
    Malformed,
    #[error("URL must use HTTPS")]
    NotHttps,
    #[error("URL must have a valid hostname")]
    NoHost,
    #[error("URL cannot contain credentials")]
    Credentials,
    #[error("URL cannot point to localhost or loopback addresses")]
    Localhost,
    #[error("URL cannot resolve to loopback, private, link-local or reserved addresses")]
    NotPublic,
    #[error("Unable to resolve hostname")]
    Unresolvable,
}

/// What the custom providers' URLs may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_private: bool,
}

impl UrlPolicy {
    /// The checks that need no DNS: the URL parses (the WHATWG way, so `127.1` is judged as
    /// the 127.0.0.1 it means), is `https://` (or `http://` when private URLs are allowed),
    /// has a host and no credentials, and is not a loopback name or a non-public address.
    pub fn check(self, raw: &str) -> Result<Url, UrlRefusal> {
        let url = Url::parse(raw.trim()).map_err(|_| UrlRefusal::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            _ => return Err(UrlRefusal::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefusal::Credentials);
        }
        if self.allow_private {
            return url.host().map(|_| url.clone()).ok_or(UrlRefusal::NoHost);
        }
        match url.host().ok_or(UrlRefusal::NoHost)? {
            Host::Domain(name) if is_localhost_name(name) => Err(UrlRefusal::Localhost),
            Host::Domain("") => Err(UrlRefusal::NoHost),
            Host::Domain(_) => Ok(url.clone()),
            Host::Ipv4(ip) if ip.is_loopback() || ip.is_unspecified() => Err(UrlRefusal::Localhost),
            Host::Ipv6(ip) if ip.is_loopback() || ip.is_unspecified() => Err(UrlRefusal::Localhost),
            Host::Ipv4(ip) => public(IpAddr::V4(ip)).map(|_| url.clone()),
            Host::Ipv6(ip) => public(IpAddr::V6(ip)).map(|_| url.clone()),
        }
    }

    /// [`UrlPolicy::check`], then the name is resolved and every address it resolves to must
    /// be public (one private address among public ones is enough to refuse it).
    pub async fn check_resolved(self, raw: &str) -> Result<Url, UrlRefusal> {
        let url = self.check(raw)?;
        if self.allow_private {
            return Ok(url);
        }
        if let Some(Host::Domain(name)) = url.host() {
            let addresses: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
                .await
                .map_err(|_| UrlRefusal::Unresolvable)?
                .map(|address| address.ip())
                .collect();
            all_public(&addresses)?;
        }
        Ok(url)
    }
}

fn public(ip: IpAddr) -> Result<(), UrlRefusal> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(UrlRefusal::NotPublic)
    }
}

fn all_public(addresses: &[IpAddr]) -> Result<(), UrlRefusal> {
    if addresses.is_empty() {
        return Err(UrlRefusal::Unresolvable);
    }
    addresses.iter().try_for_each(|ip| public(*ip))
}

/// `localhost`, `LOCALHOST.`, `api.localhost` (RFC 6761 reserves the whole zone).
fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Ranges no custom provider lives in (IANA's special-purpose registries).
static NOT_PUBLIC: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",       // "this network"
        "10.0.0.0/8",      // private
        "100.64.0.0/10",   // shared address space (carrier-grade NAT)
        "127.0.0.0/8",     // loopback
        "169.254.0.0/16",  // link-local, cloud metadata
        "172.16.0.0/12",   // private
        "192.0.0.0/24",    // IETF protocol assignments
        "192.0.2.0/24",    // documentation
        "192.88.99.0/24",  // 6to4 relay anycast
        "192.168.0.0/16",  // private
        "198.18.0.0/15",   // benchmarking
        "198.51.100.0/24", // documentation
        "203.0.113.0/24",  // documentation
        "224.0.0.0/4",     // multicast
        "240.0.0.0/4",     // reserved, broadcast
        "::/128",          // unspecified
        "::1/128",         // loopback
        "64:ff9b:1::/48",  // local-use IPv4/IPv6 translation
        "100::/64",        // discard
        "2001::/23",       // IETF protocol assignments, Teredo (tunnels to any IPv4 address)
        "2001:db8::/32",   // documentation
        "3fff::/20",       // documentation
        "5f00::/16",       // segment routing
        "fc00::/7",        // unique local
        "fe80::/10",       // link-local
        "fec0::/10",       // site-local (deprecated)
        "ff00::/8",        // multicast
    ]
    .iter()
    // The list is constant and every entry above parses.
    .filter_map(|net| net.parse().ok())
    .collect()
});

/// Whether `ip` is an address on the public internet. An IPv6 address that carries an IPv4
/// address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`,
/// 6to4 `2002:aabb:ccdd::`) is judged by the IPv4 address it reaches.
pub fn is_public(ip: IpAddr) -> bool {
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = embedded_ipv4(v6)
    {
        return is_public(IpAddr::V4(v4));
    }
    !NOT_PUBLIC.iter().any(|net| net.contains(&ip))
}

fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped ::ffff:0:0/96 and IPv4-translated ::ffff:0:0:0/96.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low()),
        // IPv4-compatible ::/96 (:: and ::1 become 0.0.0.0 and 0.0.0.1: not public either).
        [0, 0, 0, 0, 0, 0, _, _] => Some(low()),
        // NAT64 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low()),
        // 6to4 2002::/16: the IPv4 address is in bits 16..48.
        [0x2002, a, b, ..] => Some(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)),
        _ => None,
    }
}

/// The DNS resolver of the custom providers' HTTP client: a name resolving to any address
/// that is not public is not connected to at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            if is_localhost_name(&name) {
                return Err(format!("refused to connect to {name}: a loopback name").into());
            }
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
            all_public(&ips).map_err(|refusal| format!("refused to connect to {name}: {refusal}"))?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests;
