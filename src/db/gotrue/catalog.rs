//! What `--retarget` has to move, read from the catalog: GoTrue's tables, the project's foreign
//! keys that reference `auth.users`, the triggers defined on it, and whatever else depends on
//! GoTrue's tables and would silently follow them into the backup schema (views, policies,
//! functions): those are reported, not moved.
//!
//! Definitions are read with an empty search_path, so every name in them is qualified and the
//! statements built from them mean the same thing whenever they run.

use sqlx::PgConnection;

use super::{GOTRUE_TABLES, Schema, sql};

/// A project's foreign key that references `auth.users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The table holding the constraint, qualified and quoted.
    pub table: String,
    pub name: String,
    /// `FOREIGN KEY (...) REFERENCES "auth"."users"(id) ...`, as it is.
    pub original: String,
    /// The same with `REFERENCES <namespace>._auth_users(id)`.
    pub retargeted: String,
}

/// A project's trigger on `auth.users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub name: String,
    /// `CREATE TRIGGER ... ON auth.users ...`, as it is.
    pub original: String,
    /// The same on `<namespace>._auth_users`.
    pub retargeted: String,
    /// Disabled triggers stay disabled.
    pub enabled: bool,
}

/// What `--retarget` would do, and what stops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// GoTrue's tables present in its schema, to move aside.
    pub tables: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    pub triggers: Vec<Trigger>,
    /// Objects that would keep pointing at the moved tables: one line each, saying what to do.
    pub blockers: Vec<String>,
}

/// Reads the plan for GoTrue's schema `gotrue` and Latchkey's namespace `ns`.
pub async fn plan(conn: &mut PgConnection, gotrue: &Schema, ns: &Schema) -> sqlx::Result<Plan> {
    sqlx::query("set local search_path = pg_catalog")
        .execute(&mut *conn)
        .await?;
    let result = read_plan(conn, gotrue, ns).await;
    // Back to the connection's own search_path (Latchkey's namespace first).
    sqlx::query("reset search_path").execute(&mut *conn).await?;
    result
}

async fn read_plan(conn: &mut PgConnection, gotrue: &Schema, ns: &Schema) -> sqlx::Result<Plan> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = $1 and c.relname = any($2) and c.relkind in ('r', 'p') order by 1",
    )
    .bind(gotrue.name())
    .bind(GOTRUE_TABLES)
    .fetch_all(&mut *conn)
    .await?;
    let users = format!("{}.users", gotrue.quoted());
    let target = format!("{}._auth_users", ns.quoted());
    let mut plan = Plan {
        tables: tables.clone(),
        ..Plan::default()
    };
    if !tables.iter().any(|t| t == "users") {
        return Ok(plan);
    }
    let moved = |t: &String| format!("{}.{}", gotrue.quoted(), quote(t));
    let moved: Vec<String> = tables.iter().map(moved).collect();
    read_foreign_keys(conn, &moved, &users, &target, &mut plan).await?;
    read_triggers(conn, &users, &target, &mut plan).await?;
    read_dependents(conn, &moved, &mut plan).await?;
    Ok(plan)
}

/// `"name"` (identifiers from the catalog, quoted the way Postgres does for `%I`... always).
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Foreign keys from tables outside GoTrue's set that reference one of GoTrue's tables: those
/// referencing `users(id)` are retargeted, any other is a blocker.
async fn read_foreign_keys(
    conn: &mut PgConnection,
    moved: &[String],
    users: &str,
    target: &str,
    plan: &mut Plan,
) -> sqlx::Result<()> {
    let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(
        "select c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid), \
                c.confrelid::regclass::text, \
                c.confrelid = $2::regclass and c.confkey = array[( \
                    select attnum from pg_attribute where attrelid = c.confrelid and attname = 'id')] \
         from pg_constraint c \
         where c.contype = 'f' and c.confrelid = any($1::regclass[]) \
           and not c.conrelid = any($1::regclass[]) \
         order by 1, 2",
    )
    .bind(moved)
    .bind(users)
    .fetch_all(&mut *conn)
    .await?;
    for (table, name, definition, referenced, on_users_id) in rows {
        let marker = format!(" REFERENCES {referenced}(");
        if !on_users_id || definition.matches(&marker).count() != 1 {
            plan.blockers.push(format!(
                "foreign key {name} on {table} references {referenced} other than by users(id): \
                 Latchkey cannot hold it; drop it (or point it at auth.users(id)) first"
            ));
            continue;
        }
        plan.foreign_keys.push(ForeignKey {
            original: definition.replace(&marker, &format!(" REFERENCES {users}(")),
            retargeted: definition.replace(&marker, &format!(" REFERENCES {target}(")),
            table,
            name,
        });
    }
    Ok(())
}

