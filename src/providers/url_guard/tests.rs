use super::*;

const STRICT: UrlPolicy = UrlPolicy { allow_private: false };
const RELAXED: UrlPolicy = UrlPolicy { allow_private: true };

#[test]
fn addresses_are_judged_in_every_spelling() {
    let refused = [
        "127.0.0.1",
        "127.255.255.254",
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::2",
        "::127.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "::ffff:0:127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::1",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "2001::1",
        "2001:db8::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "100::1",
    ];
    for ip in refused {
        assert!(!is_public(ip.parse().unwrap()), "{ip} must not be public");
    }
    let allowed = [
        "1.1.1.1",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::",
    ];
    for ip in allowed {
        assert!(is_public(ip.parse().unwrap()), "{ip} is public");
    }
}

#[test]
fn urls_without_dns_are_judged_as_a_browser_parses_them() {
    let cases = [
        ("http://idp.example.com", UrlRefusal::NotHttps),
        ("ftp://idp.example.com", UrlRefusal::NotHttps),
        ("file:///etc/passwd", UrlRefusal::NotHttps),
        ("javascript:alert(1)", UrlRefusal::NotHttps),
        ("not a url", UrlRefusal::Malformed),
        ("", UrlRefusal::Malformed),
        ("https://user:pass@idp.example.com", UrlRefusal::Credentials),
        ("https://user@idp.example.com", UrlRefusal::Credentials),
        ("https://localhost", UrlRefusal::Localhost),
        ("https://LOCALHOST.:8443/x", UrlRefusal::Localhost),
        ("https://api.localhost", UrlRefusal::Localhost),
        ("https://127.0.0.1", UrlRefusal::Localhost),
        ("https://127.1", UrlRefusal::Localhost),
        ("https://0x7f000001", UrlRefusal::Localhost),
        ("https://2130706433", UrlRefusal::Localhost),
        ("https://0177.0.0.1", UrlRefusal::Localhost),
        ("https://0.0.0.0", UrlRefusal::Localhost),
        ("https://[::1]", UrlRefusal::Localhost),
        ("https://[::]", UrlRefusal::Localhost),
        ("https://[::ffff:127.0.0.1]", UrlRefusal::NotPublic),
        ("https://[::ffff:7f00:1]", UrlRefusal::NotPublic),
        ("https://[0:0:0:0:0:ffff:a9fe:a9fe]", UrlRefusal::NotPublic),
        ("https://169.254.169.254/latest/meta-data", UrlRefusal::NotPublic),
        ("https://10.0.0.1", UrlRefusal::NotPublic),
        ("https://[fd00::1]", UrlRefusal::NotPublic),
        ("https://[fe80::1%25eth0]", UrlRefusal::Malformed),
    ];
    for (url, refusal) in cases {
        assert_eq!(STRICT.check(url), Err(refusal), "{url}");
    }
    for url in [
        "https://idp.example.com",
        "https://idp.example.com:8443/realms/x",
        "https://8.8.8.8/x",
        "https://[2606:4700:4700::1111]/",
    ] {
        assert!(STRICT.check(url).is_ok(), "{url}");
    }
}

#[test]
fn private_urls_are_allowed_only_when_asked_for() {
    for url in ["http://127.0.0.1:1234/issuer", "http://localhost:1", "https://10.0.0.1"] {
        assert!(RELAXED.check(url).is_ok(), "{url}");
        assert!(STRICT.check(url).is_err(), "{url}");
    }
    // Even then: only web URLs, without credentials.
    assert_eq!(RELAXED.check("file:///etc/passwd"), Err(UrlRefusal::NotHttps));
    assert_eq!(RELAXED.check("https://a:b@127.0.0.1"), Err(UrlRefusal::Credentials));
}

#[test]
fn a_name_is_judged_by_every_address_it_resolves_to() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(all_public(&[ip("8.8.8.8"), ip("1.1.1.1")]), Ok(()));
    assert_eq!(all_public(&[ip("8.8.8.8"), ip("10.0.0.1")]), Err(UrlRefusal::NotPublic));
    assert_eq!(all_public(&[ip("::1")]), Err(UrlRefusal::NotPublic));
    assert_eq!(all_public(&[]), Err(UrlRefusal::Unresolvable));
}

#[tokio::test]
async fn names_that_resolve_to_loopback_are_refused_when_saved() {
    // `localhost` resolves without a network; a name must not pass by spelling alone.
    assert_eq!(
        STRICT.check_resolved("https://localhost").await,
        Err(UrlRefusal::Localhost)
    );
    assert_eq!(
        STRICT.check_resolved("https://no-such-host.invalid").await,
        Err(UrlRefusal::Unresolvable)
    );
}

/// The client of custom providers does not connect to a name that resolves to a loopback
/// address, even when the URL itself was never checked (DNS rebinding after the check).
#[tokio::test]
async fn the_guarded_resolver_refuses_to_connect_to_loopback() {
    use reqwest::dns::Resolve;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = reqwest::Client::builder()
        .dns_resolver(PublicOnlyResolver)
        .no_proxy()
        .build()
        .unwrap();
    let err = client
        .get(format!("http://localhost:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let accepted = tokio::time::timeout(std::time::Duration::from_millis(50), listener.accept()).await;
    assert!(accepted.is_err(), "nothing reached the listener");
    let name = "localhost".parse().unwrap();
    assert!(PublicOnlyResolver.resolve(name).await.is_err());
}
