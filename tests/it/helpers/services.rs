//! Outside programs that some tests run beside the server (Redis, PgBouncer, HAProxy) and
//! what starting them needs. They are found on `PATH` or in Debian's `/usr/sbin`. When one is
//! missing the test says so and passes without running, unless `LATCHKEY_REQUIRE_SERVICES=1`
//! (`scripts/test.sh` sets it after installing them): then a missing program fails the test,
//! so CI can never skip these tests silently.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

    /// Its stdout, when it was started with `Stdio::piped()`.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.0.as_mut()?.stdout.take()
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

/// A port nobody listens on right now (the OS picks it; a program started on it a moment
/// later almost always gets it, and the callers retry when not).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("bound address").port()
}

/// Waits until something accepts connections on `port`, failing when `process` exits first.
pub async fn wait_for_port(port: u16, process: &mut Process, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(process.is_running(), "{what} exited at start");
        assert!(Instant::now() < deadline, "{what} did not listen on {port} within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether this process runs as root (some programs refuse to, or must drop to another user).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
