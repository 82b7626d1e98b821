//! The background task that removes stale rows (`db::cleanup`), one small statement at a time.

use std::time::Duration;

use crate::db::Pool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::cleanup::{STATEMENTS, run};

/// Time between two cleanup statements on a database with nothing much to clean. GoTrue runs
/// a statement after requests; a timer does the same on an idle server too and never adds to
/// a request's latency. Each statement touches at most one small batch, so this costs the
/// database next to nothing.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Time between two runs of a statement whose last run filled its batch (a backlog: a busy
/// server, or a database imported from GoTrue). At most one batch a second keeps the load
/// small while still removing 360,000 rows an hour.
pub const BACKLOG_INTERVAL: Duration = Duration::from_secs(1);

/// How many full batches in a row one statement may run before the next statement gets its
/// turn, so a table that fills faster than it is cleaned does not starve the others.
const MAX_BATCHES_IN_A_ROW: u32 = 60;

/// Runs every statement once, in order; returns the number of rows affected. For tests and
/// tools: the server itself runs one statement at a time.
pub async fn clean_all(pool: &Pool) -> sqlx::Result<u64> {
    let mut affected = 0;
    for statement in STATEMENTS {
        affected += run(pool, statement).await?;
    }
    Ok(affected)
}

/// The running task; [`Cleanup::stop`] ends it.
pub struct Cleanup {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Cleanup {
    /// Starts the task on `pool` (the main pool: the hot-path connections are kept for
    /// requests). The first statement runs one [`INTERVAL`] after start, not during start-up.
    pub fn start(pool: Pool) -> Cleanup {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut index = 0;
            let mut batches_in_a_row = 0;
            let mut wait = INTERVAL;
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(wait) => {}
                }
                let statement = STATEMENTS[index];
                // A failure is retried on the statement's next turn; it must never take the
                // server down.
                let rows = match run(&pool, statement).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        tracing::warn!(%error, "database cleanup failed");
                        0
                    }
                };
                if rows > 0 {
                    tracing::debug!(rows, "database cleanup removed or revoked stale rows");
                }
                if rows >= statement.batch && batches_in_a_row < MAX_BATCHES_IN_A_ROW {
                    batches_in_a_row += 1;
                    wait = BACKLOG_INTERVAL;
                } else {
                    index = (index + 1) % STATEMENTS.len();
                    batches_in_a_row = 0;
                    wait = INTERVAL;
                }
            }
        });
        Cleanup { stop, task }
    }

    /// Stops the task, letting a statement in flight finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
