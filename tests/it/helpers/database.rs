//! Test databases: one cluster for the whole run, a fresh database per test, dropped when the
//! test is over.
//!
//! The cluster is `DATABASE_URL` when set (the README's test command starts a throwaway one),
//! otherwise a private cluster under `target/test-pg` started with the same helper the server
//! uses for its zero-setup mode, and left running for the next run.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return url;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-pg");
        let cluster = latchkey::devdb::DevCluster::start(&dir)
            .expect("start a private test cluster")
            .detach();
        cluster.url("postgres")
    })
}

/// A database made for one test, shared by the servers that test starts: the last clone to go
/// drops it (`LATCHKEY_KEEP_DB=1` keeps it, to look at after a failure), so that a run leaves
/// no `lk_test_*` database behind.
#[derive(Clone)]
pub struct TestDatabase(Arc<Created>);

struct Created {
    name: String,
    url: String,
    /// Roles the test made for this database (an owner, say), dropped after it.
    roles: Mutex<Vec<String>>,
}

impl TestDatabase {
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// The database's name in the cluster.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Drops `role` (a cluster-wide object) once the database is gone.
    pub fn drop_role_with_it(&self, role: &str) {
        self.0
            .roles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(role.to_owned());
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if std::env::var("LATCHKEY_KEEP_DB").is_ok_and(|keep| keep == "1") {
            return;
        }
        // `force`: the test's servers may still hold connections.
        let mut statements = vec![format!("drop database if exists {} with (force)", self.name)];
        let roles = self.roles.get_mut().unwrap_or_else(PoisonError::into_inner);
        statements.extend(roles.iter().map(|role| format!("drop role if exists {role}")));
        dropper::run(&self.name, statements);
    }
}

/// Creates an empty database, dropped when the returned handle and its clones are gone.
pub async fn fresh_database() -> TestDatabase {
    let admin = cluster_url();
    let mut conn = PgConnection::connect(admin).await.expect("connect to the test cluster");
    let name = format!("lk_test_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(admin).expect("cluster URL");
    url.set_path(&name);
    TestDatabase(Arc::new(Created {
        name,
        url: url.to_string(),
        roles: Mutex::default(),
    }))
}

/// Runs the dropping statements from synchronous `Drop`, which runs on a test's tokio runtime
/// and so may neither await nor start a nested runtime there: one thread with its own runtime
/// and one connection to the cluster runs them, and `run` waits for the answer (the test
/// binary exits right after its last test, so a drop left in flight would be lost).
mod dropper {
    use std::sync::mpsc::{Sender, channel};
    use std::sync::{Mutex, OnceLock, PoisonError};
    use std::time::Duration;

    use sqlx::{Connection, PgConnection};

    type Request = (Vec<String>, Sender<Result<(), String>>);

    fn requests() -> &'static Mutex<Sender<Request>> {
        static REQUESTS: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
        REQUESTS.get_or_init(|| {
            let (sender, receiver) = channel::<Request>();
            std::thread::Builder::new()
                .name("test-db-dropper".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("dropper runtime");
                    let mut conn: Option<PgConnection> = None;
                    for (statements, reply) in receiver {
                        let result = runtime.block_on(execute(&mut conn, &statements));
                        let _ = reply.send(result);
                    }
                })
                .expect("start the dropper thread");
            Mutex::new(sender)
        })
    }

    async fn execute(conn: &mut Option<PgConnection>, statements: &[String]) -> Result<(), String> {
        for sql in statements {
            let ran = match conn.as_mut() {
                Some(open) => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(open)
                    .await
                    .is_ok(),
                None => false,
            };
            if !ran {
                // No connection yet, or it broke: one new try.
                let mut open = PgConnection::connect(super::cluster_url())
                    .await
                    .map_err(|e| e.to_string())?;
                let result = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut open).await;
                *conn = Some(open);
                result.map_err(|e| format!("{sql}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Runs `statements` in order and waits for them. Never panics: it runs in `Drop`, maybe
    /// while a failed test unwinds.
    pub fn run(database: &str, statements: Vec<String>) {
        let (reply, answer) = channel();
        let sent = requests()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send((statements, reply));
        let outcome = match sent {
            Ok(()) => answer
                .recv_timeout(Duration::from_secs(60))
                .map_err(|e| e.to_string())
                .and_then(|done| done),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            eprintln!("could not drop test database {database}: {e}");
        }
    }
}
