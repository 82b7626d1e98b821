//! Rate limiting per client address, with GoTrue's endpoint groups and variables
//! (the README's "Rate limits" section has the table).
//!
//! Deliberate differences from GoTrue: limiting is on by default, keyed by the socket address
//! (GoTrue limits only when `GOTRUE_RATE_LIMIT_HEADER` is set and present, so a default
//! install has no limits at all), and the header is believed only from trusted proxies
//! (`api::client_ip`); IPv6 clients are keyed by their /64, because one client usually holds
//! a whole /64 and could otherwise take a fresh budget per address; `GET /authorize` is
//! limited (each call writes a flow-state row); and a `POST /verify` code also draws from a
//! bucket per email or phone, and an MFA code from a bucket per factor, so many client
//! addresses cannot guess one account's code.
//!
//! The middleware matches on method and path with the `/auth/v1` prefix stripped, before
//! routing, so `/auth/v1/token` and `/token` share one budget.

mod probe;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::extract::bearer_token;
use crate::api::state::AppState;
use crate::error::{Error, ErrorCode};
use crate::ratelimit::{Group, Verdict};

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Where a request draws from; a request in several groups must pass each, tightest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Groups(&'static [Group]),
    /// `POST /signup`: anonymous or not depends on the body.
    Signup,
    /// `POST /verify`: `GOTRUE_RATE_LIMIT_VERIFY`, and the bucket of the account a code is
    /// tried against, found in the body.
    VerifyCode,
    /// `POST /factors/{id}/verify`: GoTrue's MFA verify limit, and the bucket of the factor
    /// the code is tried against.
    FactorVerify,
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
const AUTHORIZE: &[Group] = &[Group::Authorize];
const MFA_CHALLENGE: &[Group] = &[Group::MfaChallenge];
const MFA_VERIFY: &[Group] = &[Group::MfaVerify];

/// Refuses a request over its group's budget with `429 over_request_rate_limit`, and labels
/// allowed ones with `RateLimit-*` headers (a step of `middleware::per_request`).
pub async fn limit(state: &AppState, request: Request, next: Next) -> Response {
    if !state.config.rate_limit.enabled {
        return next.run(request).await;
    }
    let uri = request.uri();
    let Some(route) = route(request.method(), unprefixed(uri.path()), uri.query()) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    if is_admin(state, &parts) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let client = client_key(state, &parts);
    // The per-account bucket applies whoever asks, so only a route without one may skip.
    if client.is_none() && !matches!(route, Route::VerifyCode | Route::FactorVerify) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let (groups, account, request) = match classify(route, parts, body).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    let mut shown = None;
    if let Some(key) = client {
        match state.limiter.check(groups, key).await {
            Ok(verdict) => shown = verdict,
            Err(verdict) => {
                tracing::info!(limiter = verdict.group.variable(), client = %key, "request rate limit reached");
                return too_many_requests(&verdict);
            }
        }
    }
    // Checked after the client's own budget, so a client refused there cannot drain an
    // account's bucket. Its state is not shown on allowed responses: how much is left would
    // tell a client whether others are trying codes for that account.
    if let Some(account) = account
        && let Err(verdict) = state.limiter.check_account(account.key).await
    {
        let domain = account.domain.as_deref().unwrap_or("-");
        tracing::info!(limiter = verdict.group.variable(), domain, "request rate limit reached");
        return too_many_requests(&verdict);
    }
    let mut response = next.run(request).await;
    if let Some(verdict) = shown {
        set_headers(response.headers_mut(), &verdict);
    }
    response
}

/// The client's groups and the account bucket, if any, reading the body where it decides
/// them; hands the request back whole.
async fn classify(
    route: Route,
    parts: Parts,
    body: Body,
) -> Result<(&'static [Group], Option<probe::Account>, Request), Error> {
    Ok(match route {
        Route::Groups(groups) => (groups, None, Request::from_parts(parts, body)),
        Route::Signup => match probe::signup(parts, body).await? {
            (true, request) => (ANONYMOUS_SIGN_UP, None, request),
            (false, request) => (SIGN_UP, None, request),
        },
        Route::VerifyCode => {
            let (account, request) = probe::verify_code(parts, body).await?;
            (VERIFY, account, request)
        }
        Route::FactorVerify => (
            MFA_VERIFY,
            probe::factor(unprefixed(parts.uri.path())),
            Request::from_parts(parts, body),
        ),
    })
}

/// The client's bucket key: its address (`api::client_ip`, shared with the audit log) with
/// IPv6 cut to the /64. `None` for in-process callers without a socket, and for a loopback
/// socket peer under `LATCHKEY_RATE_LIMIT_LOOPBACK=false`. Only the socket peer can be exempt:
/// an address read from a header, even `127.0.0.1`, is limited like any other.
fn client_key(state: &AppState, parts: &Parts) -> Option<IpAddr> {
    let client = state.client_ips.of(parts)?;
    let exempt = client.is_socket_peer && client.ip.is_loopback() && !state.config.rate_limit.limit_loopback;
    (!exempt).then(|| bucket_of(client.ip))
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
        ("GET" | "HEAD", "/verify") => VERIFY,
        ("POST", "/verify") => return Some(Route::VerifyCode),
        // Not limited in GoTrue; each call writes a flow-state row (and HEAD runs GET).
        ("GET" | "HEAD", "/authorize" | "/user/identities/authorize") => AUTHORIZE,
        ("POST", "/otp" | "/magiclink" | "/recover" | "/resend") | ("PUT", "/user") => OTP,
        ("POST", "/signup") => return Some(Route::Signup),
        ("POST", path) => match factor_action(path) {
            Some("challenge") => MFA_CHALLENGE,
            Some("verify") => return Some(Route::FactorVerify),
            _ => return None,
        },
        _ => return None,
    };
    Some(Route::Groups(groups))
}

