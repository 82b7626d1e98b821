//! The statements of `--retarget` and `--undo`, and the record that makes every step
//! reversible: each change is written to `auth_gotrue_backup.latchkey_retarget` with the SQL
//! that restores what was there, in the same transaction as the change.
//!
//! The compatibility views reproduce GoTrue's column names, order and types, so that SQL
//! written against GoTrue's tables reads them unchanged; columns Latchkey does not keep
//! (GoTrue's plaintext one-time tokens) read as `''`, as GoTrue stores "none".

use sqlx::{FromRow, PgConnection};

use super::catalog::{ForeignKey, Trigger};
use super::{Schema, sql};

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Step {
    pub kind: String,
    /// For `table`: the table's name; for `foreign_key` and `trigger`: the table it is on.
    pub object: String,
    pub name: String,
    pub original: String,
    pub retargeted: String,
    pub enabled: bool,
}

/// Runs a statement built from the catalog's own rendering of an object (see `catalog`).
async fn run(conn: &mut PgConnection, statement: String) -> sqlx::Result<()> {
    sqlx::raw_sql(sql(statement)).execute(conn).await?;
    Ok(())
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

pub async fn create_backup_schema(conn: &mut PgConnection) -> sqlx::Result<()> {
    let b = Schema::backup().quoted();
    run(
        conn,
        format!(
            "create schema {b}; \
             create table {b}.latchkey_retarget ( \
                 step serial primary key, kind text not null, object text not null, name text not null, \
                 original text not null default '', retargeted text not null default '', \
                 enabled boolean not null default true); \
             comment on schema {b} is 'GoTrue''s tables, moved aside by latchkey import-gotrue --retarget; \
                 latchkey import-gotrue --undo puts them back';"
        ),
    )
    .await
}

async fn record(conn: &mut PgConnection, step: &Step) -> sqlx::Result<()> {
    let text = format!(
        "insert into {}.latchkey_retarget (kind, object, name, original, retargeted, enabled) \
         values ($1, $2, $3, $4, $5, $6)",
        Schema::backup().quoted()
    );
    sqlx::query(sql(text))
        .bind(&step.kind)
        .bind(&step.object)
        .bind(&step.name)
        .bind(&step.original)
        .bind(&step.retargeted)
        .bind(step.enabled)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn steps(conn: &mut PgConnection) -> sqlx::Result<Vec<Step>> {
    let text = format!(
        "select kind, object, name, original, retargeted, enabled from {}.latchkey_retarget order by step",
        Schema::backup().quoted()
    );
    sqlx::query_as(sql(text)).fetch_all(conn).await
}

pub async fn drop_foreign_key(conn: &mut PgConnection, key: &ForeignKey) -> sqlx::Result<()> {
    record(
        conn,
        &Step {
            kind: "foreign_key".into(),
            object: key.table.clone(),
            name: key.name.clone(),
            original: key.original.clone(),
            retargeted: key.retargeted.clone(),
            enabled: true,
        },
    )
    .await?;
    run(
        conn,
        format!("alter table {} drop constraint {}", key.table, quote(&key.name)),
    )
    .await
}

pub async fn add_foreign_key(conn: &mut PgConnection, table: &str, name: &str, definition: &str) -> sqlx::Result<()> {
    run(
        conn,
        format!("alter table {table} add constraint {} {definition}", quote(name)),
    )
    .await
}

pub async fn move_table(conn: &mut PgConnection, from: &Schema, table: &str, to: &Schema) -> sqlx::Result<()> {
    if *to == Schema::backup() {
        let step = Step {
            kind: "table".into(),
            object: table.to_owned(),
            name: table.to_owned(),
            original: String::new(),
            retargeted: String::new(),
            enabled: true,
        };
        record(conn, &step).await?;
    }
    let statement = format!(
        "alter table {}.{} set schema {}",
        from.quoted(),
        quote(table),
        to.quoted()
    );
    run(conn, statement).await
}

/// Re-creates `trigger` on Latchkey's users, and switches the original (now on the backup
/// table, which `export-gotrue` writes to) off so it does not fire twice for one user.
pub async fn move_trigger(conn: &mut PgConnection, trigger: &Trigger, ns: &Schema) -> sqlx::Result<()> {
    let step = Step {
        kind: "trigger".into(),
        object: format!("{}._auth_users", ns.quoted()),
        name: trigger.name.clone(),
        original: trigger.original.clone(),
        retargeted: trigger.retargeted.clone(),
        enabled: trigger.enabled,
    };
    record(conn, &step).await?;
    run(conn, trigger.retargeted.clone()).await?;
    let name = quote(&trigger.name);
    if trigger.enabled {
        run(
            conn,
            format!("alter table {}.users disable trigger {name}", Schema::backup().quoted()),
        )
        .await
    } else {
        run(
            conn,
            format!("alter table {}._auth_users disable trigger {name}", ns.quoted()),
        )
        .await
    }
}

/// Undoes [`move_trigger`].
pub async fn restore_trigger(conn: &mut PgConnection, step: &Step) -> sqlx::Result<()> {
    let name = quote(&step.name);
    run(conn, format!("drop trigger {name} on {}", step.object)).await?;
    if step.enabled {
        run(
            conn,
            format!("alter table {}.users enable trigger {name}", Schema::backup().quoted()),
        )
        .await?;
    }
    Ok(())
}

pub async fn drop_constraint(conn: &mut PgConnection, table: &str, name: &str) -> sqlx::Result<()> {
    run(conn, format!("alter table {table} drop constraint {}", quote(name))).await
}

/// The read-only views `auth.users`, `auth.identities` and `auth.sessions` over Latchkey's
/// tables, each readable by whoever could read GoTrue's table of that name.
pub async fn create_views(conn: &mut PgConnection, gotrue: &Schema, ns: &Schema) -> sqlx::Result<()> {
    let (g, n, b) = (gotrue.quoted(), ns.quoted(), Schema::backup().quoted());
    let v255 = "::varchar(255)";
    run(
        conn,
        format!(
            "create function {b}.latchkey_read_only() returns trigger language plpgsql as $body$ \
             begin \
                 raise exception '%.% is a read-only view of Latchkey''s users since latchkey import-gotrue --retarget', \
                     tg_table_schema, tg_table_name \
                     using errcode = 'feature_not_supported', \
                     hint = 'Change users through Latchkey''s API (the admin API for a server), or write to {n}._auth_users.'; \
             end $body$; \
             create view {g}.users as select instance_id, id, aud{v255} as aud, role{v255} as role, \
                 email{v255} as email, encrypted_password{v255} as encrypted_password, email_confirmed_at, \
                 invited_at, ''{v255} as confirmation_token, confirmation_sent_at, ''{v255} as recovery_token, \
                 recovery_sent_at, ''{v255} as email_change_token_new, \
                 coalesce(email_change, ''){v255} as email_change, email_change_sent_at, last_sign_in_at, \
                 raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone, \
                 phone_confirmed_at, coalesce(phone_change, '') as phone_change, \
                 ''{v255} as phone_change_token, phone_change_sent_at, confirmed_at, \
                 ''{v255} as email_change_token_current, email_change_confirm_status, banned_until, \
                 ''{v255} as reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, \
                 is_anonymous \
                 from {n}._auth_users; \
             create view {g}.identities as select provider_id, user_id, identity_data, provider, \
                 last_sign_in_at, created_at, updated_at, email, id from {n}._auth_identities; \
             create view {g}.sessions as select id, user_id, created_at, updated_at, factor_id, aal, \
                 not_after, (refreshed_at at time zone 'UTC') as refreshed_at, user_agent, ip, tag, \
                 null::uuid as oauth_client_id, null::text as scopes from {n}._auth_sessions;"
        ),
    )
    .await?;
    for view in ["users", "identities", "sessions"] {
        run(
            conn,
            format!(
                "create trigger latchkey_read_only instead of insert or update or delete on {g}.{view} \
                 for each row execute function {b}.latchkey_read_only()"
            ),
        )
        .await?;
        grant_select_as_before(conn, &format!("{b}.{view}"), &format!("{g}.{view}")).await?;
    }
    Ok(())
}

/// Grants SELECT on `view` to every role that had it on `table` (PUBLIC included).
async fn grant_select_as_before(conn: &mut PgConnection, table: &str, view: &str) -> sqlx::Result<()> {
    let grantees: Vec<String> = sqlx::query_scalar(
        "select distinct case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end \
         from pg_class c, aclexplode(c.relacl) a left join pg_roles r on r.oid = a.grantee \
         where c.oid = $1::regclass and a.privilege_type = 'SELECT'",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for grantee in grantees {
        run(conn, format!("grant select on {view} to {grantee}")).await?;
    }
    Ok(())
}

pub async fn drop_views(conn: &mut PgConnection, gotrue: &Schema) -> sqlx::Result<()> {
    let (g, b) = (gotrue.quoted(), Schema::backup().quoted());
    run(
        conn,
        format!(
            "drop view {g}.users; drop view {g}.identities; drop view {g}.sessions; \
             drop function {b}.latchkey_read_only();"
        ),
    )
    .await
}

/// Removes the record and the (then empty) backup schema; fails rather than drop anything
/// else someone put there.
pub async fn drop_backup_schema(conn: &mut PgConnection) -> sqlx::Result<()> {
    let b = Schema::backup().quoted();
    run(conn, format!("drop table {b}.latchkey_retarget; drop schema {b};")).await
}
