//! Rate limiting per client address, with GoTrue's endpoint groups and variables
//! (the README's "Rate limits" section has the table).
//!
//! Two deliberate differences from GoTrue: limiting is on by default, keyed by the socket
//! address (GoTrue limits only when `GOTRUE_RATE_LIMIT_HEADER` is set and present, so a
//! default install has no limits at all); and IPv6 clients are keyed by their /64, because
//! one client usually holds a whole /64 and could otherwise take a fresh budget per address.
//!
//! The middleware matches on method and path with the `/auth/v1` prefix stripped, before
//! routing, so `/auth/v1/token` and `/token` share one budget.

mod limiters;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

pub use limiters::{Group, RateLimits, Verdict};

use crate::api::extract::{bearer_token, body_error};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Where a request draws from; a request in several groups must pass each, tightest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Groups(&'static [Group]),
    /// `POST /signup`: anonymous or not depends on the body.
    Signup,
}

/// Password-style sign-ins also draw from TOKEN_REFRESH, which in GoTrue covers every
/// `/token` grant: an operator's TOKEN_REFRESH setting keeps its meaning, and
/// SIGN_IN_SIGN_UPS adds the tighter cap on password guessing that GoTrue lacks.
const SIGN_IN: &[Group] = &[Group::SignInSignUps, Group::TokenRefresh];
/// `web3` has its own limiter in GoTrue (not TOKEN_REFRESH); here it counts as a sign-in.
const WEB3_SIGN_IN: &[Group] = &[Group::SignInSignUps];
const TOKEN: &[Group] = &[Group::TokenRefresh];
const VERIFY: &[Group] = &[Group::Verify];
const OTP: &[Group] = &[Group::Otp];
/// Sign-ups with an email or phone: GoTrue's OTP limiter, plus the sign-up cap.
const SIGN_UP: &[Group] = &[Group::SignInSignUps, Group::Otp];
const ANONYMOUS_SIGN_UP: &[Group] = &[Group::AnonymousUsers];

/// The middleware: refuses a request over its group's budget with `429
/// over_request_rate_limit`, and labels allowed ones with `RateLimit-*` headers.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.config.rate_limit.enabled {
        return next.run(request).await;
    }
    let uri = request.uri();
    let Some(route) = route(request.method(), unprefixed(uri.path()), uri.query()) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    if is_admin(&state, &parts) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let socket = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let header = state.config.rate_limit.header.as_ref();
    // No address only happens for in-process callers without `ConnectInfo`.
    let Some(key) = client_key(&parts.headers, socket, header) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    if key.is_loopback() && !state.config.rate_limit.limit_loopback {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let (groups, request) = match route {
        Route::Groups(groups) => (groups, Request::from_parts(parts, body)),
        Route::Signup => match signup_groups(parts, body).await {
            Ok(found) => found,
            Err(err) => return err.into_response(),
        },
    };
    match state.rate_limits.check(groups, key) {
        Ok(verdict) => {
            let mut response = next.run(request).await;
            if let Some(verdict) = verdict {
                set_headers(response.headers_mut(), &verdict);
            }
            response
        }
        Err(verdict) => {
            tracing::info!(
                limiter = verdict.group.variable(),
                client = %key,
                "request rate limit reached"
            );
            too_many_requests(&verdict)
        }
    }
}

/// For the mailer, before each email: GoTrue's global `GOTRUE_RATE_LIMIT_EMAIL_SENT`.
pub fn check_email_sent(state: &AppState) -> Result<(), ApiError> {
    state.rate_limits.check_email_sent().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::OverEmailSendRateLimit,
            "email rate limit exceeded",
        )
    })
}

