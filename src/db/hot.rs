//! A small set of connections for the hot paths (`GET /user` and the other authenticated
//! routes, sign-in, sign-up, refresh) beside sqlx's pool.
//!
//! sqlx's pool pings every connection when it goes back to the pool (a Sync round trip in
//! `PoolConnection::return_to_pool`, not configurable in sqlx 0.9). For a request that runs one
//! statement that is a second round trip, and the benchmark showed it costing the database as
//! much as the statement itself. Here a connection whose user finished cleanly
//! ([`HotConn::release`]) goes back as it is. One dropped without `release` (an error, a
//! cancelled request, an unfinished transaction) is pinged first, exactly as sqlx does: the
//! ping flushes a queued `ROLLBACK` and drains unread replies, and a broken connection is
//! dropped instead of being handed out. Connections idle for a while are pinged before use,
//! like the main pool's.
//!
//! The connections are kept in one set per HTTP thread (`startup::http`): a connection's
//! socket is served by the runtime that opened it, so a thread that runs its own runtime
//! takes connections opened on that runtime, and a query's answer wakes the thread that
//! waits for it instead of passing through another thread first (issue #24). A thread that
//! has not chosen a set (a background task, a test) uses the first one.
//!
//! Behind a pooler in transaction mode (see `db::pool`) the hot paths borrow from sqlx's pool
//! instead, and a connection is handed out inside a transaction that [`HotConn::release`]
//! commits: the pooler then keeps one server for everything done on it.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::{IDLE_BEFORE_PING, Pool};

#[derive(Clone)]
pub struct HotPool(Source);

#[derive(Clone)]
enum Source {
    /// One set of connections per HTTP thread.
    Own(Arc<[Arc<Inner>]>),
    /// Behind a transaction pooler: sqlx's pool, one transaction per connection handed out.
    Borrowed(PgPool),
}

struct Inner {
    options: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection that may exist (idle or in use).
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    /// The size the pool was made with, and how many acquires wait for a permit (metrics).
    size: usize,
    waiting: AtomicUsize,
}

/// What the pool holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotStats {
    pub in_use: usize,
    pub idle: usize,
    pub waiting: usize,
}

struct Idle {
    conn: PgConnection,
    since: Instant,
}

thread_local! {
    static SET: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread take its connections from set `index` of every hot pool (the
/// HTTP threads call it once, with their own number).
pub fn use_set_on_this_thread(index: usize) {
    SET.set(index);
}

impl std::fmt::Debug for HotPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::Own(sets) => f
                .debug_struct("HotPool")
                .field("sets", &sets.len())
                .field(
                    "available",
                    &sets.iter().map(|s| s.permits.available_permits()).sum::<usize>(),
                )
                .finish(),
            Source::Borrowed(_) => f.write_str("HotPool(borrowed, one transaction each)"),
        }
    }
}

impl HotPool {
    /// About `size` connections of their own in all, split into `sets` sets, opened on demand
    /// with `pool`'s options; behind a transaction pooler, `pool`'s own connections.
    pub fn new(pool: &Pool, size: u32, sets: usize, acquire_timeout: Duration) -> HotPool {
        if pool.behind_transaction_pooler() {
            return HotPool(Source::Borrowed(pool.sqlx().clone()));
        }
        HotPool::with_options((*pool.sqlx().connect_options()).clone(), size, sets, acquire_timeout)
    }

    /// `sets` sets of at least one connection each, `size` in all (rounded up), opened on
    /// demand with `options`.
    pub fn with_options(options: PgConnectOptions, size: u32, sets: usize, acquire_timeout: Duration) -> HotPool {
        let sets = sets.max(1);
        let each = (size as usize).div_ceil(sets).max(1);
        let sets = (0..sets)
            .map(|_| {
                Arc::new(Inner {
                    options: options.clone(),
                    idle: Mutex::new(Vec::new()),
                    permits: Arc::new(Semaphore::new(each)),
                    acquire_timeout,
                    size: each,
                    waiting: AtomicUsize::new(0),
                })
            })
            .collect();
        HotPool(Source::Own(sets))
    }