/// The last segment of `/factors/{factor_id}/<action>`, whatever the id (the router decides
/// whether it names a factor; a request that draws from the budget and then fails still
/// counts).
fn factor_action(path: &str) -> Option<&str> {
    let (id, action) = path.strip_prefix("/factors/")?.split_once('/')?;
    (!id.is_empty() && !action.contains('/')).then_some(action)
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
        .and_then(|token| state.sessions.tokens().verify(token).ok())
        .and_then(|claims| claims.role)
        .is_some_and(|role| state.config.jwt.admin_roles.contains(&role))
}

/// The metric label of a limiter: its variable without the prefix (`token_refresh`,
/// `verify_per_address`).
fn group_label(variable: &str) -> String {
    variable
        .trim_start_matches("GOTRUE_RATE_LIMIT_")
        .trim_start_matches("LATCHKEY_RATE_LIMIT_")
        .to_ascii_lowercase()
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

fn too_many_requests(verdict: &Verdict) -> Response {
    metrics::counter!(
        crate::telemetry::metrics::RATE_LIMITED,
        "group" => group_label(verdict.group.variable())
    )
    .increment(1);
    let mut response =
        Error::too_many_requests(ErrorCode::OverRequestRateLimit, "Request rate limit reached").into_response();
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
        assert_eq!(route(&post, "/verify", None), Some(Route::VerifyCode));
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
        for path in ["/authorize", "/user/identities/authorize"] {
            assert_eq!(
                route(&Method::GET, path, None),
                Some(Route::Groups(AUTHORIZE)),
                "{path}"
            );
            assert_eq!(
                route(&Method::HEAD, path, None),
                Some(Route::Groups(AUTHORIZE)),
                "{path}"
            );
        }
        assert_eq!(route(&Method::GET, "/callback", None), None);
        let factor = "/factors/0b6d2b5e-7f5a-4d5e-9f2a-1c2d3e4f5a6b";
        let at = |suffix: &str| route(&post, &format!("{factor}{suffix}"), None);
        assert_eq!(at("/challenge"), Some(Route::Groups(MFA_CHALLENGE)));
        assert_eq!(at("/verify"), Some(Route::FactorVerify));
        assert_eq!(
            route(&post, "/factors/{factor_id}/verify", None),
            Some(Route::FactorVerify)
        );
        assert_eq!(at(""), None, "enrolment is not limited, as in GoTrue");
        assert_eq!(route(&post, "/factors", None), None);
        assert_eq!(route(&post, "/factors//verify", None), None);
        assert_eq!(at("/verify/x"), None);
        assert_eq!(route(&Method::DELETE, factor, None), None);
        assert_eq!(unprefixed("/auth/v1"), "/auth/v1");
        assert_eq!(unprefixed("/auth/v1x/token"), "/auth/v1x/token");
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
