//! A private PgBouncer in transaction pooling mode in front of one test database, and that
//! database prepared the way a pooler needs it: migrated directly, and with Latchkey's
//! namespace on its `search_path` (a pooler cannot pass the one Latchkey sets when connecting).

use std::fmt::Write as _;
use std::process::{Command, Stdio};

use sqlx::{Connection, PgConnection};

use super::services::{Process, ScratchDir, free_port, program_or_skip, running_as_root, wait_for_port};
use super::{TestDatabase, base_vars};

pub struct PgBouncer {
    port: u16,
    database: String,
    _process: Process,
    _dir: ScratchDir,
}

impl PgBouncer {
    /// Starts a PgBouncer for `database` with at most `server_connections` connections to
    /// PostgreSQL; `None` when PgBouncer is not installed (see `program_or_skip`). The
    /// database is prepared first (see [`prepare_for_pooler`]).
    pub async fn start(database: &TestDatabase, server_connections: u32, test: &str) -> Option<PgBouncer> {
        let program = program_or_skip("pgbouncer", test)?;
        prepare_for_pooler(database).await;
        PgBouncer::start_unprepared(database, server_connections, &program).await
    }

    /// Starts it in front of `database` as it is.
    pub async fn start_unprepared(
        database: &TestDatabase,
        server_connections: u32,
        program: &std::path::Path,
    ) -> Option<PgBouncer> {
        let dir = ScratchDir::new("pgbouncer");
        for _attempt in 0..3 {
            let port = free_port();
            write_config(&dir, database, port, server_connections);
            let mut command = Command::new(program);
            // PgBouncer refuses to run as root; it drops to `postgres` (the PostgreSQL package
            // makes that user) when asked.
            if running_as_root() {
                command.args(["-u", "postgres"]);
            }
            command
                .arg(dir.path().join("pgbouncer.ini"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("pgbouncer.log")).expect("log file"));
            let mut process = Process::spawn(&mut command, "pgbouncer");
            // A port taken in between makes it exit at once; then try another.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if !process.is_running() {
                continue;
            }
            wait_for_port(port, &mut process, "pgbouncer").await;
            return Some(PgBouncer {
                port,
                database: database.name().to_owned(),
                _process: process,
                _dir: dir,
            });
        }
        let log = std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default();
        panic!("pgbouncer did not start:\n{log}");
    }

    /// `DATABASE_URL` through the pooler.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.database)
    }
}

/// Migrates directly (migrations hold a session lock a pooler cannot keep) and puts the
/// namespace on the database's `search_path`, as an operator does for a role.
pub async fn prepare_for_pooler(database: &TestDatabase) {
    migrate_directly(database).await;
    let mut conn = PgConnection::connect(database.url()).await.expect("connect");
    let statement = format!("alter database {} set search_path = auth, public", database.name());
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut conn)
        .await
        .expect("set search_path");
}

/// `latchkey migrate` with `DATABASE_URL` pointing at PostgreSQL itself.
pub async fn migrate_directly(database: &TestDatabase) {
    let config = latchkey::config::Config::from_vars(base_vars(database.url())).expect("config");
    let pool = latchkey::db::migration_pool(&config, database.url()).expect("pool");
    latchkey::db::migrate(&pool, "auth").await.expect("migrate");
    pool.close().await;
}

fn write_config(dir: &ScratchDir, database: &TestDatabase, port: u16, server_connections: u32) {
    let server = url::Url::parse(database.url()).expect("database URL");
    let mut target = format!(
        "host={} port={} dbname={} user={}",
        server.host_str().unwrap_or("127.0.0.1"),
        server.port().unwrap_or(5432),
        database.name(),
        server.username()
    );
    if let Some(password) = server.password() {
        write!(target, " password={password}").expect("write to a String");
    }
    let ini = format!(
        "[databases]\n{name} = {target}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
         unix_socket_dir =\nauth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
         default_pool_size = {server_connections}\nmax_client_conn = 500\n",
        name = database.name(),
        users = dir.path().join("users.txt").display(),
    );
    std::fs::write(dir.path().join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
    std::fs::write(
        dir.path().join("users.txt"),
        format!("\"{}\" \"\"\n", server.username()),
    )
    .expect("users");
}
