//! Rate limits across replicas: a per-address limit of N holds through the balancer (the
//! replicas share it in Redis), and while Redis is stopped each replica does what
//! `LATCHKEY_RATE_LIMIT_REDIS_FAILURE` says, until Redis returns.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::json;

use super::cluster::{Cluster, REPLICAS};

/// `GOTRUE_RATE_LIMIT_VERIFY` in the cluster: the budget of every client address.
const N: usize = 6;

/// What happened to a run of `GET /verify` through the balancer.
#[derive(Debug, Default)]
struct Tally {
    allowed: usize,
    refused: usize,
    /// Replicas that answered (HAProxy's `X-Served-By`).
    served_by: HashSet<String>,
}

async fn verify(cluster: &Cluster) -> Response {
    cluster
        .client
        .get(format!("{}/verify", cluster.balancer))
        .send()
        .await
        .unwrap()
}

async fn tally(cluster: &Cluster, requests: usize) -> Tally {
    let mut tally = Tally::default();
    for _ in 0..requests {
        let response = verify(cluster).await;
        let status = response.status();
        assert!(!status.is_server_error(), "{status}\n{}", cluster.logs());
        if status == 429 {
            tally.refused += 1;
        } else {
            tally.allowed += 1;
        }
        let by = response.headers().get("x-served-by").and_then(|v| v.to_str().ok());
        tally.served_by.insert(by.unwrap_or("?").to_owned());
    }
    tally
}

/// Sends through the balancer until a request is allowed (a replica tries Redis again a
/// second after its last failure); the time it took. Then waits one more second, so that
/// every replica has tried Redis again.
async fn until_allowed(cluster: &Cluster) -> Duration {
    let started = Instant::now();
    loop {
        let response = verify(cluster).await;
        assert!(!response.status().is_server_error(), "{}", response.status());
        if response.status() != 429 {
            let waited = started.elapsed();
            tokio::time::sleep(Duration::from_millis(1100)).await;
            return waited;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "limits did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_address_limit_holds_across_replicas_and_redis_outages() {
    let test = "a_per_address_limit_holds_across_replicas_and_redis_outages";
    let Some(mut cluster) = Cluster::start(test, &[]).await else {
        return;
    };
    // N + k requests from one address, round-robin over three replicas: k refused.
    let k = 6;
    let shared = tally(&cluster, N + k).await;
    assert_eq!((shared.allowed, shared.refused), (N, k), "{shared:?}");
    assert_eq!(shared.served_by.len(), REPLICAS, "{shared:?}");

    // Redis stopped (the default, `open`): each replica limits on its own, so the address
    // gets N per replica, never more.
    cluster.redis.stop();
    let local = tally(&cluster, REPLICAS * N + 6).await;
    assert_eq!(local.allowed, REPLICAS * N, "{local:?}");

    // Redis back, empty: one shared budget of N again.
    cluster.redis.start_again().await;
    let waited = until_allowed(&cluster).await;
    let after = tally(&cluster, N - 1 + k).await;
    assert_eq!((after.allowed, after.refused), (N - 1, k), "{after:?}");
    eprintln!(
        "replicas: limit {N} through the balancer: {shared:?}; Redis stopped (open): {local:?}; \
         shared again {waited:?} after Redis returned: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_closed_refuses_on_every_replica_until_it_returns() {
    let test = "with_redis_stopped_closed_refuses_on_every_replica_until_it_returns";
    let closed = [("LATCHKEY_RATE_LIMIT_REDIS_FAILURE", "closed")];
    let Some(mut cluster) = Cluster::start(test, &closed).await else {
        return;
    };
    assert_eq!(tally(&cluster, 1).await.allowed, 1);

    cluster.redis.stop();
    let refused = tally(&cluster, 2 * REPLICAS).await;
    assert_eq!(refused.refused, 2 * REPLICAS, "{refused:?}");
    assert_eq!(refused.served_by.len(), REPLICAS, "{refused:?}");
    let sign_in = cluster
        .client
        .post(format!("{}/token?grant_type=password", cluster.balancer))
        .json(&json!({"email": "someone@example.com", "password": "a-long-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 429);
    // Routes without a limiter need no Redis.
    for _ in 0..REPLICAS {
        let health = cluster
            .client
            .get(format!("{}/health", cluster.balancer))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }

    cluster.redis.start_again().await;
    let waited = until_allowed(&cluster).await;
    let back = tally(&cluster, REPLICAS).await;
    assert_eq!(back.allowed, REPLICAS, "{back:?}");
    eprintln!("replicas: Redis stopped (closed): {refused:?}; allowed again {waited:?} after it returned");
}
