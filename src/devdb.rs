//! A private PostgreSQL cluster for the zero-setup default (`latchkey serve` with no
//! `DATABASE_URL`) and for tests: started from the server binaries installed on the machine,
//! data kept in a directory that is reused on the next start.
//!
//! `initdb` and `postgres` refuse to run as root, so when we are root they run as the
//! `postgres` system user (the Debian package creates it) and the data directory is handed
//! to that user.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};
use rand::Rng;
use rand::distr::Alphanumeric;

pub const INSTALL_HINT: &str = "No PostgreSQL server binaries were found (looked on PATH, in \
`pg_config --bindir` and under /usr/lib/postgresql/*/bin). Install them, e.g. \
`apt-get install postgresql` on Debian/Ubuntu or `brew install postgresql` on macOS, or set \
DATABASE_URL to an existing database.";

/// A running cluster. Dropping it stops the cluster if this process started it.
#[derive(Debug)]
pub struct DevCluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    port: u16,
    password: String,
    started_here: bool,
}

impl DevCluster {
    /// Starts (initialising if needed) the cluster kept in `root`, or attaches to it when
    /// another process already runs it.
    pub fn start(root: &Path) -> anyhow::Result<DevCluster> {
        let bin_dir = find_bin_dir().context(INSTALL_HINT)?;
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let root = root.canonicalize()?;
        let run_as = if running_as_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        // Serialise concurrent starters (several test processes, two servers at once).
        let lock = fs::File::create(root.join("cluster.lock"))?;
        lock.lock()?;

        let data_dir = root.join("pgdata");
        let password_file = root.join("password");
        if !data_dir.join("PG_VERSION").exists() {
            init_cluster(&bin_dir, &root, &data_dir, &password_file, run_as)?;
        }
        let password = fs::read_to_string(&password_file)
            .with_context(|| format!("reading {}", password_file.display()))?
            .trim()
            .to_owned();

        if let Some(port) = running_port(&bin_dir, &data_dir, run_as) {
            return Ok(DevCluster {
                bin_dir,
                data_dir,
                run_as,
                port,
                password,
                started_here: false,
            });
        }
        let port = free_port()?;
        let log_file = root.join("postgres.log");
        let options =
            format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200");
        let output = pg_command(&bin_dir, "pg_ctl", run_as)
            .arg("-D")
            .arg(&data_dir)
            .arg("-l")
            .arg(&log_file)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .context("running pg_ctl start")?;
        check(&output, "pg_ctl start", Some(&log_file))?;
        Ok(DevCluster {
            bin_dir,
            data_dir,
            run_as,
            port,
            password,
            started_here: true,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` in this cluster (it contains the cluster's password).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{}",
            self.password, self.port, database
        )
    }

    pub fn stop(&mut self) {
        if !self.started_here {
            return;
        }
        self.started_here = false;
        let result = pg_command(&self.bin_dir, "pg_ctl", self.run_as)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "stop"])
            .output();
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not stop the private PostgreSQL cluster");
        }
    }

    /// Keep the cluster running after this value is dropped (tests share one cluster).
    pub fn detach(mut self) -> DevCluster {
        self.started_here = false;
        self
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn init_cluster(
    bin_dir: &Path,
    root: &Path,
    data_dir: &Path,
    password_file: &Path,
    run_as: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let password: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let mut file = fs::File::create(password_file)?;
    file.write_all(password.as_bytes())?;
    fs::set_permissions(password_file, fs::Permissions::from_mode(0o600))?;
    if let Some((uid, gid)) = run_as {
        // The postgres user must own the directory and be able to read the password file.
        chown(root, uid, gid)?;
        chown(password_file, uid, gid)?;
    }
    let _ = fs::remove_dir_all(data_dir);
    let output = pg_command(bin_dir, "initdb", run_as)
        .arg("-D")
        .arg(data_dir)
        .args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", password_file.display()))
        .output()
        .context("running initdb")?;
    check(&output, "initdb", None)
}

/// The port of the postmaster already serving `data_dir`, if one is alive.
fn running_port(bin_dir: &Path, data_dir: &Path, run_as: Option<(u32, u32)>) -> Option<u16> {
    let status = pg_command(bin_dir, "pg_ctl", run_as)
        .arg("-D")
        .arg(data_dir)
        .arg("status")
        .output()
        .ok()?;
    if !status.status.success() {
        return None;
    }
    // postmaster.pid line 4 is the port.
    let pid_file = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    pid_file.lines().nth(3)?.trim().parse().ok()
}

fn pg_command(bin_dir: &Path, program: &str, run_as: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(bin_dir.join(program));
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
        // The postgres user cannot read root's working directory; run from /.
        command.current_dir("/");
        command.env("HOME", "/tmp");
    }
    command
}

fn check(output: &Output, what: &str, log_file: Option<&Path>) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let mut message = format!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if let Some(log) = log_file.and_then(|p| fs::read_to_string(p).ok()) {
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        message.push_str("\nlast lines of the server log:\n");
        for line in tail.into_iter().rev() {
            message.push_str(line);
            message.push('\n');
        }
    }
    bail!(message)
}

/// Finds `initdb`/`pg_ctl`: next to `initdb` on PATH, in `pg_config --bindir`, or the newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    for dir in on_path {
        let initdb = dir.join("initdb");
        if initdb.exists() {
            // Debian links /usr/local/bin/initdb into the versioned directory: follow it.
            let real = initdb.canonicalize().unwrap_or(initdb);
            if let Some(parent) = real.parent().filter(|d| has_tools(d)) {
                return Some(parent.to_path_buf());
            }
        }
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn running_as_root() -> bool {
    // The owner of /proc/self is the effective uid of this process.
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// uid and gid of the `postgres` system user, from /etc/passwd.
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        .context(
            "running as root, but there is no `postgres` user to run the database as; \
             create one (`useradd -r postgres`) or run Latchkey as a normal user",
        )
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("chown {}", path.display()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
