//! Outside programs that some tests run beside the server: Redis here, PgBouncer and HAProxy
//! for the replica tests. They are found on `PATH` or in Debian's `/usr/sbin`. When one is
//! missing the test says so and passes without running, unless `LATCHKEY_REQUIRE_SERVICES=1`
//! (`scripts/test.sh` sets it after installing them): then a missing program fails the test,
//! so CI can never skip these tests silently.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The program's path, or `None` (after saying why the test is skipped) when it is not
/// installed. Panics instead under `LATCHKEY_REQUIRE_SERVICES=1`.
pub fn program_or_skip(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let required = std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{test}: `{name}` is not installed (LATCHKEY_REQUIRE_SERVICES=1)"
        );
        eprintln!("SKIPPED {test}: `{name}` is not installed (scripts/test.sh installs it)");
    }
    found
}

/// A scratch directory, removed with its contents on drop. Under /tmp so that unix socket
/// paths stay short and other users (PgBouncer's) can reach it.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(what: &str) -> ScratchDir {
        let dir = PathBuf::from("/tmp").join(format!("lk-{what}-{}", &Uuid::new_v4().simple().to_string()[..12]));
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Process(Option<Child>);

impl Process {
    pub fn spawn(command: &mut Command, what: &str) -> Process {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {what}: {err}"));
        Process(Some(child))
    }

    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash would end it, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.0.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private `redis-server` on a unix socket, with nothing saved to disk. Tests stop and
/// start it again to see what the server does without it.
pub struct RedisServer {
    program: PathBuf,
    process: Process,
    socket: PathBuf,
    _dir: ScratchDir,
}

impl RedisServer {
    /// `None` when `redis-server` is not installed (see [`program_or_skip`]).
    pub async fn start(test: &str) -> Option<RedisServer> {
        let program = program_or_skip("redis-server", test)?;
        let dir = ScratchDir::new("redis");
        let socket = dir.path().join("redis.sock");
        let process = launch(&program, &socket, dir.path()).await;
        Some(RedisServer {
            program,
            process,
            socket,
            _dir: dir,
        })
    }

    /// For `LATCHKEY_RATE_LIMIT_REDIS_URL`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// How many keys it holds (`DBSIZE`).
    pub async fn keys(&self) -> u64 {
        let mut stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .expect("connect to redis");
        stream.write_all(b"DBSIZE\r\n").await.expect("send DBSIZE");
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).await.expect("read DBSIZE");
            reply.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&reply);
        text.trim().trim_start_matches(':').parse().expect("an integer reply")
    }

    /// Kills it (SIGKILL: no goodbye to the clients, as in a crash).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same socket, empty.
    pub async fn start_again(&mut self) {
        self.process.kill();
        let dir = self
            .socket
            .parent()
            .expect("the socket is in the scratch dir")
            .to_owned();
        self.process = launch(&self.program, &self.socket, &dir).await;
    }
}

async fn launch(program: &Path, socket: &Path, dir: &Path) -> Process {
    let mut process = Process::spawn(
        Command::new(program)
            .args(["--port", "0", "--unixsocket"])
            .arg(socket)
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null()),
        "redis-server",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers_ping(socket).await {
        assert!(process.is_running(), "redis-server exited at start");
        assert!(Instant::now() < deadline, "redis-server did not answer within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process
}

async fn answers_ping(socket: &Path) -> bool {
    let Ok(mut stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok() && stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
}
