-- Indexes that keep the admin user list flat as the user base grows (issue #23; measured in
-- BENCHMARKS.md, "Cost as the data grows").
--
-- 1. The list's order, created_at with id as the tie-breaker in the same direction, in one
--    two-column index: a page is read from its first row on, and the offset of a page deep in
--    the list is skipped in this index alone (src/db/users/admin.rs). It replaces the
--    one-column index on created_at, which nothing else reads.
create index _auth_users_created_at_id_idx on _auth_users (created_at, id);
drop index _auth_users_created_at_idx;

-- 2. GoTrue's `filter` is a substring (`ilike '%...%'`) of the email or of
--    raw_user_meta_data ->> 'full_name': a b-tree cannot find it, a trigram index can. pg_trgm
--    ships with PostgreSQL (Debian's postgresql-contrib is part of the server package) and is
--    a trusted extension, so a database owner may create it; Supabase has it in its
--    `extensions` schema. Where it is already installed, in whatever schema, its operator class
--    is used from there. Where it cannot be installed (no contrib files, no privilege) the
--    migration goes on with a notice and the filter scans the table, as before.
do $$
declare
    trgm_ops text;
begin
    if not exists (select 1 from pg_extension where extname = 'pg_trgm') then
        begin
            create extension pg_trgm;
        exception when undefined_file or insufficient_privilege or feature_not_supported then
            raise notice 'pg_trgm is not available (%): the admin user filter will scan _auth_users; '
                'a superuser can run "create extension pg_trgm" and re-create these indexes', sqlerrm;
            return;
        end;
    end if;
    select format('%I.%I', n.nspname, c.opcname) into trgm_ops
    from pg_opclass c
    join pg_namespace n on n.oid = c.opcnamespace
    join pg_am a on a.oid = c.opcmethod
    where c.opcname = 'gin_trgm_ops' and a.amname = 'gin';
    execute format('create index _auth_users_email_trgm_idx on _auth_users using gin (email %s)', trgm_ops);
    execute format(
        'create index _auth_users_full_name_trgm_idx on _auth_users using gin ((raw_user_meta_data ->> %L) %s)',
        'full_name', trgm_ops);
end
$$;
