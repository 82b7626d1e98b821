-- Row-level security, the Supabase way.
--
-- 1. The API roles PostgREST switches to (`anon`, `authenticated`, `service_role`), created only
--    when missing. Roles are cluster-wide while migrations run per database (and the migration
--    lock is a per-database advisory lock), so two databases of one cluster may migrate at the
--    same moment: the loser of that race gets duplicate_object or unique_violation, which is
--    fine. A database owner without CREATEROLE gets insufficient_privilege: the migration goes
--    on with a notice, and everything below skips roles that do not exist.
-- 2. GoTrue's SQL helpers uid(), role(), email(), jwt() with GoTrue's bodies
--    (20220224000811_update_auth_functions, 20220531120530_add_auth_jwt_function). They are
--    created unqualified: the migrator's search_path starts with the namespace, so with the
--    default configuration they are auth.uid() etc.
-- 3. RLS enabled, without policies, on every _auth_* table, and no privileges on them for the
--    API roles: a database exposed through PostgREST leaks neither password hashes nor
--    sessions. Later migrations that add _auth_* tables must do the same (a test checks).

do $$
declare
    r text;
begin
    foreach r in array array['anon', 'authenticated', 'service_role'] loop
        continue when exists (select 1 from pg_roles where rolname = r);
        if not (select rolsuper or rolcreaterole from pg_roles where rolname = current_user) then
            raise notice 'role % is missing and % cannot create it: ask a superuser to run "create role % nologin noinherit%"',
                r, current_user, r, case r when 'service_role' then ' bypassrls' else '' end;
            continue;
        end if;
        begin
            if r = 'service_role' then
                -- The service key must see every row, like Supabase's service_role.
                begin
                    create role service_role nologin noinherit bypassrls;
                exception when insufficient_privilege then
                    -- BYPASSRLS needs a superuser (PG 15) or a creator that has it (PG 16+).
                    raise notice 'cannot give service_role BYPASSRLS (%), creating it without: ask a superuser to run "alter role service_role bypassrls"', sqlerrm;
                    create role service_role nologin noinherit;
                end;
            else
                execute format('create role %I nologin noinherit', r);
            end if;
        exception
            when duplicate_object or unique_violation then
                raise notice 'role % was created concurrently', r;
            when insufficient_privilege then
                raise notice 'cannot create role % (%)', r, sqlerrm;
        end;
    end loop;
end
$$;

-- Like PostgREST's `authenticator`, the login that runs Latchkey (and a backend sharing its
-- DATABASE_URL) must be a member of the API roles to switch to them with SET LOCAL ROLE.
-- Superusers need no membership; anyone else without the right to grant it gets a notice.
do $$
declare
    r text;
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        return;
    end if;
    foreach r in array array['anon', 'authenticated', 'service_role'] loop
        continue when not exists (select 1 from pg_roles where rolname = r)
            or pg_has_role(current_user, r, 'member');
        begin
            execute format('grant %I to %I', r, current_user);
        exception when insufficient_privilege or invalid_grant_operation then
            raise notice 'cannot grant role % to % (%): ask a superuser to run "grant % to %"', r, current_user, sqlerrm, r, current_user;
        end;
    end loop;
end
$$;

create or replace function uid() returns uuid
    language sql stable
    as $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
comment on function uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

create or replace function role() returns text
    language sql stable
    as $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
comment on function role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';

create or replace function email() returns text
    language sql stable
    as $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;
comment on function email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

create or replace function jwt() returns jsonb
    language sql stable
    as $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

do $$
declare
    ns text := current_schema();
    r text;
    t text;
begin
    foreach r in array array['anon', 'authenticated', 'service_role'] loop
        continue when not exists (select 1 from pg_roles where rolname = r);
        -- Policies call auth.uid() & co. as the API role: it needs the schema and the functions.
        execute format('grant usage on schema %I to %I', ns, r);
        execute format(
            'grant execute on function %1$I.uid(), %1$I.role(), %1$I.email(), %1$I.jwt() to %2$I',
            ns, r);
        -- ...and nothing else in it. service_role too: it bypasses RLS, and a leaked service
        -- key must still not read password or refresh-token hashes through the Data API.
        execute format('revoke all on all tables in schema %I from %I', ns, r);
        execute format('revoke all on all sequences in schema %I from %I', ns, r);
    end loop;

    for t in
        select c.relname from pg_class c
        where c.relnamespace = ns::regnamespace and c.relkind = 'r'
          and c.relname like '\_auth\_%'
    loop
        -- No policies: only the owner (Latchkey) and BYPASSRLS roles see rows.
        execute format('alter table %I.%I enable row level security', ns, t);
        execute format('revoke all on table %I.%I from public', ns, t);
    end loop;
end
$$;
