//! One replica killed (SIGKILL) under a load of sign-ups through the balancer: clients see no
//! error beyond the requests that were in flight on it, and nothing is lost or half-written.
//! Every answered sign-up exists whole (user, identity, session, refresh token); one whose
//! answer was cut off exists whole or not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::cluster::Cluster;
use crate::helpers::random_email;

const WORKERS: usize = 12;
const PER_WORKER: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Status(u16),
    /// No HTTP answer at all.
    Transport,
}

struct Attempt {
    email: String,
    outcome: Outcome,
    after_kill: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_loses_nothing() {
    let Some(mut cluster) = Cluster::start("a_replica_killed_under_load_loses_nothing", &[]).await else {
        return;
    };
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(sign_ups(
                cluster.client.clone(),
                cluster.balancer.clone(),
                done.clone(),
                killed.clone(),
            ))
        })
        .collect();
    // A third of the way through, replica 1 dies with requests in flight.
    while done.load(Ordering::Relaxed) < WORKERS * PER_WORKER / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.replicas[1].kill();
    killed.store(true, Ordering::Relaxed);
    let killed_at = started.elapsed();
    let mut attempts = Vec::new();
    for worker in workers {
        attempts.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();

    let failed: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome != Outcome::Status(200)).collect();
    // At most one request per worker was in flight on the dying replica; HAProxy answers those
    // 502 and retries on another replica whatever could not connect to it.
    assert!(failed.len() <= WORKERS, "{} failures", failed.len());
    for attempt in &failed {
        assert!(
            matches!(attempt.outcome, Outcome::Status(502) | Outcome::Transport),
            "{}: {:?}\n{}",
            attempt.email,
            attempt.outcome,
            cluster.logs()
        );
    }
    let after_kill = attempts
        .iter()
        .filter(|a| a.after_kill && a.outcome == Outcome::Status(200));
    assert!(after_kill.count() > 0, "the load went on after the kill");

    let mut db = cluster.db().await;
    let mut cut_off_but_stored = 0;
    for attempt in &attempts {
        let rows = stored_rows(&mut db, &attempt.email).await;
        match attempt.outcome {
            Outcome::Status(200) => assert_eq!(rows, [1, 1, 1, 1], "{} lost", attempt.email),
            _ if rows == [1, 1, 1, 1] => cut_off_but_stored += 1,
            _ => assert_eq!(rows, [0, 0, 0, 0], "{} half-written", attempt.email),
        }
    }
    // And nowhere in the database a user without identity or a session without a token.
    let half: i64 = sqlx::query_scalar(
        "select (select count(*) from _auth_users u where not exists \
             (select 1 from _auth_identities i where i.user_id = u.id)) \
         + (select count(*) from _auth_sessions s where not exists \
             (select 1 from _auth_refresh_tokens t where t.session_id = s.id))",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(half, 0);
    eprintln!(
        "replicas: {} sign-ups by {WORKERS} clients in {elapsed:?}, replica 1 killed at {killed_at:?}: \
         {} answered 200, {} cut off ({} of them stored whole, the rest not at all)",
        attempts.len(),
        attempts.len() - failed.len(),
        failed.len(),
        cut_off_but_stored
    );
}

/// One worker's sign-ups, one after another.
async fn sign_ups(
    client: reqwest::Client,
    balancer: String,
    done: Arc<AtomicUsize>,
    killed: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for _ in 0..PER_WORKER {
        let email = random_email();
        let after_kill = killed.load(Ordering::Relaxed);
        let response = client
            .post(format!("{balancer}/signup"))
            .json(&json!({"email": email, "password": "a-long-password-1"}))
            .send()
            .await;
        let outcome = match response {
            Ok(response) => Outcome::Status(response.status().as_u16()),
            Err(_) => Outcome::Transport,
        };
        attempts.push(Attempt {
            email,
            outcome,
            after_kill,
        });
        done.fetch_add(1, Ordering::Relaxed);
    }
    attempts
}

/// Users, identities, sessions and refresh tokens stored for `email`.
async fn stored_rows(db: &mut sqlx::PgConnection, email: &str) -> [i64; 4] {
    let (users, identities, sessions, tokens): (i64, i64, i64, i64) = sqlx::query_as(
        "select count(*), \
             (select count(*) from _auth_identities i join _auth_users u on u.id = i.user_id where u.email = $1), \
             (select count(*) from _auth_sessions s join _auth_users u on u.id = s.user_id where u.email = $1), \
             (select count(*) from _auth_refresh_tokens t join _auth_users u on u.id = t.user_id where u.email = $1) \
         from _auth_users where email = $1",
    )
    .bind(email)
    .fetch_one(db)
    .await
    .unwrap();
    [users, identities, sessions, tokens]
}
