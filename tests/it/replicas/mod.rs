//! Several replicas on one database: three `latchkey` processes through PgBouncer in
//! transaction mode, rate limits in Redis, HAProxy in front (see `cluster`). Flows started on
//! one replica finish on another, concurrent refreshes spread over all three keep one chain,
//! limits hold across replicas and through a Redis outage (`limits`), and a replica killed
//! under load loses nothing (`failover`).
//!
//! Skipped with a message when PgBouncer, Redis or HAProxy is missing; `scripts/test.sh`
//! installs them and sets `LATCHKEY_REQUIRE_SERVICES=1`, so in CI these tests always run.

mod cluster;
mod failover;
mod limits;

use std::collections::HashSet;

use base64::Engine;
use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::fake_providers::FakeUser;
use crate::helpers::random_email;
use cluster::{Cluster, REPLICAS};

fn pkce_pair() -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The `Location` of a redirect with `status`, as a URL.
fn redirect(response: &Response, status: u16) -> Url {
    assert_eq!(response.status().as_u16(), status, "{:?}", response.headers());
    Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query_value(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// `url` (which names the balancer) sent to `replica` instead.
fn on_replica(replica: &str, url: &Url) -> String {
    format!("{replica}{}?{}", url.path(), url.query().unwrap_or(""))
}

async fn exchange(cluster: &Cluster, replica: &str, code: &str, verifier: &str) -> Response {
    cluster
        .client
        .post(format!("{replica}/token?grant_type=pkce"))
        .json(&json!({"auth_code": code, "code_verifier": verifier}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_started_on_one_replica_finish_on_another() {
    let Some(cluster) = Cluster::start("flows_started_on_one_replica_finish_on_another", &[]).await else {
        return;
    };
    let client = &cluster.client;
    let [a, b, c] = [0, 1, 2].map(|n| cluster.replicas[n].url.as_str());

    // GitHub, PKCE: /authorize on A, the provider's redirect to /callback lands on B, the
    // code is exchanged on C.
    let github_email = random_email();
    cluster.github.set_user(FakeUser::new(&github_email, true));
    let (verifier, challenge) = pkce_pair();
    let authorize = format!(
        "{a}/authorize?provider=github&redirect_to=http://localhost:3000/cb\
         &code_challenge={challenge}&code_challenge_method=s256"
    );
    let provider = redirect(&client.get(authorize).send().await.unwrap(), 302);
    let callback = redirect(&client.get(provider).send().await.unwrap(), 302);
    assert!(callback.as_str().starts_with(&cluster.balancer), "{callback}");
    let end = redirect(&client.get(on_replica(b, &callback)).send().await.unwrap(), 302);
    assert_eq!(end.path(), "/cb");
    let code = query_value(&end, "code");
    let response = exchange(&cluster, c, &code, &verifier).await;
    assert_eq!(response.status(), 200, "{}", cluster.logs());
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["email"], github_email);
    assert_eq!(session["user"]["identities"][0]["provider"], "github");
    let again = exchange(&cluster, a, &code, &verifier).await;
    assert_eq!(again.status(), 404, "a code works once, whichever replica sees it");

    // A PKCE magic link: asked for on A, the mailed link opened on B, the code exchanged on C.
    let email = random_email();
    let signup = client
        .post(format!("{a}/signup"))
        .json(&json!({"email": email, "password": "a-long-password-1"}));
    assert_eq!(signup.send().await.unwrap().status(), 200);
    let (verifier, challenge) = pkce_pair();
    let otp = client
        .post(format!("{a}/otp?redirect_to=http://localhost:3000/welcome"))
        .json(&json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}));
    assert_eq!(otp.send().await.unwrap().status(), 200);
    let link = Url::parse(&cluster.sink.last_to(&email).await.link()).unwrap();
    assert!(link.as_str().starts_with(&cluster.balancer), "{link}");
    let end = redirect(&client.get(on_replica(b, &link)).send().await.unwrap(), 303);
    assert_eq!(end.path(), "/welcome");
    let response = exchange(&cluster, c, &query_value(&end, "code"), &verifier).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["email"], email);
}

/// 50 refreshes of one token at once, request n sent to replica n % 3: every one succeeds
/// with the same next token, and one token of the session stays live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_over_three_replicas_keep_one_chain() {
    let Some(cluster) = Cluster::start("concurrent_refreshes_over_three_replicas_keep_one_chain", &[]).await else {
        return;
    };
    let signup = cluster
        .client
        .post(format!("{}/signup", cluster.balancer))
        .json(&json!({"email": random_email(), "password": "a-long-password-1"}))
        .send()
        .await
        .unwrap();
    let session: Value = signup.json().await.unwrap();
    let token = session["refresh_token"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let refreshes = (0..50).map(|n| {
        let request = cluster
            .client
            .post(format!(
                "{}/token?grant_type=refresh_token",
                cluster.replicas[n % REPLICAS].url
            ))
            .json(&json!({"refresh_token": token}));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(refreshes).await;
    let mut issued = HashSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}\n{}", cluster.logs());
        issued.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    eprintln!(
        "replicas: 50 concurrent refreshes over {REPLICAS} replicas in {:?}: {} succeeded, {} distinct next token(s)",
        started.elapsed(),
        answers.len(),
        issued.len()
    );
    assert_eq!(issued.len(), 1, "one chain: {issued:?}");
    let live: i64 = sqlx::query_scalar("select count(*) from _auth_refresh_tokens where not revoked")
        .fetch_one(&mut cluster.db().await)
        .await
        .unwrap();
    assert_eq!(live, 1);
    let next = issued.into_iter().next().unwrap();
    let again = cluster
        .client
        .post(format!("{}/token?grant_type=refresh_token", cluster.balancer))
        .json(&json!({"refresh_token": next}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}
