//! Unit tests of the limiters (a separate file to keep `limiters.rs` readable).

use std::net::Ipv4Addr;

use super::*;
use crate::config::Config;

fn limits(pairs: &[(&str, &str)]) -> MemoryLimiter {
    let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = Config::from_vars(vars).unwrap();
    MemoryLimiter::new(&config.rate_limit, config.mailer_autoconfirm)
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

#[test]
fn the_bucket_empties_and_reports_what_is_left() {
    let limits = limits(&[("GOTRUE_RATE_LIMIT_VERIFY", "3/1h")]);
    let verify = [Group::Verify];
    let first = limits.check(&verify, ip(1)).unwrap().unwrap();
    assert_eq!((first.limit, first.remaining), (3, 2));
    assert_eq!(first.reset, Duration::from_secs(20 * 60));
    limits.check(&verify, ip(1)).unwrap();
    limits.check(&verify, ip(1)).unwrap();
    let refused = limits.check(&verify, ip(1)).unwrap_err();
    assert_eq!(refused.remaining, 0);
    let wait = refused.retry_after.unwrap();
    assert!(wait > Duration::from_secs(19 * 60) && wait <= Duration::from_secs(20 * 60));
    // Another address, and another group, have their own buckets.
    assert!(limits.check(&verify, ip(2)).is_ok());
    assert!(limits.check(&[Group::Otp], ip(1)).is_ok());
}

#[test]
fn a_chain_stops_at_the_first_refusal_and_reports_the_tightest() {
    let limits = limits(&[
        ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", "1/1h"),
        ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "5/1h"),
    ]);
    let chain = [Group::SignInSignUps, Group::TokenRefresh];
    let ok = limits.check(&chain, ip(1)).unwrap().unwrap();
    assert_eq!((ok.group, ok.remaining), (Group::SignInSignUps, 0));
    let refused = limits.check(&chain, ip(1)).unwrap_err();
    assert_eq!(refused.group, Group::SignInSignUps);
    // The refusal did not take from TOKEN_REFRESH: 4 of 5 are left.
    let refresh = limits.check(&[Group::TokenRefresh], ip(1)).unwrap().unwrap();
    assert_eq!(refresh.remaining, 3);
}

#[test]
fn pruning_drops_idle_addresses_only() {
    let limits = limits(&[
        ("GOTRUE_RATE_LIMIT_VERIFY", "1000/10ms"),
        ("GOTRUE_RATE_LIMIT_OTP", "1/1h"),
    ]);
    for n in 0..5_000 {
        limits.check(&[Group::Verify], ip(n)).unwrap();
    }
    limits.check(&[Group::Otp], ip(7)).unwrap();
    assert_eq!(limits.len(), 5_001);
    std::thread::sleep(Duration::from_millis(30));
    limits.prune();
    // The verify buckets refilled and went; the empty OTP bucket must stay, or address 7
    // would get a fresh request.
    assert_eq!(limits.len(), 1);
    assert!(limits.check(&[Group::Otp], ip(7)).is_err());
}

#[tokio::test]
async fn a_large_map_is_pruned_without_waiting_for_the_timer() {
    let config = Config::from_vars(
        [
            ("GOTRUE_RATE_LIMIT_VERIFY", "1000/10ms"),
            ("LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL", "1h"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into(),
    )
    .unwrap();
    let limits = MemoryLimiter::with_prune_at(&config.rate_limit, false, 1000);
    for n in 0..SIZE_CHECK_EVERY as u32 {
        limits.check(&[Group::Verify], ip(n)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    // This check looks at the size (1025 keys, over 1000) and wakes the pruning task.
    limits.check(&[Group::Verify], ip(u32::MAX)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while limits.len() > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The idle 1024 went (the newest may have gone too, once idle).
    assert!(limits.len() <= 1, "{} keys left", limits.len());
}

#[test]
fn email_limit_is_global_and_zero_blocks_everything() {
    let limits = limits(&[
        ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "2"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
    ]);
    assert!(limits.check_email_sent().is_ok());
    assert!(limits.check_email_sent().is_ok());
    let wait = limits.check_email_sent().unwrap_err().unwrap();
    assert!(wait > Duration::from_secs(29 * 60), "{wait:?}");

    let blocked = super::tests::limits(&[("GOTRUE_RATE_LIMIT_EMAIL_SENT", "0")]);
    assert_eq!(blocked.check_email_sent(), Err(None));
    let autoconfirm = |value| {
        super::tests::limits(&[
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", value),
            ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
        ])
    };
    assert_eq!(autoconfirm("0").check_email_sent(), Err(None));
    let unlimited = autoconfirm("1");
    assert!((0..5).all(|_| unlimited.check_email_sent().is_ok()));
}

#[test]
fn accounts_have_their_own_buckets_and_are_pruned_like_addresses() {
    let limits = limits(&[
        ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "2/20ms"),
        ("GOTRUE_RATE_LIMIT_VERIFY", "1000/10ms"),
    ]);
    let victim = AccountKey::new("email:victim@example.com");
    assert_eq!(limits.check_verify_per_account(victim).unwrap().unwrap().remaining, 1);
    limits.check_verify_per_account(victim).unwrap();
    let refused = limits.check_verify_per_account(victim).unwrap_err();
    assert_eq!(refused.group, Group::VerifyPerAccount);
    assert_ne!(AccountKey::new("email:other@example.com"), victim);
    assert!(
        limits
            .check_verify_per_account(AccountKey::new("email:other@example.com"))
            .is_ok()
    );
    // Per-address buckets are separate from the per-client ones.
    assert!(limits.check(&[Group::Verify], ip(1)).is_ok());
    for n in 0..1000 {
        limits
            .check_verify_per_account(AccountKey::new(&format!("phone:{n}")))
            .unwrap();
    }
    assert_eq!(limits.len(), 1003);
    std::thread::sleep(Duration::from_millis(60));
    limits.prune();
    assert_eq!(limits.len(), 0, "idle accounts are forgotten");
}
