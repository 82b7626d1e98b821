//! The `latchkey` binary as a child process, for what only a process shows: its log lines on
//! stderr, its exit code, its own metrics recorder (one per process, so counts are exact).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::helpers::JWT_SECRET;

/// How long a child may take to start listening (a debug build, a fresh database).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `latchkey serve`; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub address: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `latchkey serve` on port 0 against `database_url`, with `vars` on top of the
    /// essentials, and waits until it listens.
    pub fn start(database_url: &str, vars: &[(&str, &str)]) -> Server {
        let mut command = latchkey(&["serve"], database_url, vars);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start latchkey");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let (found, listening) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("latchkey listening on ") {
                    let _ = found.send(address.to_owned());
                }
            }
        });
        let Ok(address) = listening.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            panic!("latchkey did not start: {:#?}", stderr.lock().unwrap());
        };
        Server { child, address, stderr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (a few seconds at most) until a stderr line satisfies `wanted`, and returns it.
    pub async fn wait_for_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        for _ in 0..100 {
            if let Some(line) = self.stderr().into_iter().find(|line| wanted(line)) {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no such line in {:#?}", self.stderr());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `latchkey <args>` run to its end.
pub fn run(args: &[&str], database_url: &str, vars: &[(&str, &str)]) -> Output {
    latchkey(args, database_url, vars).output().expect("run latchkey")
}

/// The command with a clean environment: the test's essentials, then `vars` (an empty value
/// removes an essential), in a directory of its own (no `.env`, no `.latchkey/`).
fn latchkey(args: &[&str], database_url: &str, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command.args(args).env_clear().current_dir(scratch_dir());
    let essentials = [
        ("DATABASE_URL", database_url),
        ("GOTRUE_API_HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("GOTRUE_JWT_SECRET", JWT_SECRET),
        ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
        ("LATCHKEY_LOG_FORMAT", "json"),
    ];
    for (name, value) in essentials.iter().chain(vars) {
        if value.is_empty() {
            command.env_remove(name);
        } else {
            command.env(name, value);
        }
    }
    command
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latchkey-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The stderr lines that are JSON objects, parsed; fails the test on any other line.
pub fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|err| panic!("not a JSON log line ({err}): {line}"))
        })
        .collect()
}
