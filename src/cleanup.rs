//! The background task that removes stale rows (`db::cleanup`), in small batches.

use std::time::Duration;

use crate::db::Pool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::cleanup::{STATEMENTS, Statement, run};

/// Time between two rounds of the cleanup statements on a database with nothing much to
/// clean. GoTrue runs a statement after requests; a timer does the same on an idle server too
/// and never adds to a request's latency. Each statement touches at most one small batch and
/// finds it through an index, so a round costs the database next to nothing.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Pause between two batches of a statement whose last batch was full (a backlog: a busy
/// server, or a database imported from GoTrue). Every refresh revokes a token, so at 1 000
/// refreshes a second the revoked-token statement must delete 1 000 rows a second for ever:
/// batches of 1 000 with this pause can delete several thousand a second, in statements of a
/// few milliseconds each that leave the database to the requests in between (BENCHMARKS.md,
/// "Cost as the data grows", measures it).
pub const BACKLOG_INTERVAL: Duration = Duration::from_millis(100);

/// How many full batches in a row one statement may run before the next statement gets its
/// turn, so a table that fills faster than it is cleaned does not starve the others. A round
/// that stopped a statement this way is followed by the next one after [`BACKLOG_INTERVAL`],
/// not [`INTERVAL`].
const MAX_BATCHES_IN_A_ROW: u32 = 50;

/// Runs every statement once, in order; returns the number of rows affected. For tests and
/// tools: the server itself repeats a statement while its batches come back full.
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

/// Whether a round left work behind, or was asked to stop.
enum Round {
    Done,
    Backlog,
    Stopped,
}

impl Cleanup {
    /// Starts the task on `pool` (the main pool: the hot-path connections are kept for
    /// requests). The first round runs one [`INTERVAL`] after start, not during start-up.
    pub fn start(pool: Pool) -> Cleanup {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut wait = INTERVAL;
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = match round(&pool, &mut stopped).await {
                    Round::Done => INTERVAL,
                    Round::Backlog => BACKLOG_INTERVAL,
                    Round::Stopped => return,
                };
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

/// Every statement in turn, each repeated while its batches come back full (at most
/// [`MAX_BATCHES_IN_A_ROW`] times).
async fn round(pool: &Pool, stopped: &mut oneshot::Receiver<()>) -> Round {
    let mut result = Round::Done;
    for statement in STATEMENTS {
        let mut batches = 0;
        while run_logged(pool, statement).await >= statement.batch {
            batches += 1;
            if batches >= MAX_BATCHES_IN_A_ROW {
                result = Round::Backlog;
                break;
            }
            tokio::select! {
                _ = &mut *stopped => return Round::Stopped,
                () = tokio::time::sleep(BACKLOG_INTERVAL) => {}
            }
        }
    }
    result
}

/// One statement; a failure counts as nothing done and is retried in the next round: it must
/// never take the server down.
async fn run_logged(pool: &Pool, statement: Statement) -> u64 {
    match run(pool, statement).await {
        Ok(rows) => {
            if rows > 0 {
                tracing::debug!(rows, "database cleanup removed or revoked stale rows");
            }
            rows
        }
        Err(error) => {
            tracing::warn!(%error, "database cleanup failed");
            0
        }
    }
}
