//! The readiness check behind `GET /health/ready`: one statement on the database, its answer
//! reused for a second.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// The last readiness answer, reused for a second: probes (or anyone, the route is public)
/// asking many times a second cost one statement a second, so they cannot take the pool's
/// connections from real requests.
#[derive(Debug, Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    const REUSE_FOR: Duration = Duration::from_secs(1);
    const TIMEOUT: Duration = Duration::from_secs(2);

    pub async fn check(&self, db: &crate::db::Pool) -> bool {
        // Held across the check, so concurrent probes wait for one answer instead of each
        // running a statement.
        let mut last = self.last.lock().await;
        if let Some((at, ready)) = *last
            && at.elapsed() < Self::REUSE_FOR
        {
            return ready;
        }
        let ran = tokio::time::timeout(Self::TIMEOUT, sqlx::query("select 1").execute(db)).await;
        let ready = matches!(ran, Ok(Ok(_)));
        if !ready {
            tracing::warn!("readiness check: the database does not answer");
        }
        *last = Some((Instant::now(), ready));
        ready
    }
}
