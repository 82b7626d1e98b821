use super::hostile::{ALLOW_LIST, HOSTILE, SITE_URL};
use super::*;

fn policy(site: &str, allow: &[&str]) -> RedirectPolicy {
    let allow: Vec<String> = allow.iter().map(|p| (*p).to_owned()).collect();
    RedirectPolicy::new(Url::parse(site).unwrap(), &allow).unwrap()
}

fn judged(policy: &RedirectPolicy, candidate: &str) -> Option<String> {
    policy.judge(candidate).map(String::from)
}

fn site() -> RedirectPolicy {
    policy("https://app.example.com", &[])
}

#[test]
fn hostile_inputs_are_refused_or_stay_on_an_allowed_host() {
    let allow: Vec<&str> = ALLOW_LIST.split(',').collect();
    let policy = policy(SITE_URL, &allow);
    assert!(HOSTILE.len() >= 30);
    let mut wrong = Vec::new();
    for (input, expected) in HOSTILE {
        let verdict = judged(&policy, input);
        if verdict.as_deref() != *expected {
            wrong.push(format!("{input:?}: expected {expected:?}, got {verdict:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_site_itself_is_allowed() {
    let site = site();
    let allowed = |c: &str| judged(&site, c);
    assert_eq!(
        allowed("https://app.example.com/welcome?x=1").as_deref(),
        Some("https://app.example.com/welcome?x=1")
    );
    assert_eq!(
        allowed("https://app.example.com").as_deref(),
        Some("https://app.example.com/")
    );
    assert_eq!(
        allowed("https://app.example.com:443/").as_deref(),
        Some("https://app.example.com/")
    );
    assert_eq!(allowed("http://app.example.com/welcome"), None, "scheme differs");
    assert_eq!(allowed("https://app.example.com:8443/"), None, "port differs");
    assert_eq!(allowed("https://evil.com/app.example.com"), None);
    assert_eq!(allowed("https://app.example.com.evil.com/"), None);
    assert_eq!(allowed(""), None);
}

#[test]
fn localhost_ignores_the_port_and_loopback_ips_are_allowed() {
    let local = policy("http://localhost:3000", &[]);
    assert_eq!(
        judged(&local, "http://localhost:5173/cb").as_deref(),
        Some("http://localhost:5173/cb")
    );
    assert_eq!(judged(&local, "https://localhost:5173/cb"), None, "scheme differs");
    assert_eq!(judged(&local, "http://localhost.:5173/cb"), None);
    assert!(judged(&site(), "http://127.0.0.1:8080/cb").is_some());
    assert!(judged(&site(), "http://127.9.9.9/").is_some());
    assert!(judged(&site(), "http://[::1]:8080/cb").is_some());
    assert_eq!(judged(&site(), "myapp://[::1]/"), None, "loopback only for http(s)");
    let everything = policy("https://app.example.com", &["**"]);
    assert_eq!(judged(&everything, "http://10.0.0.1/"), None, "non-loopback IP");
    assert_eq!(judged(&everything, "https://ev!l.com/"), None, "irregular host name");
    assert_eq!(judged(&everything, "javascript://x/%0aalert(1)"), None);
    assert!(judged(&everything, "https://anything.example.net/x").is_some());
}

#[test]
fn a_site_on_an_ip_address_is_still_the_site() {
    let lan = policy("http://192.168.1.5:3000", &[]);
    assert!(judged(&lan, "http://192.168.1.5:3000/cb").is_some());
    assert_eq!(judged(&lan, "http://192.168.1.5:3001/cb"), None);
    assert_eq!(
        judged(&lan, "http://3232235781:3000/cb"),
        None,
        "the same IP, in decimal"
    );
}

#[test]
fn supabase_documented_allow_list_examples_keep_working() {
    let policy = policy(
        "https://app.example.com",
        &[
            "http://localhost:3000/**",
            "https://*-myteam.vercel.app/**",
            "myapp://callback",
            "com.example.app://login-callback",
            "exp://**",
            "https://preview.example.net",
            "https://Upper.Example.NET/**",
            "io.Supabase.App://*",
        ],
    );
    for (candidate, followed) in [
        ("http://localhost:3000/welcome", "http://localhost:3000/welcome"),
        ("http://localhost:3000/a/b?c=d", "http://localhost:3000/a/b?c=d"),
        (
            "https://my-app-git-main-myteam.vercel.app/auth",
            "https://my-app-git-main-myteam.vercel.app/auth",
        ),
        ("myapp://callback", "myapp://callback"),
        ("myapp://callback#frag", "myapp://callback#frag"),
        ("com.example.app://login-callback", "com.example.app://login-callback"),
        (
            "exp://192.168.0.10:8081/--/callback",
            "exp://192.168.0.10:8081/--/callback",
        ),
        ("https://preview.example.net", "https://preview.example.net/"),
        ("https://preview.example.net/", "https://preview.example.net/"),
        ("https://upper.example.net/x", "https://upper.example.net/x"),
        ("io.supabase.app://login", "io.supabase.app://login"),
        ("IO.Supabase.App://login", "io.supabase.app://login"),
        ("https://app.example.com/caf\u{e9}", "https://app.example.com/caf%C3%A9"),
    ] {
        assert_eq!(judged(&policy, candidate).as_deref(), Some(followed), "{candidate}");
    }
    for refused in [
        "http://localhost:3001/x",
        "https://evil.vercel.app/x",
        "https://x.y-myteam.vercel.app/x",
        "myapp://callback/evil",
        "myapp://callbackx",
        "https://preview.example.net/x",
    ] {
        assert_eq!(judged(&policy, refused), None, "{refused}");
    }
}

#[test]
fn the_query_is_part_of_the_match_as_in_gotrue() {
    let policy = policy("https://app.example.com", &["https://x.example.org/cb"]);
    assert!(judged(&policy, "https://x.example.org/cb").is_some());
    assert_eq!(judged(&policy, "https://x.example.org/cb?next=1"), None);
}

#[test]
fn choose_takes_the_first_allowed_candidate_else_the_site() {
    let site = site();
    assert_eq!(
        site.choose([Some("https://evil.com")]).as_str(),
        "https://app.example.com/"
    );
    assert_eq!(
        site.choose([Some("https://evil.com"), Some("https://app.example.com/from-referer")])
            .as_str(),
        "https://app.example.com/from-referer"
    );
    assert_eq!(
        site.choose([Some(" https://app.example.com/padded ")]).as_str(),
        "https://app.example.com/",
        "whitespace is refused, not trimmed"
    );
    assert_eq!(site.choose([None, None]).as_str(), "https://app.example.com/");
}

#[test]
fn a_bad_pattern_is_an_error_naming_it() {
    let err = RedirectPolicy::new(
        Url::parse("https://app.example.com").unwrap(),
        &[
            "https://ok.example.org/**".to_owned(),
            "https://{a,b.example.org".to_owned(),
        ],
    )
    .unwrap_err();
    assert_eq!(err.pattern, "https://{a,b.example.org");
    assert!(err.to_string().contains("never closed"), "{err}");
}
