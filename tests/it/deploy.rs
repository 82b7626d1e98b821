//! The container files against the workspace (no Docker engine here): the Dockerfile's
//! dependency-cache stage must see every workspace member, or cargo cannot read the
//! workspace and the cache silently never works; the image must check its own health and run
//! as a numeric non-root user; the compose files must use that check.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The workspace members other than the root package (`members = [".", "bench"]`).
fn workspace_members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let line = manifest
        .lines()
        .find(|line| line.starts_with("members"))
        .expect("a members line");
    line.split('"')
        .skip(1)
        .step_by(2)
        .filter(|member| *member != ".")
        .map(str::to_owned)
        .collect()
}

/// The Dockerfile's dependency stage: from the start to the `COPY . .` of the real build.
fn cache_stage(dockerfile: &str) -> &str {
    let end = dockerfile
        .find("\nCOPY . .")
        .expect("the real build copies the whole context");
    &dockerfile[..end]
}

#[test]
fn the_cache_stage_copies_every_workspace_member() {
    let dockerfile = read("Dockerfile");
    let stage = cache_stage(&dockerfile);
    let members = workspace_members();
    assert!(!members.is_empty());
    for member in &members {
        let manifest = format!("{member}/Cargo.toml");
        assert!(
            stage.contains(&format!("COPY {manifest} {manifest}")),
            "the Dockerfile's cache stage does not copy {manifest}"
        );
        assert!(
            stage.contains(&format!("{member}/src/main.rs")),
            "no stub main for {member}"
        );
    }
    let commands: Vec<&str> = stage
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect();
    assert!(
        !commands.iter().any(|line| line.contains("|| true")),
        "a failing cache build must fail the image build"
    );
}

/// Rebuilds the cache stage's context from its COPY and stub commands in a scratch directory
/// and asks cargo to read the workspace there, as the stage's `cargo build` will.
#[test]
fn the_cache_stage_context_is_a_valid_workspace() {
    let dockerfile = read("Dockerfile");
    let stage = cache_stage(&dockerfile);
    let scratch = std::env::temp_dir().join(format!("latchkey-docker-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).unwrap();
    for line in stage.lines().filter(|line| line.starts_with("COPY ")) {
        let parts: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (target, sources) = parts.split_last().unwrap();
        for source in sources {
            let destination = if target.ends_with('/') || *target == "./" {
                scratch.join(source)
            } else {
                scratch.join(target)
            };
            std::fs::create_dir_all(destination.parent().unwrap()).unwrap();
            std::fs::copy(root().join(source), &destination).unwrap();
        }
    }
    for stub in stub_files(stage) {
        let path = scratch.join(stub);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "fn main() {}\n").unwrap();
    }
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--locked",
            "--offline",
        ])
        .current_dir(&scratch)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        output.status.success(),
        "cargo cannot read the cache stage's workspace: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The files the stage's RUN writes (`echo ... > path`, `touch path`).
fn stub_files(stage: &str) -> Vec<&str> {
    let mut files = Vec::new();
    for piece in stage.split("&&") {
        let piece = piece.trim().trim_end_matches('\\').trim();
        if let Some((_, path)) = piece.split_once(" > ") {
            files.push(path.trim());
        } else if let Some(path) = piece.strip_prefix("touch ") {
            files.push(path.trim());
        }
    }
    files
}

#[test]
fn the_image_checks_its_own_health_as_a_numeric_non_root_user() {
    let dockerfile = read("Dockerfile");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER line");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid > 0),
        "USER {user}: numeric, not root"
    );
    let healthcheck = dockerfile.split("HEALTHCHECK").nth(1).expect("a HEALTHCHECK");
    assert!(
        healthcheck.contains(r#"CMD ["latchkey", "healthcheck"]"#),
        "{healthcheck}"
    );
}

#[test]
fn compose_files_use_the_images_own_health_check() {
    for file in ["docker-compose.yml", "deploy/supabase/docker-compose.latchkey.yml"] {
        let text = read(file);
        assert!(
            text.contains(r#"test: ["CMD", "latchkey", "healthcheck"]"#),
            "{file} does not use `latchkey healthcheck`"
        );
        let checks: Vec<&str> = text
            .lines()
            .filter(|line| line.trim_start().starts_with("test:"))
            .collect();
        for check in checks {
            assert!(!check.contains("wget") && !check.contains("curl"), "{file}: {check}");
        }
    }
}

/// Every metric the sample dashboard queries is one Latchkey records.
#[test]
fn the_grafana_dashboard_queries_metrics_that_exist() {
    use latchkey::telemetry::metrics as m;
    let recorded = [
        m::HTTP_REQUESTS,
        m::HTTP_DURATION,
        m::AUTH_FAILURES,
        m::SIGN_INS,
        m::SIGN_UPS,
        m::REFRESHES,
        m::RATE_LIMITED,
        m::EMAILS_SENT,
        m::EMAILS_FAILED,
        m::SMS_SENT,
        m::SMS_FAILED,
        m::DB_CONNECTIONS,
        m::DB_WAITING,
        m::HASHES_QUEUED,
        m::REDIS_FAILURES,
    ];
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana/latchkey.json")).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !name.starts_with("latchkey_") {
                    continue;
                }
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                assert!(recorded.contains(&base), "{} queries {name}", panel["title"]);
                queried += 1;
            }
        }
    }
    assert!(queried >= recorded.len(), "{queried}");
    assert!(Path::new(&root().join("deploy/grafana/latchkey.json")).exists());
}