    /// Connections handed out, connections idle, and acquires waiting for one.
    pub fn stats(&self) -> HotStats {
        let sets = match &self.0 {
            Source::Own(sets) => sets,
            // Borrowed connections are counted with sqlx's pool.
            Source::Borrowed(_) => {
                return HotStats {
                    in_use: 0,
                    idle: 0,
                    waiting: 0,
                };
            }
        };
        let mut stats = HotStats {
            in_use: 0,
            idle: 0,
            waiting: 0,
        };
        for set in sets.iter() {
            stats.in_use += set.size.saturating_sub(set.permits.available_permits());
            stats.idle += set.idle.lock().unwrap_or_else(PoisonError::into_inner).len();
            stats.waiting += set.waiting.load(Ordering::Relaxed);
        }
        stats
    }

    /// A connection: an idle one, or a new one while fewer than `size` exist. Waits at most
    /// the acquire timeout (then `PoolTimedOut`, which becomes a 503).
    pub async fn acquire(&self) -> sqlx::Result<HotConn> {
        let inner = match &self.0 {
            Source::Own(sets) => &sets[SET.get() % sets.len()],
            Source::Borrowed(pool) => return Ok(HotConn(Held::InTransaction(pool.begin().await?))),
        };
        let deadline = tokio::time::Instant::now() + inner.acquire_timeout;
        let waiting = Waiting::start(&inner.waiting);
        let permit = tokio::time::timeout_at(deadline, inner.permits.clone().acquire_owned()).await;
        drop(waiting);
        let permit = permit
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let idle = inner.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match idle {
                Some(mut idle) => {
                    if idle.since.elapsed() > IDLE_BEFORE_PING
                        && !matches!(tokio::time::timeout_at(deadline, idle.conn.ping()).await, Ok(Ok(())))
                    {
                        // Broken (or hanging) while idle, e.g. the database restarted: drop it and
                        // try the next one.
                        if tokio::time::Instant::now() >= deadline {
                            return Err(sqlx::Error::PoolTimedOut);
                        }
                        continue;
                    }
                    idle.conn
                }
                None => tokio::time::timeout_at(deadline, inner.options.connect())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??,
            };
            return Ok(HotConn(Held::Own(OwnConn {
                conn: Some(conn),
                released: false,
                permit: Some(permit),
                pool: inner.clone(),
            })));
        }
    }
}

/// Counts an acquire as waiting until dropped, also when the request goes away mid-wait.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection from a [`HotPool`]; call [`release`](HotConn::release) once its last statement
/// (or `COMMIT`) completed.
pub struct HotConn(Held);

enum Held {
    Own(OwnConn),
    InTransaction(Transaction<'static, Postgres>),
}

struct OwnConn {
    /// `Some` until dropped.
    conn: Option<PgConnection>,
    released: bool,
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<Inner>,
}

impl HotConn {
    /// Gives the connection back without a ping: everything it was asked to do has completed.
    /// Behind a transaction pooler, commits the connection's transaction first (its error is
    /// the caller's: the work is not done).
    pub async fn release(self) -> sqlx::Result<()> {
        match self.0 {
            Held::Own(mut own) => {
                own.released = true;
                Ok(())
            }
            Held::InTransaction(tx) => tx.commit().await,
        }
    }
}

impl Drop for OwnConn {
    fn drop(&mut self) {
        let (Some(mut conn), permit) = (self.conn.take(), self.permit.take()) else {
            return;
        };
        let pool = self.pool.clone();
        let give_back = move |conn: PgConnection| {
            let idle = Idle {
                conn,
                since: Instant::now(),
            };
            pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(idle);
            // The permit goes back after the connection, so a waiter finds it idle.
            drop(permit);
        };
        if self.released && !conn.is_in_transaction() {
            give_back(conn);
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let timeout = self.pool.acquire_timeout;
            runtime.spawn(async move {
                // Bounded, so a database that stopped answering cannot keep the permit forever.
                if let Ok(Ok(())) = tokio::time::timeout(timeout, conn.ping()).await {
                    give_back(conn);
                }
            });
        }
    }
}

impl Deref for HotConn {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match &self.0 {
            // `conn` is only taken in `drop`.
            Held::Own(own) => own.conn.as_ref().expect("connection present until dropped"),
            Held::InTransaction(tx) => tx,
        }
    }
}

impl DerefMut for HotConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match &mut self.0 {
            // `conn` is only taken in `drop`.
            Held::Own(own) => own.conn.as_mut().expect("connection present until dropped"),
            Held::InTransaction(tx) => tx,
        }
    }
}