async fn read_triggers(conn: &mut PgConnection, users: &str, target: &str, plan: &mut Plan) -> sqlx::Result<()> {
    let rows: Vec<(String, String, String, bool)> = sqlx::query_as(
        "select t.tgname::text, pg_get_triggerdef(t.oid), t.tgrelid::regclass::text, t.tgenabled <> 'D' \
         from pg_trigger t where t.tgrelid = $1::regclass and not t.tgisinternal order by 1",
    )
    .bind(users)
    .fetch_all(&mut *conn)
    .await?;
    for (name, definition, rendered, enabled) in rows {
        let marker = format!(" ON {rendered} ");
        let Some(at) = definition.find(&marker) else {
            plan.blockers
                .push(format!("trigger {name} on {users}: its definition could not be read"));
            continue;
        };
        let rewrite = |table: &str| {
            format!(
                "{}{}{}",
                &definition[..at],
                format_args!(" ON {table} "),
                &definition[at + marker.len()..]
            )
        };
        plan.triggers.push(Trigger {
            original: rewrite(users),
            retargeted: rewrite(target),
            name,
            enabled,
        });
    }
    Ok(())
}

/// Views, policies, rules and functions outside GoTrue's tables that name one of them (or its
/// row type): moving the table would leave them reading the backup.
async fn read_dependents(conn: &mut PgConnection, moved: &[String], plan: &mut Plan) -> sqlx::Result<()> {
    let found: Vec<Option<String>> = sqlx::query_scalar(
        "with moved as (select unnest($1::regclass[]) as oid), \
              refs as ( \
                  select d.classid, d.objid from pg_depend d \
                  where d.deptype = 'n' and ( \
                      (d.refclassid = 'pg_class'::regclass and d.refobjid in (select oid from moved)) \
                   or (d.refclassid = 'pg_type'::regclass and d.refobjid in ( \
                          select reltype from pg_class where oid in (select oid from moved))))) \
         select distinct case r.classid \
             when 'pg_rewrite'::regclass then ( \
                 select format('view or rule on %s', w.ev_class::regclass) from pg_rewrite w \
                 where w.oid = r.objid and w.ev_class not in (select oid from moved)) \
             when 'pg_policy'::regclass then ( \
                 select format('policy %I on %s', p.polname, p.polrelid::regclass) from pg_policy p \
                 where p.oid = r.objid and p.polrelid not in (select oid from moved)) \
             when 'pg_proc'::regclass then format('function %s', r.objid::regprocedure) \
             end \
         from refs r",
    )
    .bind(moved)
    .fetch_all(&mut *conn)
    .await?;
    let mut found: Vec<String> = found.into_iter().flatten().collect();
    found.sort();
    plan.blockers.extend(found.into_iter().map(|object| {
        format!(
            "{object} reads GoTrue's tables directly and would go on reading the backup: \
             drop it before --retarget and create it again after (it then reads the compatibility view)"
        )
    }));
    Ok(())
}

/// Whether `--retarget` has run (and not been undone) in this database.
pub async fn is_retargeted(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar(sql(format!(
        "select to_regclass('{}.latchkey_retarget') is not null",
        Schema::backup().quoted()
    )))
    .fetch_one(conn)
    .await
}
