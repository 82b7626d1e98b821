//! The floor under `GET /user` (issue #24): what the stack Latchkey is built on costs per
//! request before any of Latchkey's own work.
//!
//! It serves `GET /auth/v1/user` the way `startup::http` does (axum on hyper, one
//! current-thread runtime per CPU, connections handed to them in turn, `TCP_NODELAY`), and
//! runs the server's `GET /user` statement over connections of its own thread, like
//! `db::hot`. Then it answers with a fixed body the size of a real user object. It verifies
//! no token, has no middleware, and decodes and encodes no JSON.
//!
//! `latchkey-bench` starts it for the `user-floor` scenario. It reads `DATABASE_URL`,
//! `GOTRUE_API_HOST` and `PORT` like the server, and `LATCHKEY_FLOOR_STATEMENT` (with `$1`
//! the user id and `$2` the session id), `LATCHKEY_FLOOR_BODY` and `LATCHKEY_FLOOR_USERS`
//! (request n reads seeded user n mod users + 1, as pgbench's random user does).

use std::cell::{Cell, RefCell};
use std::net::TcpListener;
use std::sync::OnceLock;

use anyhow::Context;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions};
use tokio::sync::{Notify, mpsc};

/// Connections per thread: the server's default hot pool (`GOTRUE_DB_MAX_POOL_SIZE` 20, half
/// of it, split over two threads).
const CONNECTIONS_PER_THREAD: usize = 4;

struct Floor {
    statement: String,
    body: String,
    users: u32,
}

static FLOOR: OnceLock<Floor> = OnceLock::new();

thread_local! {
    static OPTIONS: RefCell<Option<PgConnectOptions>> = const { RefCell::new(None) };
    static IDLE: RefCell<Vec<PgConnection>> = const { RefCell::new(Vec::new()) };
    static RETURNED: &'static Notify = Box::leak(Box::new(Notify::new()));
    static NEXT_USER: Cell<u32> = const { Cell::new(0) };
}

/// A connection taken from the thread's idle ones, given back by [`Lent::give_back`].
struct Lent(Option<PgConnection>);

impl Lent {
    async fn take() -> Lent {
        loop {
            if let Some(conn) = IDLE.with(|idle| idle.borrow_mut().pop()) {
                return Lent(Some(conn));
            }
            let returned: &'static Notify = RETURNED.with(|n| *n);
            returned.notified().await;
        }
    }

    fn give_back(mut self) {
        if let Some(conn) = self.0.take() {
            give_back(conn);
        }
    }
}

impl Drop for Lent {
    /// A request dropped mid-query (wrk closes its connections at the end of a run) leaves
    /// its connection with an answer pending: open a new one in its place.
    fn drop(&mut self) {
        if self.0.take().is_some() {
            tokio::task::spawn_local(open_connection());
        }
    }
}

async fn open_connection() {
    let options = OPTIONS.with(|o| o.borrow().clone()).expect("set before serving");
    give_back(options.connect().await.expect("connecting to the database"));
}

fn give_back(conn: PgConnection) {
    IDLE.with(|idle| idle.borrow_mut().push(conn));
    RETURNED.with(|n| n.notify_one());
}

/// The seeded user or session `k` (see `seed.rs`).
fn seeded(kind: &str, k: u32) -> uuid::Uuid {
    format!("00000000-0000-4000-{kind}-{k:012}")
        .parse()
        .expect("a seeded id")
}

async fn user() -> Result<([(header::HeaderName, &'static str); 1], &'static str), StatusCode> {
    let floor = FLOOR.get().expect("set before serving");
    let k = NEXT_USER.with(|n| {
        n.set(n.get() % floor.users + 1);
        n.get()
    });
    let mut lent = Lent::take().await;
    let conn = lent.0.as_mut().expect("lent");
    let row = sqlx::query(AssertSqlSafe(floor.statement.as_str()))
        .bind(seeded("8000", k))
        .bind(seeded("9000", k))
        .fetch_optional(conn)
        .await;
    lent.give_back();
    match row {
        Ok(Some(_)) => Ok(([(header::CONTENT_TYPE, "application/json")], floor.body.as_str())),
        _ => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn serve_thread(options: PgConnectOptions, mut accepted: mpsc::UnboundedReceiver<std::net::TcpStream>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        OPTIONS.with(|o| *o.borrow_mut() = Some(options));
        for _ in 0..CONNECTIONS_PER_THREAD {
            open_connection().await;
        }
        let app: Router = Router::new().route("/auth/v1/user", get(user));
        while let Some(stream) = accepted.recv().await {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::task::spawn_local(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn main() -> anyhow::Result<()> {
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let options: PgConnectOptions = var("DATABASE_URL")?.parse()?;
    let options = options.options([("search_path", "auth")]);
    FLOOR
        .set(Floor {
            statement: var("LATCHKEY_FLOOR_STATEMENT")?,
            body: var("LATCHKEY_FLOOR_BODY")?,
            users: var("LATCHKEY_FLOOR_USERS")?.parse::<u32>()?.max(1),
        })
        .map_err(|_| anyhow::anyhow!("set twice"))?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let listener = TcpListener::bind((var("GOTRUE_API_HOST")?.as_str(), var("PORT")?.parse::<u16>()?))?;
    // The line `latchkey-bench` waits for, as from the server.
    println!("latchkey listening on http://{}", listener.local_addr()?);
    let threads: Vec<_> = (0..threads)
        .map(|_| {
            let (hand, accepted) = mpsc::unbounded_channel();
            let options = options.clone();
            std::thread::spawn(move || serve_thread(options, accepted));
            hand
        })
        .collect();
    for (n, stream) in listener.incoming().enumerate() {
        let stream = stream?;
        stream.set_nonblocking(true)?;
        let count = threads.len();
        if threads[n % count].send(stream).is_err() {
            anyhow::bail!("a serving thread stopped");
        }
    }
    Ok(())
}
