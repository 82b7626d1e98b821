//! A private `redis-server` for the tests that share rate limits through Redis.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::services::{Process, ScratchDir, program_or_skip};

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
