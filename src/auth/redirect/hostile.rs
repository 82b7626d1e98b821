//! Hostile `redirect_to` values and where a browser must end up for each, under
//! `SITE_URL` and `ALLOW_LIST`. Shared by the unit tests of `auth::redirect` and by the
//! integration tests in `tests/it/redirects.rs` (which include this file by path), so both
//! the judge and the HTTP paths (`/verify`, `/callback`) run the very same table.

pub const SITE_URL: &str = "https://app.example.com";

/// `GOTRUE_URI_ALLOW_LIST` for the table (the issue's allow list, plus a mobile deep link).
pub const ALLOW_LIST: &str = "https://*.example.org/**,myapp://callback";

/// `(redirect_to, followed)`: `None` means refused (the site URL is used instead);
/// `Some(url)` is the re-serialised URL that is followed.
pub const HOSTILE: &[(&str, Option<&str>)] = &[
    // The issue: WHATWG reads `\` as `/`, so the host is `evil%2Ecom` = evil.com.
    (r"https://evil%2Ecom\@x.example.org/", None),
    (r"https://evil.com\@x.example.org/", None),
    (r"https://x.example.org\@evil.com/", None),
    (r"https://evil.com\.x.example.org/", None),
    (r"https:\\evil.com/", None),
    (r"https:/\evil.com/", None),
    (r"/\evil.com/", None),
    (r"\\evil.com/", None),
    // Scheme-relative and missing slashes.
    ("//evil.com/", None),
    ("///evil.com/", None),
    ("https:evil.com", None),
    ("https:/evil.com", None),
    ("https:///evil.com", None),
    ("https:x.example.org/", None),
    // Percent-encoded hosts.
    ("https://evil%2Ecom.example.org/", None),
    ("https://x%2Eexample.org/", None),
    ("https://evil.com%23.example.org/", None),
    ("https://evil.com%00.example.org/", None),
    ("https://x.example.org%2F@evil.com/", None),
    // Non-ASCII hosts: full-width dots, homoglyphs.
    ("https://x\u{3002}example\u{3002}org/", None),
    ("https://evil\u{3002}com/", None),
    ("https://x\u{ff0e}example.org/", None),
    ("https://x.ex\u{0430}mple.org/", None),
    ("https://app.ex\u{e4}mple.com/", None),
    // Credentials.
    ("https://app.example.com@evil.com/", None),
    ("https://x.example.org@evil.com/", None),
    ("https://evil.com@x.example.org/", None),
    ("https://user:pass@x.example.org/", None),
    ("https://@x.example.org/", None),
    ("https://evil.com:443@x.example.org/", None),
    // `#` or `?` before the allowed-looking part: the host is what comes first.
    ("https://evil.com#@x.example.org/", None),
    ("https://evil.com?@x.example.org/", None),
    ("https://evil.com#.example.org/", None),
    ("https://evil.com/?x=https://x.example.org/", None),
    ("https://evil.com/x.example.org/", None),
    // ... and the other way round it stays on the allowed host.
    (
        "https://x.example.org?@evil.com",
        Some("https://x.example.org/?@evil.com"),
    ),
    (
        "https://x.example.org/#@evil.com",
        Some("https://x.example.org/#@evil.com"),
    ),
    // Tabs, newlines, spaces and other controls, which parsers drop or stop at.
    ("https://x.exa\tmple.org/", None),
    ("https://ev\nil.com/", None),
    ("https://x.example.org\r\n.evil.com/", None),
    ("\thttps://x.example.org/", None),
    (" https://x.example.org/", None),
    ("https://x.example.org/ ", None),
    ("https://x.example.org/\u{a0}", None),
    ("https://x.example.org\0.evil.com/", None),
    ("https://x.example.org/\u{2028}", None),
    // Upper-case schemes and hosts are read as lower case by the browser too.
    ("HTTPS://EVIL.COM/", None),
    ("HTTPS://X.EXAMPLE.ORG/Path", Some("https://x.example.org/Path")),
    ("hTtPs://App.Example.Com/a", Some("https://app.example.com/a")),
    // IPv4 in other notations (all loopback, which is allowed only written plainly).
    ("http://2130706433/", None),
    ("http://0x7f000001/", None),
    ("http://0x7f.0.0.1/", None),
    ("http://0177.0.0.1/", None),
    ("http://017700000001/", None),
    ("http://127.1/", None),
    ("http://127.0.0.1./", None),
    ("http://3232235777/", None),
    ("http://192.168.1.1/", None),
    ("http://127.0.0.1:8080/cb", Some("http://127.0.0.1:8080/cb")),
    // IPv6.
    ("http://[0:0:0:0:0:0:0:1]/", None),
    ("http://[::ffff:127.0.0.1]/", None),
    ("http://[::ffff:7f00:1]/", None),
    ("http://[2001:db8::1]/", None),
    ("http://[fe80::1%25eth0]/", None),
    ("http://[::1].evil.com/", None),
    ("https://[::1]@evil.com/", None),
    ("http://[::1]:8080/cb", Some("http://[::1]:8080/cb")),
    // Trailing dots and look-alike hosts.
    ("https://app.example.com./", None),
    ("https://x.example.org./", None),
    ("https://.example.org/", None),
    ("https://x.example.org.evil.com/", None),
    ("https://evilexample.org/", None),
    ("https://a.b.example.org/", None),
    ("https://x_y.example.org/", None),
    ("https://x.example.org:8443/", None),
    ("https://x.example.org:443/a", Some("https://x.example.org/a")),
    ("http://x.example.org/", None),
    ("http://localhost.evil.com/", None),
    ("http://localhost@evil.com/", None),
    // Schemes that run code or read files, and others.
    ("javascript:alert(document.cookie)", None),
    ("JaVaScRiPt:alert(1)", None),
    ("javascript://x.example.org/%0aalert(1)", None),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", None),
    ("vbscript:msgbox(1)", None),
    ("file:///etc/passwd", None),
    ("ftp://x.example.org/", None),
    ("myapp://callback@evil.com", None),
    ("myapp://evil.com", None),
    // What the parser calls a syntax violation.
    ("https://x.example.org/<script>", None),
    ("https://x.example.org/%zz", None),
];