/// The path as the router sees it under either mount.
fn unprefixed(path: &str) -> &str {
    match path.strip_prefix("/auth/v1") {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// GoTrue's limiter groups (`api.go`): which routes draw from which bucket.
fn route(method: &Method, path: &str, query: Option<&str>) -> Option<Route> {
    let groups = match (method.as_str(), path) {
        ("POST", "/token") => match grant_type(query).as_deref() {
            Some("password" | "id_token") => SIGN_IN,
            Some("web3") => WEB3_SIGN_IN,
            _ => TOKEN,
        },
        // Latchkey's HeliosDB-style refresh does what the refresh_token grant does, so it draws
        // from the same budget; unlimited, it would be a way around TOKEN_REFRESH.
        ("POST", "/refresh") => TOKEN,
        // axum answers HEAD with the GET handler: limit it too, or HEAD would try tokens
        // for free.
        ("GET" | "HEAD" | "POST", "/verify") => VERIFY,
        ("POST", "/otp" | "/magiclink" | "/recover" | "/resend") | ("PUT", "/user") => OTP,
        ("POST", "/signup") => return Some(Route::Signup),
        _ => return None,
    };
    Some(Route::Groups(groups))
}

/// Whether a limiter guards `method path` (a route as the OpenAPI document names it), so the
/// document can list `429` exactly where it can happen.
pub fn applies(method: &Method, path: &str) -> bool {
    route(method, path, None).is_some()
}

fn grant_type(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value.into_owned())
}

/// Calls with an admin key (a Bearer JWT signed with our secret whose role is in
/// `GOTRUE_JWT_ADMIN_ROLES`) are never limited: servers act for many users.
fn is_admin(state: &AppState, parts: &Parts) -> bool {
    bearer_token(parts)
        .and_then(|token| state.jwt.verify(token).ok())
        .and_then(|claims| claims.role)
        .is_some_and(|role| state.config.jwt.admin_roles.contains(&role))
}

/// The bucket key: the first value of the configured header when there is one and it holds
/// an address, else the socket address. Only the configured header is trusted; without the
/// setting, forwarding headers are ignored, or anyone could claim a fresh address.
pub fn client_key(headers: &HeaderMap, socket: Option<IpAddr>, trusted_header: Option<&HeaderName>) -> Option<IpAddr> {
    let forwarded = trusted_header
        .and_then(|name| headers.get(name))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .and_then(parse_address);
    forwarded.or(socket).map(bucket_of)
}

/// `203.0.113.7`, `2001:db8::1`, and the forms some proxies send: `203.0.113.7:4711`,
/// `[2001:db8::1]:4711`, `[2001:db8::1]`.
fn parse_address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

/// IPv4 addresses (also when written IPv4-mapped, as dual-stack sockets report them) are
/// their own bucket; IPv6 addresses share one per /64.
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[derive(Deserialize)]
struct SignupProbe {
    email: Option<Value>,
    phone: Option<Value>,
}

/// Reads the (at most 1 MiB) body of `POST /signup` to tell an anonymous sign-up (no email
/// and no phone, as GoTrue decides) from one with an email or phone, and hands back the
/// request with the body restored. A body that is not JSON counts as a normal sign-up; the
/// handler answers it with `400 bad_json`.
async fn signup_groups(parts: Parts, body: Body) -> Result<(&'static [Group], Request), ApiError> {
    // The limit comes from the `DefaultBodyLimit` layer outside this one.
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(body_error)?;
    let anonymous =
        serde_json::from_slice::<SignupProbe>(&bytes).is_ok_and(|probe| is_blank(probe.email) && is_blank(probe.phone));
    let groups = if anonymous { ANONYMOUS_SIGN_UP } else { SIGN_UP };
    Ok((groups, Request::from_parts(parts, Body::from(bytes))))
}

fn is_blank(value: Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

fn too_many_requests(verdict: &Verdict) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::OverRequestRateLimit,
        "Request rate limit reached",
    )
    .into_response();
    let headers = response.headers_mut();
    set_headers(headers, verdict);
    let retry_after = verdict.retry_after.unwrap_or(verdict.reset);
    headers.insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(whole_seconds(retry_after).max(1)),
    );
    response
}

/// `RateLimit-Limit` (bucket size), `RateLimit-Remaining`, `RateLimit-Reset` (seconds until
/// the bucket is full), as in the IETF RateLimit header fields draft.
fn set_headers(headers: &mut HeaderMap, verdict: &Verdict) {
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(verdict.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(verdict.remaining));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(whole_seconds(verdict.reset)));
}

