//! The pure parts of the Redis store: reading the script's answers and turning them into
//! verdicts. The script itself runs against a real Redis in `tests/it/ratelimit_redis.rs`.

use std::time::Duration;

use super::*;

const SECOND: i64 = 1_000_000;

fn bucket(interval: Duration, burst: u32) -> Bucket {
    Bucket {
        interval_us: interval.as_micros() as u64,
        burst,
    }
}

#[test]
fn buckets_take_the_rate_in_microseconds_and_never_zero() {
    let every_two_seconds = Rate {
        events: 150.0,
        per: Duration::from_secs(300),
        burst: 30,
    };
    assert_eq!(Bucket::new(every_two_seconds), Some(bucket(Duration::from_secs(2), 30)));
    let none = Rate {
        events: 0.0,
        ..every_two_seconds
    };
    assert_eq!(Bucket::new(none), None, "a rate of zero lets nothing through");
    let huge = Rate {
        events: 4_000_000_000.0,
        per: Duration::from_secs(1),
        burst: 5,
    };
    assert_eq!(Bucket::new(huge).map(|b| b.interval_us), Some(1));
}

#[test]
fn answers_must_have_the_scripts_shape() {
    let allowed = [1, 29, 2 * SECOND, 0];
    let refused = [0, 0, 60 * SECOND, 2 * SECOND];
    let both: Vec<i64> = allowed.iter().chain(&refused).copied().collect();
    assert_eq!(answers(&allowed, 1).map(|a| a.len()), Some(1));
    assert_eq!(answers(&both, 2).map(|a| a.len()), Some(2));
    // Stopped at the first bucket: only if it refused.
    assert_eq!(answers(&refused, 2).map(|a| a.len()), Some(1));
    for bad in [
        &[][..],
        &allowed[..3],
        &allowed[..],                  // one answer for two buckets, without a refusal
        &[0, 0, 1, 1, 1, 0, 1, 0][..], // a refusal before the end
        &[1, -1, 1, 0][..],
        &[1, 1, -5, 0][..],
    ] {
        assert_eq!(answers(bad, 2), None, "{bad:?}");
    }
    assert_eq!(answers(&both, 1), None, "more answers than buckets");
}

#[test]
fn the_tightest_bucket_speaks_and_the_first_refusal_wins() {
    let groups = [
        (Group::SignInSignUps, bucket(Duration::from_secs(10), 30)),
        (Group::TokenRefresh, bucket(Duration::from_secs(2), 30)),
    ];
    let numbers = [1, 3, 270 * SECOND, 0, 1, 20, 20 * SECOND, 0];
    let verdict = verdicts(&groups, &answers(&numbers, 2).unwrap()).unwrap().unwrap();
    assert_eq!(verdict.group, Group::SignInSignUps);
    assert_eq!(verdict.remaining, 3);
    assert_eq!(verdict.limit, 30);
    assert_eq!(verdict.reset, Duration::from_secs(270));
    assert_eq!(verdict.retry_after, None);

    let numbers = [1, 3, 270 * SECOND, 0, 0, 0, 60 * SECOND, 2 * SECOND];
    let refusal = verdicts(&groups, &answers(&numbers, 2).unwrap()).unwrap_err();
    assert_eq!(refusal.group, Group::TokenRefresh);
    assert_eq!(refusal.remaining, 0);
    assert_eq!(refusal.retry_after, Some(Duration::from_secs(2)));
    assert_eq!(refusal.reset, Duration::from_secs(60));
}
