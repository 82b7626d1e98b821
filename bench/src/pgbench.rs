//! The Postgres baseline: pgbench running, over the same tables and at the same concurrency,
//! the statements the server runs for a scenario. Keep these scripts in step with `src/db/`
//! and `src/auth/session.rs` (the bench prints them into `bench/results/` so a reader can
//! compare).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

use crate::load::{ADMIN_PER_PAGE, Scenario};

/// `db::users::user_columns!()`, with `db::mfa_factors::factors_json!("_auth_users.id")`.
const USER_COLUMNS: &str = "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, \
    confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at, \
    email_change_confirm_status, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, \
    updated_at, phone, phone_confirmed_at, phone_change, phone_change_sent_at, confirmed_at, \
    banned_until, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous, \
    coalesce((select json_agg(f order by f.created_at, f.id) from (select id, user_id, \
    coalesce(friendly_name, '') as friendly_name, factor_type, status, created_at, updated_at, phone, \
    last_challenged_at, web_authn_aaguid from _auth_mfa_factors where user_id = _auth_users.id) f), \
    '[]'::json) as factors";

/// `db::identities::identity_columns!()`.
const IDENTITY_COLUMNS: &str =
    "id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email";

/// The uuid of seeded user / session `:k`.
const USER_K: &str = "('00000000-0000-4000-8000-' || lpad(cast(:k as text), 12, '0'))::uuid";
const SESSION_K: &str = "('00000000-0000-4000-9000-' || lpad(cast(:k as text), 12, '0'))::uuid";

/// `db::identities::identities_json!(user)`.
fn identities_json(user: &str) -> String {
    format!(
        "coalesce((select json_agg(i order by i.created_at, i.id) from (select {IDENTITY_COLUMNS} \
         from _auth_identities where user_id = {user}) i), '[]'::json)"
    )
}

/// `GET /user`: `AuthUserWithIdentities` (`users::find_with_session_and_identities`).
pub fn user_script() -> String {
    format!("\\set k random(1, :users)\n{};\n", user_statement(USER_K, SESSION_K))
}

/// The statement of `GET /user` for the user and session ids `user` and `session` (SQL
/// expressions); `latchkey-floor` runs it with `$1` and `$2`, as the server does.
pub fn user_statement(user: &str, session: &str) -> String {
    format!(
        "select {USER_COLUMNS}, (select s.aal from _auth_sessions s where s.id = {session} \
         and s.user_id = _auth_users.id) as session_aal, {} as identities \
         from _auth_users where id = {user}",
        identities_json("_auth_users.id")
    )
}

/// The refresh grant's common case (`session::refresh_grant`, the live token, no hook): the
/// one statement `refresh_tokens::rotate_live`, which reads the token, its session, user and
/// identities and rotates the chain. Each client rotates its own chain (see
/// `seed::refresh_chains`): token n of client c has the stored hash `(c+1) * 1000000 + n`.
pub fn refresh_script() -> String {
    let session = "('00000000-0000-4000-a000-' || lpad(cast(:client_id + 1 as text), 12, '0'))::uuid";
    let payload = "jsonb_build_object('actor_id', found.id, 'actor_username', coalesce(nullif(found.phone, ''), \
         found.email, ''), 'actor_via_sso', false, 'action', 'token_refreshed'::text, 'log_type', 'token'::text) \
         || case when found.raw_user_meta_data ? 'full_name' then jsonb_build_object('actor_name', \
         found.raw_user_meta_data -> 'full_name') else '{}'::jsonb end";
    format!(
        "\\set cur (:client_id + 1) * 1000000 + :counter\n\
         with found as (select l.*, {USER_COLUMNS}, {} as identities \
         from (select t.token_hash, t.user_id, t.session_id, t.counter, t.revoked, \
         t.updated_at as token_updated_at, s.refresh_token_counter as session_counter, \
         s.not_after as session_not_after, s.aal as session_aal, s.amr as session_amr, \
         s.xmin::text as session_version \
         from _auth_refresh_tokens t join _auth_sessions s on s.id = t.session_id \
         where t.token_hash = cast(:cur as text)) l \
         join _auth_users on _auth_users.id = l.user_id), \
         moved as (update _auth_sessions set refresh_token_counter = :counter + 1, refreshed_at = now(), \
         updated_at = now() from found where _auth_sessions.id = {session} and found.session_id = {session} \
         and found.counter = :counter and found.session_counter = :counter and not found.revoked \
         and _auth_sessions.xmin::text = found.session_version \
         and (found.banned_until is null or found.banned_until <= now()) \
         and (found.session_not_after is null or now() <= found.session_not_after) \
         returning _auth_sessions.id), \
         revoked as (update _auth_refresh_tokens set revoked = true, updated_at = now() \
         where session_id = (select id from moved) and revoked = false), \
         recorded as (insert into _auth_audit_log (id, payload, ip_address) \
         select gen_random_uuid(), {payload}, '127.0.0.1' from found where exists (select 1 from moved)), \
         inserted as (insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent) \
         select cast(:cur + 1 as text), found.user_id, {session}, :counter + 1, cast(:cur as text) \
         from found where exists (select 1 from moved)) \
         select found.*, exists (select 1 from moved) as rotated from found;\n\
         \\set counter :counter + 1\n",
        identities_json("l.user_id")
    )
}