/// Rounded up, so a client that waits this long is never refused again for the same reason.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &'static str) -> HeaderName {
        HeaderName::from_static(name)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header(k), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_socket_address_is_the_key_unless_a_header_is_configured() {
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let socket = Some(ip("192.0.2.1"));
        assert_eq!(client_key(&spoofed, socket, None), socket);
        let xff = header("x-forwarded-for");
        assert_eq!(client_key(&spoofed, socket, Some(&xff)), Some(ip("203.0.113.9")));
        // Configured but absent, or not an address: the socket address.
        assert_eq!(client_key(&HeaderMap::new(), socket, Some(&xff)), socket);
        let junk = headers(&[("x-forwarded-for", "unknown, 203.0.113.9")]);
        assert_eq!(client_key(&junk, socket, Some(&xff)), socket);
        // Another header than the configured one is not trusted.
        let real_ip = headers(&[("x-real-ip", "203.0.113.9")]);
        assert_eq!(client_key(&real_ip, socket, Some(&xff)), socket);
        assert_eq!(client_key(&HeaderMap::new(), None, Some(&xff)), None);
    }

    #[test]
    fn the_first_forwarded_value_counts_in_any_common_form() {
        let xff = header("x-forwarded-for");
        for (value, expected) in [
            ("203.0.113.9, 10.0.0.1", "203.0.113.9"),
            (" 203.0.113.9 ", "203.0.113.9"),
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::1]:4711", "2001:db8::"),
            ("[2001:db8::1]", "2001:db8::"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
        ] {
            let found = client_key(&headers(&[("x-forwarded-for", value)]), None, Some(&xff));
            assert_eq!(found, Some(ip(expected)), "{value}");
        }
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        assert_eq!(bucket_of(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_ne!(bucket_of(ip("2001:db8:1:2::1")), bucket_of(ip("2001:db8:1:3::1")));
        assert_eq!(bucket_of(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(bucket_of(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn routes_map_to_gotrues_groups_under_both_mounts() {
        let post = Method::POST;
        for path in ["/auth/v1/token", "/token"] {
            let path = unprefixed(path);
            let at = |q| route(&post, path, Some(q));
            assert_eq!(at("grant_type=password"), Some(Route::Groups(SIGN_IN)));
            assert_eq!(at("grant_type=id_token"), Some(Route::Groups(SIGN_IN)));
            assert_eq!(at("grant_type=web3"), Some(Route::Groups(WEB3_SIGN_IN)));
            assert_eq!(at("grant_type=refresh_token"), Some(Route::Groups(TOKEN)));
            assert_eq!(at("x=1&grant_type=pkce"), Some(Route::Groups(TOKEN)));
            assert_eq!(route(&post, path, None), Some(Route::Groups(TOKEN)));
        }
        assert_eq!(route(&Method::GET, "/verify", None), Some(Route::Groups(VERIFY)));
        assert_eq!(route(&post, "/verify", None), Some(Route::Groups(VERIFY)));
        assert_eq!(route(&Method::HEAD, "/verify", None), Some(Route::Groups(VERIFY)));
        for path in ["/otp", "/magiclink", "/recover", "/resend"] {
            assert_eq!(route(&post, path, None), Some(Route::Groups(OTP)), "{path}");
        }
        assert_eq!(route(&Method::PUT, "/user", None), Some(Route::Groups(OTP)));
        assert_eq!(route(&post, "/refresh", None), Some(Route::Groups(TOKEN)));
        assert_eq!(route(&post, "/signup", None), Some(Route::Signup));
        assert_eq!(route(&Method::GET, "/user", None), None);
        assert_eq!(route(&Method::GET, "/health", None), None);
        assert_eq!(route(&Method::GET, "/token", None), None);
        assert_eq!(unprefixed("/auth/v1"), "/auth/v1");
        assert_eq!(unprefixed("/auth/v1x/token"), "/auth/v1x/token");
    }

    #[tokio::test]
    async fn anonymous_sign_ups_are_told_apart_by_the_body() {
        let cases: [(&str, &[Group]); 6] = [
            (r#"{"data": {"a": 1}}"#, ANONYMOUS_SIGN_UP),
            (r#"{"email": "", "phone": null}"#, ANONYMOUS_SIGN_UP),
            (r#"{"email": "a@example.com", "password": "x"}"#, SIGN_UP),
            (r#"{"phone": "+15555550100"}"#, SIGN_UP),
            (r#"{"email": 12}"#, SIGN_UP),
            ("{not json", SIGN_UP),
        ];
        for (body, expected) in cases {
            let (parts, body_in) = Request::new(Body::from(body)).into_parts();
            let (groups, request) = signup_groups(parts, body_in).await.unwrap();
            assert_eq!(groups, expected, "{body}");
            let kept = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
            assert_eq!(kept, body.as_bytes(), "the handler still gets the body");
        }
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
