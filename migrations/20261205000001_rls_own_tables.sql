-- Row-level security on Latchkey's own tables only.
--
-- 20261123000002_rls.sql ran `revoke all on all tables (and sequences) in schema <namespace>`
-- from anon, authenticated and service_role. That was meant for the _auth_* tables, but it
-- also reached every other table, view and sequence of the schema: in a Supabase database,
-- the `auth` schema holds GoTrue's tables and often a project's own objects, some granted to
-- these roles on purpose (say `grant select on auth.users to service_role`).
--
-- What this migration does:
-- 1. On a database migrating for the first time, Latchkey noted those grants just before
--    20261123000002 ran (a temporary table, `latchkey_api_grants_before_rls`, see
--    src/db/migrations.rs); every one the revoke took is granted again here. A grant that
--    cannot be given back (this role lacks the right) leaves a notice naming it.
-- 2. It (re)applies the intended protection to exactly the _auth_* tables and their
--    sequences: row-level security on, no privileges for the API roles or PUBLIC. Nothing
--    else in the schema is touched. This changes nothing where 20261123000002 already did it.
--
-- For databases migrated before this version: 20261123000002 ran long ago and nobody noted
-- what it revoked, so nothing can be given back automatically. If anon, authenticated or
-- service_role held privileges on non-Latchkey objects of the namespace, grant them again by
-- hand. Objects that have none left (candidates to check):
--   select c.relname from pg_class c
--   where c.relnamespace = 'auth'::regnamespace and c.relkind in ('r','p','v','m','f','S')
--     and c.relname not like '\_auth\_%' and c.relname <> '_sqlx_migrations';

do $$
declare
    g record;
begin
    if to_regclass('pg_temp.latchkey_api_grants_before_rls') is null then
        return;
    end if;
    for g in
        select b.* from pg_temp.latchkey_api_grants_before_rls b
        where not exists (
            select 1
            from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            cross join lateral aclexplode(c.relacl) a
            join pg_roles r on r.oid = a.grantee
            where n.nspname = b.schema_name and c.relname = b.relation
              and r.rolname = b.grantee and a.privilege_type = b.privilege
        )
    loop
        begin
            execute format('grant %s on %s %I.%I to %I%s',
                g.privilege,
                case g.kind when 'S' then 'sequence' else 'table' end,
                g.schema_name, g.relation, g.grantee,
                case when g.grantable then ' with grant option' else '' end);
        exception when insufficient_privilege or undefined_table then
            raise notice 'could not give % on %.% back to % (%)',
                g.privilege, g.schema_name, g.relation, g.grantee, sqlerrm;
        end;
    end loop;
end
$$;

do $$
declare
    ns text := current_schema();
    r text;
    t record;
begin
    for t in
        select c.relname, c.relkind from pg_class c
        where c.relnamespace = ns::regnamespace and c.relkind in ('r', 'S')
          and c.relname like '\_auth\_%'
    loop
        if t.relkind = 'r' then
            execute format('alter table %I.%I enable row level security', ns, t.relname);
        end if;
        execute format('revoke all on %s %I.%I from public',
            case t.relkind when 'S' then 'sequence' else 'table' end, ns, t.relname);
        foreach r in array array['anon', 'authenticated', 'service_role'] loop
            continue when not exists (select 1 from pg_roles where rolname = r);
            execute format('revoke all on %s %I.%I from %I',
                case t.relkind when 'S' then 'sequence' else 'table' end, ns, t.relname, r);
        end loop;
    end loop;
end
$$;