/// Admin `listUsers` (`admin_users::list`): the page (`users::list`), the total
/// (`users::count`) and the page's identities (`identities::for_users`), three statements as
/// the server sends them. The page's ids are known from the seed (user k is the k-th newest
/// from the end, see `seed::users`), so the identities statement names them by k. Limit and
/// offset are parameters, as the server binds them: a literal `limit 50` makes the generic
/// plan of the filtered page walk the whole `(created_at, id)` index looking for 50 matches
/// (4 transactions/s at 1M users instead of 84 with the limit bound, as the server binds it).
pub fn admin_script(scenario: Scenario) -> String {
    let per_page = ADMIN_PER_PAGE;
    let page_of_users = || {
        format!(
            "select {USER_COLUMNS} from (select id, created_at as listed_at from _auth_users \
             order by created_at desc, id desc limit :per_page offset :offset) page \
             join _auth_users using (id) order by page.listed_at desc, page.id desc;\n\
             select coalesce(sum(users), 0)::bigint from _auth_users_count;\n"
        )
    };
    let filter = "(email ilike :pattern escape '\\' or raw_user_meta_data ->> 'full_name' ilike :pattern escape '\\')";
    // `lo ..= hi`: the seeded k of the page's users.
    let (head, lo, hi) = match scenario {
        Scenario::AdminFirst => (
            format!("\\set offset 0\n{}", page_of_users()),
            format!(":users - {}", per_page - 1),
            ":users".to_owned(),
        ),
        Scenario::AdminDeep => (
            format!(
                "\\set offset ({} - 1) * {per_page}\n{}",
                admin_deep_page_expression(),
                page_of_users()
            ),
            format!(":users - :offset - {}", per_page - 1),
            ":users - :offset".to_owned(),
        ),
        _ => {
            let matches = filter.replace(":pattern", "'%user' || cast(:k as text) || '@%'");
            (
                format!(
                    "\\set k random(1, :users)\n\\set offset 0\n\
                     select {USER_COLUMNS} from _auth_users where {matches} \
                     order by created_at desc, id desc limit :per_page offset :offset;\n\
                     select count(*) from _auth_users where {matches};\n"
                ),
                ":k".to_owned(),
                ":k".to_owned(),
            )
        }
    };
    let user = USER_K.replace(":k", "k");
    format!(
        "\\set per_page {per_page}\n{head}\\set lo greatest({lo}, 1)\n\\set hi {hi}\n\
         select {IDENTITY_COLUMNS} from _auth_identities where user_id = any(array(\
         select {user} from generate_series(cast(:lo as int), cast(:hi as int)) k)) order by created_at, id;\n"
    )
}

/// `load::admin_deep_page` in pgbench's expression language.
fn admin_deep_page_expression() -> String {
    format!("greatest(:users / {}, 1)", 2 * ADMIN_PER_PAGE)
}

#[derive(Debug, Clone)]
pub struct PgbenchResult {
    pub tps: f64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub struct Pgbench {
    pub binary: PathBuf,
    pub database_url: String,
    pub work_dir: PathBuf,
}

impl Pgbench {
    pub fn run(
        &self,
        name: &str,
        script: &str,
        clients: usize,
        seconds: u64,
        users: u32,
    ) -> anyhow::Result<PgbenchResult> {
        let dir = self.work_dir.join(format!("pgbench-{name}-{clients}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let script_path = dir.join("script.sql");
        std::fs::write(&script_path, script)?;
        let output = Command::new(&self.binary)
            .env("PGOPTIONS", "-c search_path=auth")
            .args(["-n", "-M", "prepared", "-l"])
            .arg(format!("--log-prefix={}", dir.join("log").display()))
            .arg(format!("--client={clients}"))
            .arg(format!("--jobs={}", clients.min(2)))
            .arg(format!("--time={seconds}"))
            .arg(format!("--define=users={users}"))
            .arg("--define=counter=0")
            .arg(format!("--file={}", script_path.display()))
            .arg(&self.database_url)
            .output()
            .with_context(|| format!("running {}", self.binary.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tps = stdout
            .lines()
            .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))
            .and_then(|l| l["tps = ".len()..].split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
        let Some(tps) = tps else {
            bail!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status);
        };
        let number = |prefix: &str| -> u64 {
            stdout
                .lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l[prefix.len()..].split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let aborted = stderr.matches("aborted").count() as u64;
        if aborted > 0 {
            eprintln!("pgbench {name} -c {clients}: {}", stderr.lines().next().unwrap_or(""));
        }
        let failed = number("number of failed transactions: ") + aborted;
        let hist = latencies(&dir)?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(PgbenchResult {
            tps,
            failed,
            p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        })
    }
}

/// Per-transaction latencies from pgbench's `-l` logs (third field, microseconds).
fn latencies(dir: &Path) -> anyhow::Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("log"))
        {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            if let Some(micros) = line.split_whitespace().nth(2).and_then(|v| v.parse::<u64>().ok()) {
                let _ = hist.record(micros.clamp(1, 60_000_000));
            }
        }
    }
    Ok(hist)
}
